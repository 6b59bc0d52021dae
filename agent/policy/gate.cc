// What the kernel gate needs from a policy: which processes and hosts a gating rule can act
// on. Read from the rule's top-level conjuncts only; anything else widens the scope, so the
// gate may pause more than a rule needs, never less.
#include <algorithm>
#include <set>

#include "agent/policy/compiled.h"

namespace agentwall::policy {

namespace {

std::vector<std::string>* scope_list(GateRuleScope& s, Field f) {
  switch (f) {
    case Field::kExe:
      return &s.exes;
    case Field::kName:
      return &s.names;
    case Field::kUser:
      return &s.users;
    case Field::kUid:
      return &s.uids;
    case Field::kUnit:
      return &s.units;
    case Field::kContainer:
      return &s.containers;
    case Field::kCgroup:
      return &s.cgroups;
    case Field::kHost:
      return &s.hosts;
    default:
      return nullptr;
  }
}

void narrow(const Condition& c, GateRuleScope& out) {
  if (c.kind == Condition::Kind::kAll) {
    for (const ConditionPtr& child : c.children) narrow(*child, out);
    return;
  }
  if (c.kind != Condition::Kind::kField || c.negated) return;
  std::vector<std::string>* list = scope_list(out, c.field);
  // Two restrictions of one field: either alone covers their intersection.
  if (list && list->empty()) *list = c.values.patterns();
}

}  // namespace

bool GateRuleScope::any_process() const {
  return exes.empty() && names.empty() && users.empty() && uids.empty() && units.empty() &&
         containers.empty() && cgroups.empty();
}

bool GateScope::any_process() const {
  return std::any_of(scopes.begin(), scopes.end(),
                     [](const GateRuleScope& s) { return s.any_process(); });
}

bool GateScope::any_host() const {
  return std::any_of(scopes.begin(), scopes.end(),
                     [](const GateRuleScope& s) { return s.hosts.empty(); });
}

std::vector<std::string> GateScope::hosts() const {
  std::set<std::string> all;
  for (const GateRuleScope& s : scopes) all.insert(s.hosts.begin(), s.hosts.end());
  return {all.begin(), all.end()};
}

GateScope compute_gate_scope(const Policy::Compiled& c) {
  GateScope gate;
  // Global monitor pauses nothing: no scope at all.
  if (c.settings.mode != Mode::kEnforce) return gate;
  for (const Rule& r : c.rules) {
    if (!r.enabled || r.mode == Mode::kMonitor || r.action == Action::kAlert) continue;
    GateRuleScope s;
    s.rule = r.name;
    s.fail_closed = r.fail_closed.value_or(c.settings.fail_closed);
    narrow(*r.match, s);
    gate.scopes.push_back(std::move(s));
  }
  // A budget or rate limit that blocks needs every call it counts to wait for the ledger.
  auto add_limit = [&](std::string name, const auto& spec) {
    if (spec.action != "block") return;
    GateRuleScope s;
    s.rule = std::move(name);
    s.fail_closed = c.settings.fail_closed;
    s.exes = spec.exes;
    s.users = spec.users;
    s.cgroups = spec.cgroups;
    gate.scopes.push_back(std::move(s));
  };
  for (const budget::BudgetSpec& b : c.budgets) add_limit("budget:" + b.name, b);
  for (const budget::RateLimitSpec& r : c.rate_limits) add_limit("rate_limit:" + r.name, r);
  gate.gated = !gate.scopes.empty();
  return gate;
}

}  // namespace agentwall::policy
