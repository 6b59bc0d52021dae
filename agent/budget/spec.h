// What a budget or a rate limit is, as the policy files declare it. The policy loader fills
// these; the ledger (agent/budget/ledger.h) enforces them. Plain data, no behaviour.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace agentwall::budget {

// What a budget counts against. A principal is the combination of the dimensions a budget
// names: {user} gives one budget per user, {exe, model} one per executable and model.
enum class Dimension : uint8_t {
  kUser,       // the process's user name (uid when it has none)
  kExe,        // executable path
  kUnit,       // systemd unit
  kContainer,  // container id
  kApiKey,     // API-key fingerprint ("sha256:…", never the key)
  kModel,      // requested model
  kProvider,   // openai, anthropic, …
};

enum class Window : uint8_t { kMinute, kHour, kDay, kMonth };

struct BudgetSpec {
  std::string name;            // unique among budgets
  std::vector<Dimension> per;  // empty: one budget for the whole host (or fleet)
  Window window = Window::kDay;
  bool rolling = false;           // false: calendar windows (UTC); true: the last window's length
  std::optional<int64_t> tokens;  // limit in tokens (input + output)
  std::optional<double> usd;      // limit in US dollars
  std::vector<double> warn_at;    // fractions, e.g. {0.8}: an alert when crossed
  std::string action = "block";   // at 100%: "block" or "alert"
  // Filters: the budget applies only to calls that match (empty = all). cgroups: the
  // calling process's cgroup v2 path (what lets several agents, each counting its own
  // processes, share one budget in Redis).
  std::vector<std::string> models, providers, exes, users, cgroups;
};

struct RateLimitSpec {
  std::string name;
  std::vector<Dimension> per;  // e.g. {kUser, kModel}
  std::optional<double> requests_per_minute;
  std::optional<double> tokens_per_minute;
  std::optional<double> burst;  // bucket size as a multiple of the per-minute rate; default 1
  std::string action = "block";
  std::vector<std::string> models, providers, exes, users, cgroups;
};

// What happens when the shared ledger (Redis) cannot be reached.
enum class OnUnreachable : uint8_t { kAllow, kBlock };

struct LedgerSpec {
  std::string backend = "sqlite";  // "sqlite" (state directory) or "redis"
  std::string sqlite_path;         // empty: <state dir>/ledger.db
  std::string redis_url;           // redis://host:port/db
  std::string key_prefix = "agentwall:";
  OnUnreachable on_unreachable = OnUnreachable::kAllow;
};

}  // namespace agentwall::budget
