// What the detection engine finds in one LLM call, for the `llm.exchange` event: findings in
// what this call newly sends (the turn after the model's last answer: the user's message,
// tool results) and in what comes back (output text, tool-call arguments), and, in every
// text the event carries, where secrets and personal data are, so the event writer masks
// them. Earlier turns and the system prompt come back with every call of a conversation:
// they are only searched for what to mask, not reported again.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent/detect/engine.h"
#include "agent/llm/call.h"

namespace agentwall::llm {

struct Redaction {
  size_t begin = 0, end = 0;  // byte offsets into the collected text
  std::string detector;       // "secret.openai_api_key", "pii.email", …
};

struct LocatedFinding {
  std::string where;  // "messages[3]", "output_text", "tool_calls[0].arguments"
  detect::Finding finding;
};

// A streamed answer's text, scanned as it arrived (detect::StreamScanner): its findings, so
// that the answer is not scanned again when the call ends. It covers every byte of the
// answer, past what the adapter keeps (LlmOptions::collect) too.
struct StreamedAnswer {
  std::vector<detect::Finding> findings;  // spans: byte offsets in the answer
  size_t bytes = 0;                       // answer bytes scanned
  size_t dropped = 0;                     // findings past kMaxFindings, counted only
  static constexpr size_t kMaxFindings = 256;
};

struct Inspection {
  bool ran = false;
  size_t answer_streamed_bytes = 0;    // the answer was scanned as it streamed: its length
  size_t answer_findings_dropped = 0;  // findings of it past StreamedAnswer::kMaxFindings
  int score = 0;                       // 0..100 over all reported findings
  std::vector<LocatedFinding> findings;
  std::vector<std::string> reasons;
  // Keyed like `where` (plus "system"); sorted, not overlapping.
  std::map<std::string, std::vector<Redaction>> redactions;
};

class Inspector {
 public:
  Inspector();  // the built-in detectors; compiles the rule set (most of a second, once)
  // `streamed`: the answer's findings, gathered as it streamed in; null, or no bytes: the
  // answer text is scanned here.
  Inspection inspect(const LlmCall& call, const StreamedAnswer* streamed = nullptr) const;
  // Every built-in detector, for texts that are not LLM calls (MCP tool descriptions).
  const detect::Engine& engine() const { return full_; }

 private:
  detect::Engine full_;
  detect::Engine masking_;  // secrets and PII only
};

// The `where` of a finding or redaction: "messages[3]", "tool_calls[0].arguments".
std::string message_where(size_t index);
std::string arguments_where(size_t index);

// `text` with every redaction replaced by "[REDACTED <detector> sha256:<16 hex>]", the hash
// over the masked bytes so that the same value can be correlated without being shown.
std::string apply_redactions(std::string_view text, const std::vector<Redaction>& redactions);

}  // namespace agentwall::llm
