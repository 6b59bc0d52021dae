// What both ledger backends share: which budgets and rate limits apply to a call, the
// principal key, window arithmetic, and the rules that turn counts into a BudgetStatus.
// The Redis backend repeats the rules that must run atomically inside its Lua scripts
// (redis_scripts.h); keep the two in step.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/budget/ledger.h"
#include "agent/budget/spec.h"

namespace agentwall::budget {

// "user=alice,model=gpt-4o" from the dimensions named; "*" when none. Values are
// percent-escaped where they would be ambiguous (',', '=', '%', control characters).
std::string principal_key(const Principal& who, const std::vector<Dimension>& per);

// `pattern` may contain `*` (any run of characters), `?` and [classes] (fnmatch(3)).
bool glob_match(std::string_view pattern, std::string_view text);
bool budget_applies(const BudgetSpec& spec, const Principal& who);
bool rate_applies(const RateLimitSpec& spec, const Principal& who);

// Where `now` falls for a budget. Usage is kept in buckets keyed by their start (Unix
// seconds); a window is the buckets with start >= window_start. Calendar windows have one
// bucket (the minute, hour, day or month, UTC); rolling windows have kRollingBuckets
// buckets of window_length/kRollingBuckets each, so usage ages out one bucket at a time.
inline constexpr int64_t kRollingBuckets = 60;
struct WindowPosition {
  int64_t bucket_start = 0;
  int64_t window_start = 0;
  int64_t retain_s = 0;  // how long a bucket's data stays useful (for TTLs)
};
int64_t calendar_start(Window w, int64_t unix_s);
int64_t rolling_length(Window w);  // 60 s, 1 h, 24 h, 30 d
WindowPosition locate(const BudgetSpec& spec, int64_t unix_s);

// One budget that applies to a call, at the time of the operation.
struct BudgetEntry {
  const BudgetSpec* spec = nullptr;
  std::string key;
  WindowPosition pos;
  std::vector<double> levels;  // warn_at ascending, then 1.0: bit i of an alert mask
};
struct RateEntry {
  const RateLimitSpec* spec = nullptr;
  std::string key;
};
struct Plan {
  std::vector<BudgetEntry> budgets;
  std::vector<RateEntry> rates;
  bool empty() const { return budgets.empty() && rates.empty(); }
};
BudgetEntry make_budget_entry(const BudgetSpec& spec, std::string key, uint64_t now_ns);
Plan make_plan(const std::vector<BudgetSpec>& budgets, const std::vector<RateLimitSpec>& rates,
               const Principal& who, uint64_t now_ns);

// What a reservation holds, stored by both backends as JSON so that any process (or host)
// can settle, release or expire it.
struct HeldBudget {
  std::string name, key;
  int64_t bucket = 0;
  Usage estimate;
};
struct HeldRate {
  std::string name, key;
  int64_t tokens = 0;
};
struct Held {
  std::vector<HeldBudget> budgets;
  std::vector<HeldRate> rates;
};
std::string held_to_json(const Held& held);
bool held_from_json(std::string_view json, Held& held);
Held held_for(const Plan& plan, Usage estimate);
// The plan for settling a reservation: its budgets and rates as the specs are now (a budget
// removed from the policy since is skipped).
Plan plan_for(const std::vector<BudgetSpec>& budgets, const std::vector<RateLimitSpec>& rates,
              const Held& held, uint64_t now_ns);

// ---- the rules -------------------------------------------------------------------------
double fraction_of(const BudgetSpec& spec, int64_t tokens, double usd);
// A block budget refuses a call when it is spent or the estimate would take it over.
bool would_refuse(const BudgetSpec& spec, int64_t tokens, double usd, Usage estimate);
// Levels reached and not yet alerted (per the mask) are returned and set in the mask. In a
// rolling window a level re-arms once usage falls below it again.
std::vector<double> cross_levels(const BudgetEntry& entry, double fraction, uint64_t& mask);
BudgetStatus make_status(const BudgetEntry& entry, int64_t tokens, double usd);

// Token buckets: capacity = per-minute rate x burst, refilled continuously. A request needs
// min(cost, capacity) in the bucket, then takes its whole cost (the level may go negative,
// down to -capacity, which delays the next calls: a large call is paid for, not forgiven).
struct BucketLevel {
  double level = 0;
  bool exists = false;
};
double bucket_capacity(double per_minute, const RateLimitSpec& spec);
double refill(BucketLevel b, double per_minute, double capacity, double elapsed_s);
// Seconds until the bucket holds `cost` (0 when it does now).
double wait_for(double level, double cost, double per_minute, double capacity);
double take(double level, double cost, double capacity);

bool validate(const std::vector<BudgetSpec>& budgets, const std::vector<RateLimitSpec>& rates,
              std::string& error);

}  // namespace agentwall::budget
