#include "agent/daemon/status.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/common/time.h"

namespace agentwall::daemon {

std::string status_json(const HealthSnapshot& h, const StatusContext& x) {
  using json = nlohmann::ordered_json;
  json j = json::parse(health_json(h));  // once a second: the parse costs nothing that matters
  j["type"] = "agent.status";
  j["pid"] = getpid();
  j["started"] = format_rfc3339(x.started_unix_ns);
  j["processes"] = {{"monitored", h.stream.processes}, {"gated", h.gated_processes}};
  if (x.policy_loaded) {
    json files = json::array();
    for (const auto& f : x.policy_files) files.push_back(f);
    if (files.empty()) files.push_back("<built-in policies/default.yaml>");
    j["policy"]["files"] = std::move(files);
    j["policy"]["mode"] = x.policy_mode;
  }
  json budgets = json::array();
  for (const auto& b : x.budgets) {
    json o = {{"name", b.name}, {"key", b.key}, {"used_tokens", b.used_tokens}};
    if (b.limit_tokens) o["limit_tokens"] = *b.limit_tokens;
    o["used_usd"] = b.used_usd;
    if (b.limit_usd) o["limit_usd"] = *b.limit_usd;
    o["fraction"] = b.fraction;
    o["state"] = b.state;
    o["window_start"] = b.window_start;
    o["action"] = b.action;
    budgets.push_back(std::move(o));
  }
  j["budgets"] = std::move(budgets);
  j["configuration"] = x.config_files;
  json checks = json::array();
  for (const HostCheck& c : x.checks)
    checks.push_back({{"name", c.name}, {"state", c.state}, {"detail", c.detail}});
  j["checks"] = std::move(checks);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace agentwall::daemon
