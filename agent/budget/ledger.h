// The budget ledger: counts tokens and dollars per principal against the budgets and rate
// limits a policy declares, and says whether a call may go ahead. Two backends behind one
// interface: SQLite (one host, a file in the state directory) and Redis (a fleet sharing one
// budget). Semantics are written down in docs/BUDGETS.md.
//
// A call goes through reserve (its estimated cost is counted at once, so parallel callers
// cannot overshoot together), then settle (the real usage replaces the estimate) or release
// (the call never happened). Every method is safe to call from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/budget/spec.h"

namespace agentwall::budget {

// Who made the call. Budgets name the dimensions they count against (BudgetSpec::per).
struct Principal {
  std::string user, exe, unit, container, api_key, model, provider;
  std::string cgroup;  // matched by the cgroups filter, never part of a key
};

struct Usage {
  int64_t tokens = 0;
  double usd = 0;
};

struct BudgetStatus {
  std::string name;         // BudgetSpec::name
  std::string key;          // principal key, e.g. "user=alice,model=gpt-4o"; "*" when per is empty
  int64_t used_tokens = 0;  // settled usage plus in-flight reservations, this window
  double used_usd = 0;
  std::optional<int64_t> limit_tokens;
  std::optional<double> limit_usd;
  double fraction = 0;  // the larger of tokens/limit and usd/limit
  std::string state;    // "ok", "warning" (a warn level reached) or "exceeded" (>= 100%)
  // Warn levels (and 1.0 for the limit itself) this operation crossed: each fires once per
  // window and key, so an 80% alert is raised once, not on every call after it.
  std::vector<double> crossed;
  std::string window_start;  // RFC 3339; for rolling windows the oldest bucket counted
  std::string action;        // "block" or "alert"
  bool refused = false;      // this budget is why the reservation was refused
};

struct RateStatus {
  std::string name, key;
  bool exceeded = false;
  double retry_after_s = 0;  // when the bucket will hold enough again
  std::string action;
};

struct Reservation {
  uint64_t id = 0;  // 0: nothing was reserved (no budget or rate applies, refused, or error)
  bool allowed = true;
  std::vector<BudgetStatus> budgets;  // every budget that applies to the call
  std::vector<RateStatus> rates;      // every rate limit that applies to the call
  std::string error;  // backend trouble, e.g. "redis 10.0.0.5:6379 unreachable: …"
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // Opens the backend LedgerSpec names. The specs are checked (unique names, positive
  // limits, known actions). On failure returns nullptr and says why in `error`.
  static std::unique_ptr<Ledger> open(const LedgerSpec& ledger, std::vector<BudgetSpec> budgets,
                                      std::vector<RateLimitSpec> rates,
                                      const std::string& state_dir, std::string& error);

  // Reserves `estimate` in every budget and rate limit that applies to the principal, all or
  // nothing. Refuses (allowed=false, nothing reserved) when a budget whose action is "block"
  // is spent or would go over its limit, or a rate limit whose action is "block" is empty.
  virtual Reservation reserve(const Principal& who, Usage estimate, uint64_t now_unix_ns) = 0;

  // Replaces the reservation's estimate by the actual usage (a cut stream: what was seen).
  // Returns the state of the budgets it counted in; empty when the id is unknown (already
  // settled, released, or expired).
  virtual std::vector<BudgetStatus> settle(uint64_t reservation_id, Usage actual,
                                           uint64_t now_unix_ns) = 0;

  // Gives a reservation back: the call was blocked or abandoned.
  virtual void release(uint64_t reservation_id) = 0;

  // The current window of every budget key that has usage in it.
  virtual std::vector<BudgetStatus> status(uint64_t now_unix_ns) = 0;
};

// Reservations never settled or released (a crashed caller, a killed daemon) are given back
// on the first ledger operation after they are this old.
inline constexpr uint64_t kReservationTtlNs = 10ull * 60 * 1'000'000'000;

}  // namespace agentwall::budget
