#include "agent/policy/glob.h"

#include <algorithm>

#include "agent/common/ascii.h"

namespace agentwall::policy {

namespace {

// Iterative matcher with one backtrack point (the last star): linear for the patterns
// people write, never exponential.
bool match_general(std::string_view p, std::string_view t) {
  size_t pi = 0, ti = 0;
  size_t star = std::string_view::npos, resume = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      resume = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++resume;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::string folded(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii::lower(c);
  return out;
}

}  // namespace

bool has_glob_chars(std::string_view pattern) {
  return pattern.find_first_of("*?") != std::string_view::npos;
}

Glob::Glob(std::string pattern) : pattern_(std::move(pattern)) {
  const std::string_view p = pattern_;
  if (p.find('?') != std::string_view::npos) return;  // kGeneral
  const size_t stars = std::count(p.begin(), p.end(), '*');
  const bool lead = !p.empty() && p.front() == '*';
  const bool trail = p.size() > 1 && p.back() == '*';
  if (stars == 0) {
    shape_ = Shape::kExact;
    literal_ = pattern_;
  } else if (stars == 1 && trail) {
    shape_ = Shape::kPrefix;
    literal_ = p.substr(0, p.size() - 1);
  } else if (stars == 1 && lead) {
    shape_ = Shape::kSuffix;
    literal_ = p.substr(1);
  } else if (stars == 2 && lead && trail) {
    shape_ = Shape::kContains;
    literal_ = p.substr(1, p.size() - 2);
  }
}

bool Glob::matches(std::string_view t) const {
  switch (shape_) {
    case Shape::kExact:
      return t == literal_;
    case Shape::kPrefix:
      return t.starts_with(literal_);
    case Shape::kSuffix:
      return t.ends_with(literal_);
    case Shape::kContains:
      return t.find(literal_) != std::string_view::npos;
    case Shape::kGeneral:
      break;
  }
  return match_general(pattern_, t);
}

PatternSet::PatternSet(const std::vector<std::string>& patterns, bool fold_case)
    : fold_case_(fold_case) {
  for (const std::string& p : patterns) {
    std::string v = fold_case ? folded(p) : p;
    if (has_glob_chars(v)) {
      globs_.emplace_back(std::move(v));
    } else {
      exact_.insert(std::move(v));
    }
  }
}

bool PatternSet::matches(std::string_view value) const {
  if (fold_case_) {
    const std::string v = folded(value);
    if (exact_.count(v)) return true;
    return std::any_of(globs_.begin(), globs_.end(), [&](const Glob& g) { return g.matches(v); });
  }
  if (!exact_.empty() && exact_.count(std::string(value))) return true;
  return std::any_of(globs_.begin(), globs_.end(), [&](const Glob& g) { return g.matches(value); });
}

std::vector<std::string> PatternSet::patterns() const {
  std::vector<std::string> out(exact_.begin(), exact_.end());
  std::sort(out.begin(), out.end());
  for (const Glob& g : globs_) out.push_back(g.pattern());
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  return match_general(pattern, text);
}

}  // namespace agentwall::policy
