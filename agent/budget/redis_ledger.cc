// The Redis ledger: many hosts share budgets. Each operation is one Lua script
// (redis_scripts.h), which Redis runs atomically. The connection is synchronous with short
// timeouts, so an unreachable Redis costs a caller at most kTimeout; LedgerSpec::on_unreachable
// then decides whether the call goes ahead.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>
#include <optional>
#include <tuple>

#include <nlohmann/json.hpp>

#include "agent/budget/backends.h"
#include "agent/budget/plan.h"
#include "agent/budget/redis_scripts.h"

namespace agentwall::budget {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr timeval kTimeout{0, 200'000};  // connect and each command
// After a failed connect, calls fail at once for this long instead of each paying a timeout.
constexpr auto kRetryGap = std::chrono::milliseconds(250);

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;
struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

struct Script {
  std::string body;
  std::string sha;  // from SCRIPT LOAD on the current connection
};

uint64_t ms(uint64_t ns) {
  return ns / 1'000'000;
}

json budget_json(const BudgetEntry& e, const std::string& prefix) {
  const BudgetSpec& s = *e.spec;
  return {{"h", prefix + "b:" + s.name + "\n" + e.key},
          {"name", s.name},
          {"key", e.key},
          {"bucket", e.pos.bucket_start},
          {"win", e.pos.window_start},
          {"rolling", s.rolling},
          {"lt", s.tokens.value_or(-1)},
          {"lu", s.usd.value_or(-1.0)},
          {"block", s.action == "block"},
          {"levels", e.levels},
          {"ttl_s", e.pos.retain_s}};
}

json rate_json(const RateEntry& r, const std::string& prefix) {
  const RateLimitSpec& s = *r.spec;
  const double burst = s.burst.value_or(1.0);
  // An untouched bucket refills from empty to full within 2 x burst minutes; after that its
  // state is no different from a new, full one.
  const int64_t ttl_ms = static_cast<int64_t>((2 * burst * 60 + 60) * 1000);
  return {{"h", prefix + "r:" + s.name + "\n" + r.key},
          {"name", s.name},
          {"key", r.key},
          {"rpm", s.requests_per_minute.value_or(-1.0)},
          {"tpm", s.tokens_per_minute.value_or(-1.0)},
          {"burst", burst},
          {"block", s.action == "block"},
          {"ttl_ms", ttl_ms}};
}

json plan_json(const Plan& plan, const std::string& prefix) {
  json j{{"prefix", prefix}, {"budgets", json::array()}, {"rates", json::array()}};
  for (const BudgetEntry& e : plan.budgets) j["budgets"].push_back(budget_json(e, prefix));
  for (const RateEntry& r : plan.rates) j["rates"].push_back(rate_json(r, prefix));
  return j;
}

// cjson writes an empty Lua table as {}: an empty list.
const json& list(const json& j, const char* field) {
  static const json kEmpty = json::array();
  const auto it = j.find(field);
  return it != j.end() && it->is_array() ? *it : kEmpty;
}

BudgetStatus status_from(const BudgetEntry& e, const json& r) {
  BudgetStatus s = make_status(e, r.value("t", int64_t{0}), r.value("u", 0.0));
  for (const json& level : list(r, "crossed")) s.crossed.push_back(level.get<double>());
  s.refused = r.value("refused", false);
  return s;
}

class RedisLedger final : public Ledger {
 public:
  RedisLedger(RedisAddress address, const LedgerSpec& spec, std::vector<BudgetSpec> budgets,
              std::vector<RateLimitSpec> rates)
      : address_(std::move(address)),
        prefix_(spec.key_prefix),
        on_unreachable_(spec.on_unreachable),
        budgets_(std::move(budgets)),
        rates_(std::move(rates)) {
    const std::string prelude = lua::kPrelude;
    reserve_.body = prelude + lua::kReserve;
    settle_.body = prelude + lua::kSettle;
    release_.body = prelude + lua::kRelease;
    status_.body = prelude + lua::kStatus;
  }

  Reservation reserve(const Principal& who, Usage estimate, uint64_t now_ns) override {
    const Plan plan = make_plan(budgets_, rates_, who, now_ns);
    if (plan.empty()) return {};
    json arg = plan_json(plan, prefix_);
    arg["now_ms"] = ms(now_ns);
    arg["ttl_ms"] = ms(kReservationTtlNs);
    arg["est_t"] = estimate.tokens;
    arg["est_u"] = estimate.usd;
    Reservation out;
    std::string error;
    const json r = run(reserve_, arg, error);
    if (!error.empty()) {
      out.allowed = on_unreachable_ == OnUnreachable::kAllow;
      out.error = std::move(error);
      return out;
    }
    out.allowed = r.value("ok", false);
    out.id = r.value("id", uint64_t{0});
    const json& budgets = list(r, "budgets");
    for (size_t i = 0; i < plan.budgets.size() && i < budgets.size(); ++i)
      out.budgets.push_back(status_from(plan.budgets[i], budgets[i]));
    const json& rates = list(r, "rates");
    for (size_t i = 0; i < plan.rates.size() && i < rates.size(); ++i) {
      const RateEntry& e = plan.rates[i];
      out.rates.push_back({e.spec->name, e.key, rates[i].value("exceeded", false),
                           rates[i].value("retry", 0.0), e.spec->action});
    }
    return out;
  }

  std::vector<BudgetStatus> settle(uint64_t id, Usage actual, uint64_t now_ns) override {
    Plan plan;
    if (!plan_of_reservation(id, now_ns, plan)) return {};
    json arg = plan_json(plan, prefix_);
    arg["now_ms"] = ms(now_ns);
    arg["id"] = id;
    arg["act_t"] = actual.tokens;
    arg["act_u"] = actual.usd;
    std::string error;
    const json r = run(settle_, arg, error);
    std::vector<BudgetStatus> out;
    const json& budgets = list(r, "budgets");
    for (size_t i = 0; i < plan.budgets.size() && i < budgets.size(); ++i)
      out.push_back(status_from(plan.budgets[i], budgets[i]));
    return out;
  }

  void release(uint64_t id) override {
    Plan plan;
    if (!plan_of_reservation(id, 0, plan)) return;
    json arg = plan_json(plan, prefix_);
    arg["id"] = id;
    std::string error;
    run(release_, arg, error);  // unreachable: the reservation expires instead
  }

  std::vector<BudgetStatus> status(uint64_t now_ns) override {
    const json arg{{"prefix", prefix_}, {"now_ms", ms(now_ns)}};
    std::string error;
    std::lock_guard lock(mu_);
    const Reply reply = eval_locked(status_, arg.dump(), error);
    std::vector<BudgetStatus> out;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return out;
    for (size_t i = 0; i < reply->elements; ++i)
      if (auto s = status_of_hash(reply->element[i], now_ns)) out.push_back(std::move(*s));
    std::sort(out.begin(), out.end(), [](const BudgetStatus& a, const BudgetStatus& b) {
      return std::tie(a.name, a.key) < std::tie(b.name, b.key);
    });
    return out;
  }

 private:
  // The reservation's budgets and rates as the specs are now; false when it is unknown.
  bool plan_of_reservation(uint64_t id, uint64_t now_ns, Plan& plan) {
    if (id == 0) return false;
    std::lock_guard lock(mu_);
    std::string error;
    if (!connected_locked(error)) return false;
    const std::string key = prefix_ + "res:" + std::to_string(id);
    const Reply reply = command_locked({"GET", key}, error);
    if (!reply || reply->type != REDIS_REPLY_STRING) return false;
    Held held;
    if (!held_from_json(std::string_view(reply->str, reply->len), held)) return false;
    plan = plan_for(budgets_, rates_, held, now_ns);
    return true;
  }

  // One budget hash from the status script: name, key, buckets.
  std::optional<BudgetStatus> status_of_hash(const redisReply* fields, uint64_t now_ns) const {
    if (fields->type != REDIS_REPLY_ARRAY) return std::nullopt;
    std::string name, key;
    std::vector<std::pair<int64_t, std::string>> buckets;  // "<bucket>:t|u" → value
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
      const std::string f(fields->element[i]->str, fields->element[i]->len);
      const std::string v(fields->element[i + 1]->str, fields->element[i + 1]->len);
      if (f == "name") name = v;
      if (f == "key") key = v;
      int64_t bucket = 0;
      const auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), bucket);
      if (ec == std::errc() && end + 2 == f.data() + f.size() && end[0] == ':')
        buckets.emplace_back(bucket, f.substr(f.size() - 1) + v);
    }
    const auto spec = std::find_if(budgets_.begin(), budgets_.end(),
                                   [&](const BudgetSpec& b) { return b.name == name; });
    if (spec == budgets_.end()) return std::nullopt;
    const BudgetEntry e = make_budget_entry(*spec, key, now_ns);
    int64_t tokens = 0;
    double usd = 0;
    bool any = false;
    for (const auto& [bucket, value] : buckets) {
      if (bucket < e.pos.window_start) continue;
      any = true;
      if (value[0] == 't') tokens += std::strtoll(value.c_str() + 1, nullptr, 10);
      if (value[0] == 'u') usd += std::strtod(value.c_str() + 1, nullptr);
    }
    if (!any) return std::nullopt;
    return make_status(e, tokens, usd);
  }

  // Runs a script with `arg` and parses its JSON answer; on failure sets `error`.
  json run(Script& script, const json& arg, std::string& error) {
    std::lock_guard lock(mu_);
    const Reply reply = eval_locked(script, arg.dump(), error);
    if (!reply) return json::object();
    if (reply->type != REDIS_REPLY_STRING) return json::object();
    json j = json::parse(std::string_view(reply->str, reply->len), nullptr, false);
    return j.is_object() ? j : json::object();
  }

  Reply eval_locked(Script& script, const std::string& arg, std::string& error) {
    if (!connected_locked(error)) return nullptr;
    if (script.sha.empty()) {
      Reply loaded = command_locked({"SCRIPT", "LOAD", script.body}, error);
      if (!loaded) return nullptr;
      if (loaded->type == REDIS_REPLY_STRING) script.sha.assign(loaded->str, loaded->len);
    }
    Reply reply = command_locked({"EVALSHA", script.sha, "0", arg}, error);
    // NOSCRIPT: the server lost its script cache (restart, SCRIPT FLUSH, failover).
    if (reply && reply->type == REDIS_REPLY_ERROR &&
        std::string_view(reply->str, reply->len).starts_with("NOSCRIPT")) {
      script.sha.clear();
      reply = command_locked({"EVAL", script.body, "0", arg}, error);
    }
    if (reply && reply->type == REDIS_REPLY_ERROR) {
      error = where() + ": " + std::string(reply->str, reply->len);
      return nullptr;
    }
    return reply;
  }

  // Sends one command; a broken connection is dropped (the next call reconnects).
  Reply command_locked(const std::vector<std::string>& args, std::string& error) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    Reply reply(static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!reply || ctx_->err) {
      error = unreachable(ctx_->errstr);
      drop_locked();
      return nullptr;
    }
    return reply;
  }

  bool connected_locked(std::string& error) {
    if (ctx_) return true;
    if (Clock::now() < next_attempt_) {
      error = last_error_;
      return false;
    }
    Context ctx(redisConnectWithTimeout(address_.host.c_str(), address_.port, kTimeout));
    if (!ctx || ctx->err) return fail_connect(ctx ? ctx->errstr : "out of memory", error);
    redisSetTimeout(ctx.get(), kTimeout);
    ctx_ = std::move(ctx);
    if (!address_.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!address_.user.empty()) auth.push_back(address_.user);
      auth.push_back(address_.password);
      if (!setup_locked(auth, error)) return false;
    }
    if (address_.db != 0 && !setup_locked({"SELECT", std::to_string(address_.db)}, error))
      return false;
    for (Script* s : {&reserve_, &settle_, &release_, &status_}) s->sha.clear();
    return true;
  }

  // AUTH and SELECT: a refusal is a configuration problem, reported like unreachability.
  bool setup_locked(const std::vector<std::string>& args, std::string& error) {
    const Reply reply = command_locked(args, error);
    if (!reply) return false;
    if (reply->type == REDIS_REPLY_ERROR) {
      error = where() + ": " + args[0] + " refused: " + std::string(reply->str, reply->len);
      drop_locked();
      return false;
    }
    return true;
  }

  bool fail_connect(const std::string& why, std::string& error) {
    error = last_error_ = unreachable(why);
    next_attempt_ = Clock::now() + kRetryGap;
    return false;
  }

  void drop_locked() {
    ctx_.reset();
    next_attempt_ = Clock::now();  // a broken connection may reconnect at once
  }

  std::string where() const {
    return "redis " + address_.host + ":" + std::to_string(address_.port);
  }
  std::string unreachable(const std::string& why) const { return where() + " unreachable: " + why; }

  std::mutex mu_;
  RedisAddress address_;
  std::string prefix_;
  OnUnreachable on_unreachable_;
  std::vector<BudgetSpec> budgets_;
  std::vector<RateLimitSpec> rates_;
  Context ctx_;
  Clock::time_point next_attempt_{};
  std::string last_error_;
  Script reserve_, settle_, release_, status_;
};

bool parse_port(std::string_view s, int& port) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
  return ec == std::errc() && end == s.data() + s.size() && port > 0 && port < 65536;
}

}  // namespace

bool parse_redis_url(const std::string& url, RedisAddress& out, std::string& error) {
  const auto bad = [&](const std::string& why) {
    error = "bad redis_url \"" + url + "\": " + why +
            " (expected redis://[[user]:password@]host[:port][/db])";
    return false;
  };
  constexpr std::string_view kScheme = "redis://";
  std::string_view rest = url;
  if (!rest.starts_with(kScheme)) return bad("it must start with redis://");
  rest.remove_prefix(kScheme.size());
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view cred = rest.substr(0, at);
    const size_t colon = cred.find(':');
    if (colon == std::string_view::npos) return bad("credentials must be user:password");
    out.user = cred.substr(0, colon);
    out.password = cred.substr(colon + 1);
    rest.remove_prefix(at + 1);
  }
  std::string_view hostport = rest.substr(0, rest.find('/'));
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      const auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), out.db);
      if (ec != std::errc() || end != db.data() + db.size() || out.db < 0)
        return bad("the database must be a number");
    }
  }
  out.port = 6379;
  if (hostport.starts_with('[')) {  // [::1]:6379
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return bad("unclosed [ in the host");
    out.host = hostport.substr(1, close - 1);
    hostport.remove_prefix(close + 1);
    if (!hostport.empty() && (hostport[0] != ':' || !parse_port(hostport.substr(1), out.port)))
      return bad("the port must be a number from 1 to 65535");
  } else {
    const size_t colon = hostport.rfind(':');
    out.host = hostport.substr(0, colon);
    if (colon != std::string_view::npos && !parse_port(hostport.substr(colon + 1), out.port))
      return bad("the port must be a number from 1 to 65535");
  }
  if (out.host.empty()) return bad("no host");
  return true;
}

std::unique_ptr<Ledger> open_redis_ledger(const LedgerSpec& spec, std::vector<BudgetSpec> budgets,
                                          std::vector<RateLimitSpec> rates, std::string& error) {
  RedisAddress address;
  if (!parse_redis_url(spec.redis_url, address, error)) return nullptr;
  if (spec.key_prefix.empty()) {
    error = "budget ledger: key_prefix must not be empty (it keeps the ledger's keys apart)";
    return nullptr;
  }
  // Not connected yet: an unreachable Redis at start is handled per call, like later outages.
  return std::make_unique<RedisLedger>(std::move(address), spec, std::move(budgets),
                                       std::move(rates));
}

}  // namespace agentwall::budget
