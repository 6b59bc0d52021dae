// The policy language: YAML files of rules, lists, macros, budgets and rate limits
// (docs/POLICY.md), loaded and checked once, then evaluated against every LLM or MCP call.
// Evaluation is pure and does no parsing or pattern compiling: everything is compiled at load.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/budget/spec.h"

namespace agentwall::policy {

// One detection finding of the call, as rules see it.
struct FindingFact {
  std::string detector;  // "secret.openai_api_key"
  std::string category;  // secret, pii, injection, hidden_text, unsafe_output, schema
  double confidence = 0;
  std::string where;      // "messages[3]", "output_text", "tool_calls[0].arguments"
  bool new_turn = false;  // in what this call newly sends (not an earlier turn, not the answer)
};

// What a rule is evaluated against: one call, seen in one direction.
struct Subject {
  // process
  uint32_t pid = 0;
  uint32_t uid = 0;
  std::string exe, name, user, unit, container, cgroup, parent;
  // traffic
  std::string kind = "llm";  // llm | mcp
  std::string provider, host, model, operation;
  std::string direction = "request";  // request | response
  std::string api_key_fingerprint;
  // mcp
  std::string mcp_server, mcp_tool, mcp_method;
  // detection
  int score = 0;
  std::vector<FindingFact> findings;
  // budget / rate-limit state, filled by the ledger before evaluation
  std::map<std::string, std::string> budget_state;      // name -> "ok" | "warning" | "exceeded"
  std::map<std::string, std::string> rate_limit_state;  // name -> "ok" | "exceeded"
};

// Ordered by strength: a stronger action wins when several rules fire.
enum class Action : uint8_t { kAlert, kRedact, kBlock, kKill };
std::string_view to_string(Action a);

enum class Mode : uint8_t { kMonitor, kEnforce };

struct Decision {
  std::string rule;
  Action action = Action::kAlert;
  std::string severity;  // info, low, medium, high, critical
  std::vector<std::string> tags;
  bool enforce = false;  // false: monitor, report only ("would block")
  bool fail_closed = false;
  std::string message;
  std::vector<size_t> findings;  // indexes into Subject::findings that made it fire
};

// What the enforcer does with one call: the strongest action among enforced decisions.
struct Verdict {
  std::optional<Action> action;   // none: no decision is enforced
  std::vector<size_t> decisions;  // indexes of the enforced decisions that carry `action`
};

struct Settings {
  Mode mode = Mode::kMonitor;  // global: monitor wins over every rule's own mode
  int verdict_timeout_ms = 5;
  bool fail_closed = false;  // `fail: closed`: block a gated call whose verdict is late
  std::string state_dir = "/var/lib/agentwall";
};

// Which traffic one gating rule (or blocking budget / rate limit) can act on, as far as the
// kernel gate can tell before userspace sees it. Empty list: any. The lists of one scope
// all hold together; scopes are alternatives. Conservative: a selector the loader cannot
// reduce to patterns (negation, `any:`) widens the scope, never narrows it.
struct GateRuleScope {
  std::string rule;  // rule name, or "budget:NAME" / "rate_limit:NAME"
  std::vector<std::string> exes, names, users, uids, units, containers, cgroups, hosts;
  bool fail_closed = false;  // a call in this scope whose verdict is late is blocked
  bool any_process() const;
};

struct GateScope {
  bool gated = false;  // some enforce-mode rule blocks, redacts or kills
  std::vector<GateRuleScope> scopes;
  bool any_process() const;                // some scope selects every process
  bool any_host() const;                   // some scope selects every host
  std::vector<std::string> hosts() const;  // union of host patterns (meaningful if !any_host())
};

struct Summary {
  size_t rules = 0, enabled_rules = 0, lists = 0, macros = 0, budgets = 0, rate_limits = 0;
};

// One policy document in memory: its text and the name errors call it by.
struct PolicySource {
  std::string name;
  std::string yaml;
};

class Policy {
 public:
  // Files are merged in order (docs/POLICY.md, "Several files"). On any error: nullopt, and
  // `errors` holds every error found, each "FILE:LINE:COL: what was expected".
  static std::optional<Policy> load(const std::vector<std::string>& files,
                                    std::vector<std::string>& errors);
  static std::optional<Policy> load_string(std::string_view yaml, std::string_view name,
                                           std::vector<std::string>& errors);
  static std::optional<Policy> load_sources(const std::vector<PolicySource>& sources,
                                            std::vector<std::string>& errors);

  // Every enabled rule that fires, in file order.
  std::vector<Decision> evaluate(const Subject& subject) const;
  // The strongest enforced action (kill > block > redact > alert) and the decisions with it.
  static Verdict strongest(const std::vector<Decision>& decisions);

  const Settings& settings() const;
  const std::vector<budget::BudgetSpec>& budgets() const;
  const std::vector<budget::RateLimitSpec>& rate_limits() const;
  const budget::LedgerSpec& ledger() const;
  const GateScope& gate_scope() const;
  Summary summary() const;
  // Things that load but are probably not what was meant ("FILE:LINE:COL: ...").
  const std::vector<std::string>& warnings() const;

  struct Compiled;  // the loader's output; defined in compiled.h

 private:
  explicit Policy(std::shared_ptr<const Compiled> c) : c_(std::move(c)) {}
  // Immutable once loaded: copies share it, and threads may evaluate concurrently.
  std::shared_ptr<const Compiled> c_;
};

}  // namespace agentwall::policy
