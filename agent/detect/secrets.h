// Credentials in LLM traffic: API keys, tokens, private keys, passwords in URLs, and
// high-entropy values assigned to key-like names. One finding per secret; the span covers
// only the secret's bytes and the explanation shows at most its first few characters.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

// Detector ids: "secret.<kind>" with kind one of openai_api_key, anthropic_api_key,
// google_api_key, aws_access_key_id, aws_secret_access_key, azure_key, github_token,
// gitlab_token, slack_token, stripe_key, huggingface_token, private_key, jwt, database_url,
// generic_high_entropy.
class SecretsDetector final : public Detector {
 public:
  std::string_view name() const override { return "secrets"; }
  void scan(std::string_view text, Source source, std::vector<Finding>& out) const override;
};

std::unique_ptr<Detector> make_secrets_detector();

// Exposed for tests: GitHub's token checksum (CRC-32 of the 30 characters after the
// "ghp_"-style prefix, base62 "0-9A-Za-z", zero-padded to 6 characters).
std::string github_checksum(std::string_view body30);
// Shannon entropy of `s` in bits per byte.
double shannon_entropy(std::string_view s);

}  // namespace agentwall::detect
