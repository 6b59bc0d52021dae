// The detection engine's vocabulary: what a detector is given and what it reports.
// Pure: the LLM and MCP layers, the policy engine and `agentwall scan` all use it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::detect {

// Where a text came from: detectors weigh what they see by it (an instruction in a tool
// result is worse than the same words from the user).
enum class Source : uint8_t {
  kUnknown,
  kUser,             // a user message
  kSystem,           // system / developer instructions
  kToolResult,       // what a tool returned, sent back to the model
  kToolDescription,  // an MCP tool's description or schema
  kModelOutput,      // the model's text
  kToolArguments,    // arguments of a tool call the model made
};
std::string_view to_string(Source s);
// "user", "system", "tool", "tool_result", "tool_description", "assistant", "model",
// "tool_arguments", …; unknown names give kUnknown.
Source source_from_role(std::string_view role);

enum class Category : uint8_t { kSecret, kPii, kInjection, kHiddenText, kUnsafeOutput, kSchema };
std::string_view to_string(Category c);

struct Span {
  size_t begin = 0;  // byte offsets into the scanned text
  size_t end = 0;
};

struct Finding {
  std::string detector;  // stable id, e.g. "secret.openai_api_key", "pii.payment_card"
  Category category = Category::kSecret;
  double confidence = 0;  // 0..1
  std::vector<Span> spans;
  std::string explanation;  // one short sentence a human can act on; never the secret itself
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual std::string_view name() const = 0;
  // Appends what it finds in `text` to `out`.
  virtual void scan(std::string_view text, Source source, std::vector<Finding>& out) const = 0;
};

}  // namespace agentwall::detect
