// Glob patterns as the policy language writes them: `*` matches any run of bytes (slashes
// included: `/opt/*` covers every file below /opt), `?` one byte, everything else itself.
// Compiled once when a policy loads, so matching an event does no parsing.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace agentwall::policy {

bool has_glob_chars(std::string_view pattern);

class Glob {
 public:
  explicit Glob(std::string pattern);
  bool matches(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  enum class Shape { kExact, kPrefix, kSuffix, kContains, kGeneral };
  std::string pattern_;
  std::string literal_;  // the pattern without its stars, for the simple shapes
  Shape shape_ = Shape::kGeneral;
};

// A set of values: exact strings looked up in a hash set, globs tried in order. Case is
// folded (ASCII) on both sides when the set is built case-insensitive.
class PatternSet {
 public:
  PatternSet() = default;
  PatternSet(const std::vector<std::string>& patterns, bool fold_case);
  bool matches(std::string_view value) const;
  bool empty() const { return exact_.empty() && globs_.empty(); }
  // Every pattern as written (after folding), for the kernel gate's selectors.
  std::vector<std::string> patterns() const;

 private:
  bool fold_case_ = false;
  std::unordered_set<std::string> exact_;
  std::vector<Glob> globs_;
};

// One-off match, for callers that keep no compiled set (the budget ledger's filters).
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace agentwall::policy
