#include "agent/daemon/top.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/common/fast_json.h"
#include "agent/common/time.h"

namespace agentwall::daemon {
namespace {

constexpr int64_t kMinuteNs = 60ll * 1'000'000'000;
constexpr size_t kMaxRecentPerProcess = 4096;  // calls kept for the per-minute rates

std::string text(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t count(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_integer() && it->get<int64_t>() > 0 ? it->get<uint64_t>()
                                                                            : 0;
}

}  // namespace

ProcessTop::Entry& ProcessTop::entry(uint32_t pid, std::string_view exe, int64_t now_ns) {
  Entry& e = by_pid_[pid];
  // A pid reused by another program starts a new row.
  if (e.row.pid != 0 && !exe.empty() && !e.row.exe.empty() && e.row.exe != exe) e = Entry{};
  e.row.pid = pid;
  if (!exe.empty()) e.row.exe = exe;
  e.row.last_seen_ns = now_ns;
  return e;
}

void ProcessTop::observe(std::string_view line, int64_t now_ns) {
  const bool exchange = line.starts_with("{\"type\":\"llm.exchange\"");
  const bool alert = line.starts_with("{\"type\":\"policy.alert\"") ||
                     line.starts_with("{\"type\":\"budget.alert\"");
  const bool action = line.starts_with("{\"type\":\"enforce.action\"");
  if (!exchange && !alert && !action) return;
  const nlohmann::json j = parse_json(line);
  if (!j.is_object()) return;
  const auto p = j.find("process");
  if (p == j.end() || !p->is_object()) return;
  const uint32_t pid = static_cast<uint32_t>(count(*p, "pid"));
  if (pid == 0) return;
  Entry& e = entry(pid, text(*p, "exe"), now_ns);
  TopRow& r = e.row;
  if (const std::string comm = text(*p, "comm"); !comm.empty()) r.comm = comm;
  if (const std::string name = text(*p, "name"); !name.empty() && r.comm.empty()) r.comm = name;
  if (const std::string user = text(*p, "user"); !user.empty()) r.user = user;
  if (exchange) {
    ++r.calls;
    uint64_t tokens = 0;
    if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
      r.input_tokens += count(*u, "input_tokens");
      r.output_tokens += count(*u, "output_tokens");
      tokens = count(*u, "input_tokens") + count(*u, "output_tokens");
    }
    if (const auto c = j.find("cost_usd"); c != j.end() && c->is_number())
      r.cost_usd += c->get<double>();
    if (std::string m = text(j, "model"); !m.empty()) r.last_model = std::move(m);
    if (std::string pr = text(j, "provider"); !pr.empty()) r.last_provider = std::move(pr);
    e.recent.emplace_back(now_ns, tokens);
    if (e.recent.size() > kMaxRecentPerProcess) e.recent.pop_front();
  } else if (alert) {
    ++r.alerts;
  } else if (const auto ok = j.find("ok"); ok != j.end() && ok->is_boolean() && ok->get<bool>()) {
    const std::string what = text(j, "action");
    if (what == "block") ++r.blocked;
    if (what == "redact") ++r.redacted;
    if (what == "kill") ++r.killed;
  }
  if (by_pid_.size() > opt_.max_rows) forget(now_ns);
}

void ProcessTop::forget(int64_t now_ns) {
  std::erase_if(by_pid_, [&](const auto& kv) {
    return now_ns - kv.second.row.last_seen_ns > opt_.forget_after_ns;
  });
  while (by_pid_.size() > opt_.max_rows) {
    auto oldest =
        std::min_element(by_pid_.begin(), by_pid_.end(), [](const auto& a, const auto& b) {
          return a.second.row.last_seen_ns < b.second.row.last_seen_ns;
        });
    by_pid_.erase(oldest);
  }
}

std::vector<TopRow> ProcessTop::rows(int64_t now_ns) {
  forget(now_ns);
  std::vector<TopRow> out;
  out.reserve(by_pid_.size());
  for (auto& [pid, e] : by_pid_) {
    while (!e.recent.empty() && now_ns - e.recent.front().first > kMinuteNs) e.recent.pop_front();
    e.row.calls_1m = e.recent.size();
    e.row.tokens_1m = 0;
    for (const auto& [t, tokens] : e.recent) e.row.tokens_1m += tokens;
    out.push_back(e.row);
  }
  std::sort(out.begin(), out.end(),
            [](const TopRow& a, const TopRow& b) { return a.last_seen_ns > b.last_seen_ns; });
  return out;
}

std::string ProcessTop::json(int64_t now_ns) {
  using json = nlohmann::ordered_json;
  json procs = json::array();
  for (const TopRow& r : rows(now_ns)) {
    procs.push_back({{"pid", r.pid},
                     {"exe", r.exe},
                     {"comm", r.comm},
                     {"user", r.user},
                     {"calls", r.calls},
                     {"input_tokens", r.input_tokens},
                     {"output_tokens", r.output_tokens},
                     {"cost_usd", r.cost_usd},
                     {"alerts", r.alerts},
                     {"blocked", r.blocked},
                     {"redacted", r.redacted},
                     {"killed", r.killed},
                     {"last_model", r.last_model},
                     {"last_provider", r.last_provider},
                     {"last_seen", format_rfc3339(static_cast<uint64_t>(r.last_seen_ns))},
                     {"calls_1m", r.calls_1m},
                     {"tokens_1m", r.tokens_1m}});
  }
  json j;
  j["type"] = "agent.top";
  j["time"] = format_rfc3339(static_cast<uint64_t>(now_ns));
  j["processes"] = std::move(procs);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace agentwall::daemon
