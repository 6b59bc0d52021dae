// The compiled form of a policy: what the loader builds and the evaluator walks. Internal to
// agent/policy/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/policy/glob.h"
#include "agent/policy/policy.h"

namespace agentwall::policy {

// The Subject fields a rule can select on.
enum class Field : uint8_t {
  kExe,
  kName,
  kUser,
  kUid,
  kUnit,
  kContainer,
  kCgroup,
  kParent,
  kKind,
  kProvider,
  kHost,
  kModel,
  kOperation,
  kDirection,
  kApiKey,
  kMcpServer,
  kMcpTool,
  kMcpMethod,
};

// Where in a call a finding may be (`findings.where`), as bits.
enum WhereBits : uint8_t {
  kWhereNewTurn = 1,        // messages of the new turn (what the call newly sends)
  kWhereOutputText = 2,     // the model's answer
  kWhereToolArguments = 4,  // arguments of tool calls the model made
  kWhereOther = 8,          // anything else (MCP payloads, …)
  kWhereAny = 15,
};

struct FindingsTest {
  uint8_t categories = 0;  // bit per category (finding_category_bit); 0: any
  PatternSet detectors;    // empty: any
  double min_confidence = 0;
  uint8_t where = kWhereAny;
};

enum class StateLevel : uint8_t { kOk, kWarning, kExceeded };

struct Condition {
  enum class Kind : uint8_t { kAll, kAny, kNot, kField, kFindings, kScore, kBudget, kRateLimit };
  Kind kind = Kind::kAll;
  std::vector<std::shared_ptr<const Condition>> children;  // kAll, kAny, kNot (one)
  // kField
  Field field = Field::kExe;
  bool negated = false;
  PatternSet values;
  // kFindings
  FindingsTest findings;
  // kScore
  int score = 0;
  // kBudget, kRateLimit: name empty = any of them; the state named or worse
  std::string name;
  StateLevel level = StateLevel::kExceeded;
};
using ConditionPtr = std::shared_ptr<const Condition>;

// A message template cut into literal text and placeholders at load.
struct MessagePart {
  enum class Kind : uint8_t {
    kText,
    kModel,
    kProvider,
    kExe,
    kRule,
    kDetectors,
    kUser,
    kHost,
    kSeverity,
    kAction,
    kScore,
    kTool
  };
  Kind kind = Kind::kText;
  std::string text;
};

struct Exception {
  std::string name;
  ConditionPtr when;
};

struct Rule {
  std::string name;
  std::string description;
  bool enabled = true;
  std::optional<Mode> mode;  // unset: the global mode
  ConditionPtr match;        // `match` and `when` together (all must hold)
  std::vector<Exception> exceptions;
  Action action = Action::kAlert;
  std::string severity = "medium";
  std::vector<std::string> tags;
  std::vector<MessagePart> message;
  std::optional<bool> fail_closed;  // unset: the global setting
};

struct Policy::Compiled {
  Settings settings;
  std::vector<Rule> rules;
  std::vector<budget::BudgetSpec> budgets;
  std::vector<budget::RateLimitSpec> rate_limits;
  budget::LedgerSpec ledger;
  GateScope gate;
  Summary summary;
  std::vector<std::string> warnings;
};

// Evaluation (evaluate.cc). `hits` collects the indexes of the findings that made the
// condition hold; null when the caller does not need them (under `not:`).
bool holds(const Condition& c, const Subject& s, std::vector<size_t>* hits);
std::string render_message(const std::vector<MessagePart>& parts, const Rule& rule,
                           const Subject& s, const std::vector<size_t>& hits);

// The kernel gate's view of a compiled policy (gate.cc).
GateScope compute_gate_scope(const Policy::Compiled& c);

uint8_t finding_category_bit(std::string_view category);  // 0: unknown category

}  // namespace agentwall::policy
