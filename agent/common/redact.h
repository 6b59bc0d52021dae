// Masks credentials in text that agentwall reports about processes (command lines):
// a key passed as `-H "Authorization: Bearer sk-…"` or `--api-key …` must not reach an
// event, a log or a SIEM in clear.
#pragma once

#include <string>

namespace agentwall {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// Replaces, in place: the word after "Bearer"/"Basic"; values of options and parameters
// named like credentials (--api-key X, --token=X, key=X, password=X, x-api-key: X, …); and
// words that look like provider keys (sk-…, AIza…, ghp_…, xox?-…, AKIA…). Returns the
// number of masked values.
int redact_credentials(std::string& text);

}  // namespace agentwall
