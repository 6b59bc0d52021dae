// Evaluation: walks the compiled conditions of every rule against one Subject.
#include <algorithm>
#include <set>

#include "agent/policy/compiled.h"

namespace agentwall::policy {

namespace {

std::string_view field_value(const Subject& s, Field f, std::string& scratch) {
  switch (f) {
    case Field::kExe:
      return s.exe;
    case Field::kName:
      return s.name;
    case Field::kUser:
      return s.user;
    case Field::kUid:
      scratch = std::to_string(s.uid);
      return scratch;
    case Field::kUnit:
      return s.unit;
    case Field::kContainer:
      return s.container;
    case Field::kCgroup:
      return s.cgroup;
    case Field::kParent:
      return s.parent;
    case Field::kKind:
      return s.kind;
    case Field::kProvider:
      return s.provider;
    case Field::kHost:
      return s.host;
    case Field::kModel:
      return s.model;
    case Field::kOperation:
      return s.operation;
    case Field::kDirection:
      return s.direction;
    case Field::kApiKey:
      return s.api_key_fingerprint;
    case Field::kMcpServer:
      return s.mcp_server;
    case Field::kMcpTool:
      return s.mcp_tool;
    case Field::kMcpMethod:
      return s.mcp_method;
  }
  return {};
}

uint8_t where_bit(const FindingFact& f) {
  if (f.new_turn) return kWhereNewTurn;
  if (f.where == "output_text") return kWhereOutputText;
  if (f.where.starts_with("tool_calls[")) return kWhereToolArguments;
  return kWhereOther;
}

bool finding_passes(const FindingsTest& t, const FindingFact& f) {
  if (t.categories && !(t.categories & finding_category_bit(f.category))) return false;
  if (!t.detectors.empty() && !t.detectors.matches(f.detector)) return false;
  if (f.confidence < t.min_confidence) return false;
  return (t.where & where_bit(f)) != 0;
}

StateLevel parse_level(std::string_view state) {
  if (state == "exceeded") return StateLevel::kExceeded;
  if (state == "warning") return StateLevel::kWarning;
  return StateLevel::kOk;
}

// A budget or rate-limit condition: the named one (or any, unnamed) is at the level or worse.
bool state_reached(const std::map<std::string, std::string>& states, const Condition& c) {
  if (!c.name.empty()) {
    const auto it = states.find(c.name);
    return it != states.end() && parse_level(it->second) >= c.level;
  }
  return std::any_of(states.begin(), states.end(),
                     [&](const auto& kv) { return parse_level(kv.second) >= c.level; });
}

bool findings_hold(const FindingsTest& t, const Subject& s, std::vector<size_t>* hits) {
  bool any = false;
  for (size_t i = 0; i < s.findings.size(); ++i) {
    if (!finding_passes(t, s.findings[i])) continue;
    any = true;
    if (!hits) return true;
    hits->push_back(i);
  }
  return any;
}

bool rule_fires(const Rule& r, const Subject& s, std::vector<size_t>& hits) {
  if (!holds(*r.match, s, &hits)) return false;
  for (const Exception& e : r.exceptions) {
    if (holds(*e.when, s, nullptr)) return false;
  }
  return true;
}

}  // namespace

uint8_t finding_category_bit(std::string_view c) {
  static constexpr std::string_view kNames[] = {"secret",      "pii",           "injection",
                                                "hidden_text", "unsafe_output", "schema"};
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (c == kNames[i]) return uint8_t(1u << i);
  }
  return 0;
}

bool holds(const Condition& c, const Subject& s, std::vector<size_t>* hits) {
  switch (c.kind) {
    case Condition::Kind::kAll:
      for (const ConditionPtr& child : c.children) {
        if (!holds(*child, s, hits)) return false;
      }
      return true;
    case Condition::Kind::kAny: {
      // Every branch that holds contributes its findings (a redaction masks them all).
      bool any = false;
      for (const ConditionPtr& child : c.children) {
        if (!hits && any) break;
        std::vector<size_t> branch;
        if (holds(*child, s, hits ? &branch : nullptr)) {
          any = true;
          if (hits) hits->insert(hits->end(), branch.begin(), branch.end());
        }
      }
      return any;
    }
    case Condition::Kind::kNot:
      return !holds(*c.children.front(), s, nullptr);
    case Condition::Kind::kField: {
      std::string scratch;
      return c.values.matches(field_value(s, c.field, scratch)) != c.negated;
    }
    case Condition::Kind::kFindings:
      return findings_hold(c.findings, s, hits);
    case Condition::Kind::kScore:
      return s.score >= c.score;
    case Condition::Kind::kBudget:
      return state_reached(s.budget_state, c);
    case Condition::Kind::kRateLimit:
      return state_reached(s.rate_limit_state, c);
  }
  return false;
}

std::string render_message(const std::vector<MessagePart>& parts, const Rule& rule,
                           const Subject& s, const std::vector<size_t>& hits) {
  std::string out;
  for (const MessagePart& p : parts) {
    switch (p.kind) {
      case MessagePart::Kind::kText:
        out += p.text;
        break;
      case MessagePart::Kind::kModel:
        out += s.model;
        break;
      case MessagePart::Kind::kProvider:
        out += s.provider;
        break;
      case MessagePart::Kind::kExe:
        out += s.exe;
        break;
      case MessagePart::Kind::kRule:
        out += rule.name;
        break;
      case MessagePart::Kind::kUser:
        out += s.user;
        break;
      case MessagePart::Kind::kHost:
        out += s.host;
        break;
      case MessagePart::Kind::kSeverity:
        out += rule.severity;
        break;
      case MessagePart::Kind::kAction:
        out += to_string(rule.action);
        break;
      case MessagePart::Kind::kScore:
        out += std::to_string(s.score);
        break;
      case MessagePart::Kind::kTool:
        out += s.mcp_tool;
        break;
      case MessagePart::Kind::kDetectors: {
        std::set<std::string_view> seen;
        for (size_t i : hits) {
          if (!seen.insert(s.findings[i].detector).second) continue;
          if (seen.size() > 1) out += ", ";
          out += s.findings[i].detector;
        }
        break;
      }
    }
  }
  return out;
}

std::string_view to_string(Action a) {
  switch (a) {
    case Action::kAlert:
      return "alert";
    case Action::kRedact:
      return "redact";
    case Action::kBlock:
      return "block";
    case Action::kKill:
      return "kill";
  }
  return "alert";
}

std::vector<Decision> Policy::evaluate(const Subject& s) const {
  std::vector<Decision> out;
  for (const Rule& r : c_->rules) {
    if (!r.enabled) continue;
    std::vector<size_t> hits;
    if (!rule_fires(r, s, hits)) continue;
    std::sort(hits.begin(), hits.end());
    hits.erase(std::unique(hits.begin(), hits.end()), hits.end());
    Decision d;
    d.rule = r.name;
    d.action = r.action;
    d.severity = r.severity;
    d.tags = r.tags;
    // Global monitor is the safety switch: no rule can enforce under it.
    d.enforce =
        c_->settings.mode == Mode::kEnforce && r.mode.value_or(Mode::kEnforce) == Mode::kEnforce;
    d.fail_closed = r.fail_closed.value_or(c_->settings.fail_closed);
    d.message = render_message(r.message, r, s, hits);
    d.findings = std::move(hits);
    out.push_back(std::move(d));
  }
  return out;
}

Verdict Policy::strongest(const std::vector<Decision>& decisions) {
  Verdict v;
  for (size_t i = 0; i < decisions.size(); ++i) {
    const Decision& d = decisions[i];
    if (!d.enforce) continue;
    if (!v.action || d.action > *v.action) {
      v.action = d.action;
      v.decisions.clear();
    }
    if (d.action == *v.action) v.decisions.push_back(i);
  }
  return v;
}

const Settings& Policy::settings() const {
  return c_->settings;
}
const std::vector<budget::BudgetSpec>& Policy::budgets() const {
  return c_->budgets;
}
const std::vector<budget::RateLimitSpec>& Policy::rate_limits() const {
  return c_->rate_limits;
}
const budget::LedgerSpec& Policy::ledger() const {
  return c_->ledger;
}
const GateScope& Policy::gate_scope() const {
  return c_->gate;
}
Summary Policy::summary() const {
  return c_->summary;
}
const std::vector<std::string>& Policy::warnings() const {
  return c_->warnings;
}

}  // namespace agentwall::policy
