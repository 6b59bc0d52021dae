// "Did you mean …?" for mistyped names in policies and sink URIs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace agentwall {

// Levenshtein distance (insertions, deletions, substitutions).
size_t edit_distance(std::string_view a, std::string_view b);
// The closest of `candidates` to `word` when it is a likely typo, else empty.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace agentwall
