#include "agent/budget/plan.h"

#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "agent/common/time.h"

namespace agentwall::budget {
namespace {

constexpr uint64_t kNsPerS = 1'000'000'000ull;
// Dollar sums are floating point: ten calls of $0.10 must fit a $1.00 budget.
constexpr double kSlack = 1e-9;

const char* dimension_name(Dimension d) {
  switch (d) {
    case Dimension::kUser:
      return "user";
    case Dimension::kExe:
      return "exe";
    case Dimension::kUnit:
      return "unit";
    case Dimension::kContainer:
      return "container";
    case Dimension::kApiKey:
      return "api_key";
    case Dimension::kModel:
      return "model";
    case Dimension::kProvider:
      return "provider";
  }
  return "?";
}

const std::string& dimension_value(const Principal& who, Dimension d) {
  switch (d) {
    case Dimension::kUser:
      return who.user;
    case Dimension::kExe:
      return who.exe;
    case Dimension::kUnit:
      return who.unit;
    case Dimension::kContainer:
      return who.container;
    case Dimension::kApiKey:
      return who.api_key;
    case Dimension::kModel:
      return who.model;
    case Dimension::kProvider:
      return who.provider;
  }
  return who.user;
}

void append_escaped(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ',' || c == '=' || c == '%' || u < 0x20 || u == 0x7f) {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
}

// Empty filter list: every call matches.
bool any_matches(const std::vector<std::string>& patterns, const std::string& value) {
  if (patterns.empty()) return true;
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return glob_match(p, value); });
}

template <typename Spec>
bool filters_match(const Spec& spec, const Principal& who) {
  return any_matches(spec.models, who.model) && any_matches(spec.providers, who.provider) &&
         any_matches(spec.exes, who.exe) && any_matches(spec.users, who.user) &&
         any_matches(spec.cgroups, who.cgroup);
}

int64_t bucket_width(const BudgetSpec& spec) {
  return rolling_length(spec.window) / kRollingBuckets;
}

bool valid_action(const std::string& a) {
  return a == "block" || a == "alert";
}

bool positive(const std::optional<double>& v) {
  return !v || (std::isfinite(*v) && *v > 0);
}

}  // namespace

std::string principal_key(const Principal& who, const std::vector<Dimension>& per) {
  if (per.empty()) return "*";
  std::string key;
  for (const Dimension d : per) {
    if (!key.empty()) key += ',';
    key += dimension_name(d);
    key += '=';
    append_escaped(key, dimension_value(who, d));
  }
  return key;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  return fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

bool budget_applies(const BudgetSpec& spec, const Principal& who) {
  return filters_match(spec, who);
}
bool rate_applies(const RateLimitSpec& spec, const Principal& who) {
  return filters_match(spec, who);
}

int64_t calendar_start(Window w, int64_t unix_s) {
  using namespace std::chrono;
  const sys_seconds t{seconds{unix_s}};
  switch (w) {
    case Window::kMinute:
      return floor<minutes>(t).time_since_epoch().count() * 60;
    case Window::kHour:
      return floor<hours>(t).time_since_epoch().count() * 3600;
    case Window::kDay:
      return floor<days>(t).time_since_epoch().count() * 86400;
    case Window::kMonth: {
      const year_month_day ymd{floor<days>(t)};
      const sys_days first{ymd.year() / ymd.month() / 1};
      return first.time_since_epoch().count() * 86400;
    }
  }
  return unix_s;
}

int64_t rolling_length(Window w) {
  switch (w) {
    case Window::kMinute:
      return 60;
    case Window::kHour:
      return 3600;
    case Window::kDay:
      return 86400;
    case Window::kMonth:
      return 30 * 86400;
  }
  return 86400;
}

WindowPosition locate(const BudgetSpec& spec, int64_t unix_s) {
  WindowPosition pos;
  if (spec.rolling) {
    const int64_t width = bucket_width(spec);
    pos.bucket_start = unix_s / width * width;
    pos.window_start = pos.bucket_start - (kRollingBuckets - 1) * width;
    pos.retain_s = rolling_length(spec.window) + width;
  } else {
    pos.bucket_start = pos.window_start = calendar_start(spec.window, unix_s);
    pos.retain_s = spec.window == Window::kMonth ? 31 * 86400 : rolling_length(spec.window);
  }
  // A reservation may settle up to its TTL after the window moved on.
  pos.retain_s += static_cast<int64_t>(kReservationTtlNs / kNsPerS) + 60;
  return pos;
}

BudgetEntry make_budget_entry(const BudgetSpec& spec, std::string key, uint64_t now_ns) {
  BudgetEntry e{&spec, std::move(key), locate(spec, static_cast<int64_t>(now_ns / kNsPerS)), {}};
  std::set<double> levels(spec.warn_at.begin(), spec.warn_at.end());
  levels.erase(1.0);
  e.levels.assign(levels.begin(), levels.end());
  e.levels.push_back(1.0);
  return e;
}

Plan make_plan(const std::vector<BudgetSpec>& budgets, const std::vector<RateLimitSpec>& rates,
               const Principal& who, uint64_t now_ns) {
  Plan plan;
  for (const BudgetSpec& b : budgets)
    if (budget_applies(b, who))
      plan.budgets.push_back(make_budget_entry(b, principal_key(who, b.per), now_ns));
  for (const RateLimitSpec& r : rates)
    if (rate_applies(r, who)) plan.rates.push_back({&r, principal_key(who, r.per)});
  return plan;
}

std::string held_to_json(const Held& held) {
  nlohmann::json b = nlohmann::json::array(), r = nlohmann::json::array();
  for (const HeldBudget& h : held.budgets)
    b.push_back({{"n", h.name},
                 {"k", h.key},
                 {"b", h.bucket},
                 {"t", h.estimate.tokens},
                 {"u", h.estimate.usd}});
  for (const HeldRate& h : held.rates) r.push_back({{"n", h.name}, {"k", h.key}, {"t", h.tokens}});
  return nlohmann::json{{"b", b}, {"r", r}}.dump();
}

bool held_from_json(std::string_view json, Held& held) {
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object()) return false;
  try {
    // The Redis scripts' cjson writes an empty list as {}: skip anything not a list.
    if (j.contains("b") && j["b"].is_array())
      for (const auto& e : j["b"])
        held.budgets.push_back({e.at("n").get<std::string>(),
                                e.at("k").get<std::string>(),
                                e.at("b").get<int64_t>(),
                                {e.at("t").get<int64_t>(), e.at("u").get<double>()}});
    if (j.contains("r") && j["r"].is_array())
      for (const auto& e : j["r"])
        held.rates.push_back(
            {e.at("n").get<std::string>(), e.at("k").get<std::string>(), e.at("t").get<int64_t>()});
  } catch (const nlohmann::json::exception&) {
    return false;
  }
  return true;
}

Held held_for(const Plan& plan, Usage estimate) {
  Held held;
  for (const BudgetEntry& e : plan.budgets)
    held.budgets.push_back({e.spec->name, e.key, e.pos.bucket_start, estimate});
  for (const RateEntry& r : plan.rates)
    held.rates.push_back({r.spec->name, r.key, estimate.tokens});
  return held;
}

Plan plan_for(const std::vector<BudgetSpec>& budgets, const std::vector<RateLimitSpec>& rates,
              const Held& held, uint64_t now_ns) {
  Plan plan;
  for (const HeldBudget& h : held.budgets) {
    const auto it = std::find_if(budgets.begin(), budgets.end(),
                                 [&](const BudgetSpec& b) { return b.name == h.name; });
    if (it != budgets.end()) plan.budgets.push_back(make_budget_entry(*it, h.key, now_ns));
  }
  for (const HeldRate& h : held.rates) {
    const auto it = std::find_if(rates.begin(), rates.end(),
                                 [&](const RateLimitSpec& r) { return r.name == h.name; });
    if (it != rates.end()) plan.rates.push_back({&*it, h.key});
  }
  return plan;
}

double fraction_of(const BudgetSpec& spec, int64_t tokens, double usd) {
  double f = 0;
  if (spec.tokens) f = std::max(f, static_cast<double>(tokens) / static_cast<double>(*spec.tokens));
  if (spec.usd) f = std::max(f, usd / *spec.usd);
  return f;
}

bool would_refuse(const BudgetSpec& spec, int64_t tokens, double usd, Usage estimate) {
  if (spec.action != "block") return false;
  if (fraction_of(spec, tokens, usd) >= 1.0 - kSlack) return true;
  if (spec.tokens && tokens + estimate.tokens > *spec.tokens) return true;
  return spec.usd && usd + estimate.usd > *spec.usd * (1 + kSlack);
}

std::vector<double> cross_levels(const BudgetEntry& entry, double fraction, uint64_t& mask) {
  std::vector<double> crossed;
  for (size_t i = 0; i < entry.levels.size() && i < 64; ++i) {
    const uint64_t bit = uint64_t{1} << i;
    const bool reached = fraction >= entry.levels[i] - kSlack;
    if (reached && !(mask & bit)) {
      mask |= bit;
      crossed.push_back(entry.levels[i]);
    } else if (!reached && entry.spec->rolling) {
      mask &= ~bit;
    }
  }
  return crossed;
}

BudgetStatus make_status(const BudgetEntry& entry, int64_t tokens, double usd) {
  const BudgetSpec& spec = *entry.spec;
  BudgetStatus s;
  s.name = spec.name;
  s.key = entry.key;
  s.used_tokens = tokens;
  s.used_usd = usd;
  s.limit_tokens = spec.tokens;
  s.limit_usd = spec.usd;
  s.fraction = fraction_of(spec, tokens, usd);
  const double first_warning = entry.levels.front();  // 1.0 when there are no warn levels
  s.state = s.fraction >= 1.0 - kSlack             ? "exceeded"
            : s.fraction >= first_warning - kSlack ? "warning"
                                                   : "ok";
  s.window_start = format_rfc3339(static_cast<uint64_t>(entry.pos.window_start) * kNsPerS);
  s.action = spec.action;
  return s;
}

double bucket_capacity(double per_minute, const RateLimitSpec& spec) {
  return per_minute * spec.burst.value_or(1.0);
}

double refill(BucketLevel b, double per_minute, double capacity, double elapsed_s) {
  if (!b.exists) return capacity;  // a principal's first call finds a full bucket
  return std::min(capacity, b.level + std::max(0.0, elapsed_s) * per_minute / 60.0);
}

double wait_for(double level, double cost, double per_minute, double capacity) {
  const double need = std::min(cost, capacity);
  if (level >= need - kSlack) return 0;
  return (need - level) * 60.0 / per_minute;
}

double take(double level, double cost, double capacity) {
  return std::max(-capacity, level - cost);
}

bool validate(const std::vector<BudgetSpec>& budgets, const std::vector<RateLimitSpec>& rates,
              std::string& error) {
  std::set<std::string> names;
  for (const BudgetSpec& b : budgets) {
    const std::string where = "budget \"" + b.name + "\": ";
    if (b.name.empty()) return error = "a budget has no name", false;
    if (!names.insert(b.name).second) return error = where + "the name is used twice", false;
    if (!b.tokens && !b.usd) return error = where + "needs a tokens or usd limit", false;
    if ((b.tokens && *b.tokens <= 0) || !positive(b.usd))
      return error = where + "limits must be greater than zero", false;
    if (!valid_action(b.action))
      return error = where + "action must be block or alert, not \"" + b.action + "\"", false;
    for (const double w : b.warn_at)
      if (!(w > 0 && w <= 1)) return error = where + "warn_at levels must be in (0, 1]", false;
  }
  names.clear();
  for (const RateLimitSpec& r : rates) {
    const std::string where = "rate limit \"" + r.name + "\": ";
    if (r.name.empty()) return error = "a rate limit has no name", false;
    if (!names.insert(r.name).second) return error = where + "the name is used twice", false;
    if (!r.requests_per_minute && !r.tokens_per_minute)
      return error = where + "needs requests_per_minute or tokens_per_minute", false;
    if (!positive(r.requests_per_minute) || !positive(r.tokens_per_minute) || !positive(r.burst))
      return error = where + "rates and burst must be greater than zero", false;
    if (!valid_action(r.action))
      return error = where + "action must be block or alert, not \"" + r.action + "\"", false;
  }
  return true;
}

}  // namespace agentwall::budget
