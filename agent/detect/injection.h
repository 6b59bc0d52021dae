// Prompt injection and jailbreak: a rule set compiled once into one vectorscan database
// (agent/detect/injection.cc lists every rule with what it means), and a small learned model
// over hashed word and character n-grams (agent/detect/ngram_model.h) for what the rules do
// not name. Both read the normalised text (NFKC, confusables folded, invisible characters
// removed) and match caselessly, so mixed case and homoglyphs do not hide an attack.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

// One rule of the injection rule set, as shipped (for `--help`-style listings and tests).
struct InjectionRule {
  std::string_view id;           // "injection.ignore_instructions", …
  std::string_view pattern;      // PCRE-compatible, matched caselessly on the normalised text
  double confidence;             // how sure a match alone makes us, 0..1
  double tool_confidence;        // the same in a tool result or tool description, where any
                                 // instruction to the model is out of place
  std::string_view explanation;  // what the match means, for a human
  // Optional: a suffix of `pattern` taken at its top level, so that every match of the rule
  // ends with a match of it, which vectorscan finds far more cheaply than the whole rule.
  std::string_view prefilter = {};
  // Optional: the id of a part ("injection.part.…") that must match too, anywhere in the same
  // text, for this rule to count. A part is a rule of confidence 0 that is never a finding
  // alone (a frame: "imagine you are …", "for my novel"), and is no prefilter: text that
  // matches only parts is not scanned further.
  std::string_view with = {};
};
// Whether `r` is a part: matched only to qualify the rules that name it in `with`.
inline bool is_part(const InjectionRule& r) {
  return r.id.starts_with("injection.part.");
}
const std::vector<InjectionRule>& injection_rules();

// Whether the rule set in use is the one vectorscan compiled when agentwall was built (it is
// compiled at start-up instead when that does not fit this library or CPU). For tests.
bool injection_rules_precompiled();

// Whether `suffix` ends `pattern` at its top level (outside groups, classes and {m,n}
// quantifiers, with no top-level alternation), so that every match of `pattern` ends with a
// match of `suffix`: the condition a rule's prefilter must meet. Exposed for tests.
bool top_level_suffix(std::string_view pattern, std::string_view suffix);

// The rules and, when `with_model`, the learned model. Throws std::runtime_error when the
// rule set does not compile (a bug: the unit tests compile it).
std::unique_ptr<Detector> make_injection_detector(bool with_model = true);

}  // namespace agentwall::detect
