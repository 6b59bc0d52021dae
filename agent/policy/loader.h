// The loader's two passes, internal to agent/policy/. Pass one reads each file and merges
// it into a RawPolicy (later files override or extend earlier ones); pass two compiles the
// merged whole, so that a rule may use a list or macro defined in any file.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/policy/compiled.h"
#include "agent/policy/diagnostics.h"

namespace agentwall::policy {

struct RawList {
  std::vector<std::pair<std::string, Pos>> items;
  Pos pos;
};

// A rule after merging: every key it was given, each from the file that gave it last.
struct RawRule {
  std::string name;
  Pos pos;  // where it was first defined
  std::map<std::string, Ref> keys;
};

struct RawNamed {
  std::string name;
  Ref def;
};

struct RawPolicy {
  std::optional<Ref> mode;
  std::map<std::string, Ref> settings, ledger;
  std::map<std::string, RawList> lists;
  std::map<std::string, Ref> macros;
  std::vector<RawRule> rules;
  std::vector<RawNamed> budgets, rate_limits;
};

// Pass one, for one parsed document.
void merge_document(Diagnostics& d, const Ref& root, RawPolicy& raw);

// Pass two: conditions (conditions.cc).
class ConditionCompiler {
 public:
  ConditionCompiler(Diagnostics& d, const RawPolicy& raw, std::set<std::string> budgets,
                    std::set<std::string> rate_limits);
  // A condition map (match, when, an exception, a macro's body). `extra_keys` are keys
  // the caller reads itself (an exception's `name`).
  ConditionPtr compile(const Ref& map, const std::string& ctx, const Keys& extra_keys = {});
  // The patterns of a filter value (a string, a list, list:NAME), lists expanded.
  std::optional<std::vector<std::string>> patterns(const Ref& value, const std::string& ctx,
                                                   std::string_view key);
  // Compiles every macro, used or not, so that errors in unused ones are reported too.
  void compile_all_macros();

 private:
  ConditionPtr compile_map(const Ref& map, const std::string& ctx, const Keys& extra_keys,
                           int depth);
  ConditionPtr compile_key(const std::string& key, const Ref& value, const std::string& ctx,
                           int depth);
  void compile_fields(const Ref& map, const std::string& ctx, std::string_view section,
                      std::vector<ConditionPtr>& out);
  ConditionPtr compile_field(Field field, const Ref& value, const std::string& ctx,
                             std::string_view key);
  ConditionPtr compile_findings(const Ref& map, const std::string& ctx);
  ConditionPtr compile_state(Condition::Kind kind, const Ref& map, const std::string& ctx);
  ConditionPtr compile_combinator(const std::string& key, const Ref& value, const std::string& ctx,
                                  int depth);
  ConditionPtr macro(const std::string& name, Pos at, const std::string& ctx, int depth);
  bool expand(const std::string& value, Pos at, const std::string& ctx,
              std::vector<std::string>& out);
  bool too_big(const Ref& at, const std::string& ctx, int depth);

  Diagnostics& d_;
  const RawPolicy& raw_;
  std::set<std::string> budgets_, rate_limits_;
  std::map<std::string, ConditionPtr> macros_done_;
  std::vector<std::string> macros_active_;  // being compiled, outermost first
  size_t nodes_ = 0;
  bool reported_too_big_ = false;
};

// Budgets, rate limits and the ledger (limits.cc).
std::vector<budget::BudgetSpec> compile_budgets(Diagnostics& d, const RawPolicy& raw,
                                                ConditionCompiler& cc);
std::vector<budget::RateLimitSpec> compile_rate_limits(Diagnostics& d, const RawPolicy& raw,
                                                       ConditionCompiler& cc);
budget::LedgerSpec compile_ledger(Diagnostics& d, const RawPolicy& raw);

}  // namespace agentwall::policy
