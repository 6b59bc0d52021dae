#include "agent/detect/finding.h"

namespace agentwall::detect {

std::string_view to_string(Source s) {
  switch (s) {
    case Source::kUser:
      return "user";
    case Source::kSystem:
      return "system";
    case Source::kToolResult:
      return "tool_result";
    case Source::kToolDescription:
      return "tool_description";
    case Source::kModelOutput:
      return "model_output";
    case Source::kToolArguments:
      return "tool_arguments";
    case Source::kUnknown:
      break;
  }
  return "unknown";
}

Source source_from_role(std::string_view role) {
  if (role == "user" || role == "human") return Source::kUser;
  if (role == "system" || role == "developer") return Source::kSystem;
  if (role == "tool" || role == "tool_result" || role == "function") return Source::kToolResult;
  if (role == "tool_description") return Source::kToolDescription;
  if (role == "assistant" || role == "model" || role == "model_output") return Source::kModelOutput;
  if (role == "tool_arguments" || role == "tool_call") return Source::kToolArguments;
  return Source::kUnknown;
}

std::string_view to_string(Category c) {
  switch (c) {
    case Category::kSecret:
      return "secret";
    case Category::kPii:
      return "pii";
    case Category::kInjection:
      return "injection";
    case Category::kHiddenText:
      return "hidden_text";
    case Category::kUnsafeOutput:
      return "unsafe_output";
    case Category::kSchema:
      return "schema";
  }
  return "unknown";
}

}  // namespace agentwall::detect
