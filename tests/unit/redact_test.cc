// Credentials on command lines are masked before any event carries them.
#include <doctest/doctest.h>

#include "agent/common/redact.h"

using agentwall::redact_credentials;

namespace {
std::string redact(std::string s) {
  redact_credentials(s);
  return s;
}
}  // namespace

TEST_CASE("redact: bearer tokens, credential options and key-shaped words are masked") {
  CHECK(redact("curl -H Authorization: Bearer sk-test-agentwall-0002 https://x") ==
        "curl -H Authorization: Bearer [REDACTED] https://x");
  CHECK(redact("tool --api-key abc123 --model gpt-4o") ==
        "tool --api-key [REDACTED] --model gpt-4o");
  CHECK(redact("tool --openai-api-key=abc123") == "tool --openai-api-key=[REDACTED]");
  CHECK(redact("app https://h/x?key=AIzaSyA-1234567890abcdef") == "app https://h/x?key=[REDACTED]");
  CHECK(redact("env ANTHROPIC_API_KEY=sk-ant-xyz run") == "env ANTHROPIC_API_KEY=[REDACTED] run");
  CHECK(redact("run sk-proj-abcdefghijklmnop") == "run [REDACTED]");
  CHECK(redact("x -H x-api-key: secretvalue") == "x -H x-api-key: [REDACTED]");
  CHECK(redact("git push ghp_abcdefghijklmnopqrstuvwxyz") == "git push [REDACTED]");
}

TEST_CASE("redact: ordinary command lines are left alone") {
  const std::string plain =
      "curl -sS --cacert /tmp/ca.crt -H Content-Type: application/json https://localhost:443/v1";
  CHECK(redact(plain) == plain);
  CHECK(redact("python3 -m http.server 8000") == "python3 -m http.server 8000");
  CHECK(redact("") == "");
}
