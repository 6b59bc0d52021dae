// Pass two for `budgets:`, `rate_limits:` and `ledger:`: plain specs for the budget ledger
// (agent/budget/spec.h), checked here so that the ledger can trust them.
#include <algorithm>
#include <cstdint>

#include "agent/policy/loader.h"

namespace agentwall::policy {

namespace {

using budget::Dimension;

const std::vector<std::string> kDimensions = {"user",    "exe",   "unit",    "container",
                                              "api_key", "model", "provider"};
constexpr Dimension kDimensionValues[] = {
    Dimension::kUser,   Dimension::kExe,   Dimension::kUnit,    Dimension::kContainer,
    Dimension::kApiKey, Dimension::kModel, Dimension::kProvider};

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

std::optional<std::vector<Dimension>> read_per(Diagnostics& d, const Ref& value,
                                               const std::string& ctx) {
  const auto names = read_strings(d, value, ctx, "per");
  if (!names) return std::nullopt;
  std::vector<Dimension> out;
  bool ok = true;
  for (const auto& [name, at] : *names) {
    const auto it = std::find(kDimensions.begin(), kDimensions.end(), name);
    if (it == kDimensions.end()) {
      d.error(at,
              ctx + ": unknown per " + quoted(name) + "; expected one of " + one_of(kDimensions));
      ok = false;
      continue;
    }
    const Dimension dim = kDimensionValues[it - kDimensions.begin()];
    if (std::find(out.begin(), out.end(), dim) != out.end()) {
      d.error(at, ctx + ": per names " + quoted(name) + " twice");
      ok = false;
      continue;
    }
    out.push_back(dim);
  }
  if (!ok) return std::nullopt;
  return out;
}

// models, providers, exes, users, cgroups: which calls a budget or rate limit counts.
template <typename Spec>
bool read_filter(const std::string& key, const Ref& value, const std::string& ctx,
                 ConditionCompiler& cc, Spec& spec) {
  std::vector<std::string>* into = key == "models"      ? &spec.models
                                   : key == "providers" ? &spec.providers
                                   : key == "exes"      ? &spec.exes
                                   : key == "users"     ? &spec.users
                                   : key == "cgroups"   ? &spec.cgroups
                                                        : nullptr;
  if (!into) return false;
  if (auto list = cc.patterns(value, ctx, key)) *into = std::move(*list);
  return true;
}

std::optional<std::string> read_action(Diagnostics& d, const Ref& value, const std::string& ctx) {
  const auto a = read_enum(d, value, ctx, "action", {"block", "alert"});
  if (!a) return std::nullopt;
  return *a == 0 ? "block" : "alert";
}

budget::BudgetSpec compile_budget(Diagnostics& d, const RawNamed& raw, ConditionCompiler& cc) {
  const std::string ctx = "budget " + quoted(raw.name);
  budget::BudgetSpec b;
  b.name = raw.name;
  const Entries entries =
      map_entries(d, raw.def, ctx,
                  {"name", "per", "window", "rolling", "tokens", "usd", "warn_at", "action",
                   "models", "providers", "exes", "users", "cgroups"});
  for (const auto& [key, value] : entries) {
    if (key == "per") {
      if (auto per = read_per(d, value, ctx)) b.per = std::move(*per);
    } else if (key == "window") {
      if (auto w = read_enum(d, value, ctx, "window", {"minute", "hour", "day", "month"}))
        b.window = budget::Window(*w);
    } else if (key == "rolling") {
      b.rolling = read_bool(d, value, ctx, key).value_or(false);
    } else if (key == "tokens") {
      b.tokens = read_integer(d, value, ctx, key, 1, INT64_MAX / 2);
    } else if (key == "usd") {
      b.usd = read_number(d, value, ctx, key, 1e-9, 1e12);
    } else if (key == "warn_at") {
      if (value.node.IsScalar()) {
        if (auto f = read_number(d, value, ctx, key, 0.01, 0.99)) b.warn_at.push_back(*f);
      } else if (value.node.IsSequence()) {
        for (const YAML::Node& n : value.node) {
          if (auto f = read_number(d, value.child(n), ctx, key, 0.01, 0.99))
            b.warn_at.push_back(*f);
        }
        std::sort(b.warn_at.begin(), b.warn_at.end());
      } else {
        d.error(value.pos(), ctx + ": warn_at: expected a fraction such as 0.8, or a list of them");
      }
    } else if (key == "action") {
      if (auto a = read_action(d, value, ctx)) b.action = *a;
    } else if (key != "name") {
      read_filter(key, value, ctx, cc, b);
    }
  }
  if (!b.tokens && !b.usd) {
    d.error(raw.def.pos(), ctx + ": a budget needs a limit: `tokens: N`, `usd: N` or both");
  }
  return b;
}

budget::RateLimitSpec compile_rate_limit(Diagnostics& d, const RawNamed& raw,
                                         ConditionCompiler& cc) {
  const std::string ctx = "rate limit " + quoted(raw.name);
  budget::RateLimitSpec r;
  r.name = raw.name;
  const Entries entries =
      map_entries(d, raw.def, ctx,
                  {"name", "per", "requests_per_minute", "tokens_per_minute", "burst", "action",
                   "models", "providers", "exes", "users", "cgroups"});
  for (const auto& [key, value] : entries) {
    if (key == "per") {
      if (auto per = read_per(d, value, ctx)) r.per = std::move(*per);
    } else if (key == "requests_per_minute") {
      r.requests_per_minute = read_number(d, value, ctx, key, 1e-3, 1e9);
    } else if (key == "tokens_per_minute") {
      r.tokens_per_minute = read_number(d, value, ctx, key, 1e-3, 1e12);
    } else if (key == "burst") {
      r.burst = read_number(d, value, ctx, key, 1, 1000);
    } else if (key == "action") {
      if (auto a = read_action(d, value, ctx)) r.action = *a;
    } else if (key != "name") {
      read_filter(key, value, ctx, cc, r);
    }
  }
  if (!r.requests_per_minute && !r.tokens_per_minute) {
    d.error(raw.def.pos(), ctx +
                               ": a rate limit needs `requests_per_minute`, "
                               "`tokens_per_minute` or both");
  }
  return r;
}

}  // namespace

std::vector<budget::BudgetSpec> compile_budgets(Diagnostics& d, const RawPolicy& raw,
                                                ConditionCompiler& cc) {
  std::vector<budget::BudgetSpec> out;
  for (const RawNamed& b : raw.budgets) out.push_back(compile_budget(d, b, cc));
  return out;
}

std::vector<budget::RateLimitSpec> compile_rate_limits(Diagnostics& d, const RawPolicy& raw,
                                                       ConditionCompiler& cc) {
  std::vector<budget::RateLimitSpec> out;
  for (const RawNamed& r : raw.rate_limits) out.push_back(compile_rate_limit(d, r, cc));
  return out;
}

budget::LedgerSpec compile_ledger(Diagnostics& d, const RawPolicy& raw) {
  budget::LedgerSpec l;
  const std::string ctx = "ledger";
  std::optional<Pos> backend_at;
  for (const auto& [key, value] : raw.ledger) {
    if (key == "backend") {
      if (auto b = read_enum(d, value, ctx, key, {"sqlite", "redis"}))
        l.backend = *b ? "redis" : "sqlite";
      backend_at = value.pos();
    } else if (key == "on_unreachable") {
      if (auto o = read_enum(d, value, ctx, key, {"allow", "block"}))
        l.on_unreachable = *o ? budget::OnUnreachable::kBlock : budget::OnUnreachable::kAllow;
    } else if (auto s = read_string(d, value, ctx, key)) {
      if (key == "sqlite_path") l.sqlite_path = *s;
      if (key == "key_prefix") l.key_prefix = *s;
      if (key == "redis_url") {
        if (!s->starts_with("redis://") && !s->starts_with("rediss://")) {
          d.error(value.pos(), ctx + ": redis_url: expected redis://HOST:PORT/DB or rediss://...");
        }
        l.redis_url = *s;
      }
    }
  }
  if (l.backend == "redis" && l.redis_url.empty() && backend_at) {
    d.error(*backend_at, ctx + ": backend redis needs `redis_url: redis://HOST:PORT/DB`");
  }
  return l;
}

}  // namespace agentwall::policy
