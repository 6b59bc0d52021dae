#include "agent/policy/subject_llm.h"

#include <pwd.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "agent/common/ascii.h"
#include "agent/detect/engine.h"

namespace agentwall::policy {

namespace {

std::vector<std::string_view> path_elements(std::string_view path) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > at) out.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return out;
}

// The first run of exactly 64 hex digits in `s`, or empty.
std::string_view hex64(std::string_view s) {
  size_t run = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && ascii::is_hex(s[i])) {
      ++run;
      continue;
    }
    if (run == 64) return s.substr(i - 64, 64);
    run = 0;
  }
  return {};
}

bool reported_in(std::string_view where, std::string_view direction) {
  const bool request = where.starts_with("messages[");
  if (direction == "request") return request;
  if (direction == "response") return !request;
  return true;
}

}  // namespace

std::string unit_from_cgroup(std::string_view cgroup_path) {
  const auto parts = path_elements(cgroup_path);
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (it->ends_with(".service") || it->ends_with(".scope")) return std::string(*it);
  }
  return {};
}

std::string container_from_cgroup(std::string_view cgroup_path) {
  const auto parts = path_elements(cgroup_path);
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (const std::string_view id = hex64(*it); !id.empty()) return std::string(id);
  }
  return {};
}

std::string user_name(uint32_t uid) {
  // The name service may read files or ask a daemon: once per uid is enough.
  static std::mutex mu;
  static std::unordered_map<uint32_t, std::string> cache;
  std::lock_guard lock(mu);
  if (const auto it = cache.find(uid); it != cache.end()) return it->second;
  std::string name = std::to_string(uid);
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_name) {
    name = found->pw_name;
  }
  cache.emplace(uid, name);
  return name;
}

Subject subject_from_process(const ProcessInfo& p) {
  Subject s;
  s.pid = p.key.pid;
  s.uid = p.uid;
  s.exe = p.exe;
  s.name = p.comm;
  s.user = user_name(p.uid);
  s.cgroup = p.cgroup_path;
  s.unit = unit_from_cgroup(s.cgroup);
  s.container = container_from_cgroup(s.cgroup);
  return s;
}

Subject subject_from_mcp(const mcp::McpCall& c, std::string_view direction,
                         const detect::Engine* engine) {
  Subject s = subject_from_process(c.process);
  s.kind = "mcp";
  s.mcp_server = c.server;
  s.mcp_tool = c.tool;
  s.mcp_method = c.method;
  s.operation = c.method;
  s.direction = std::string(direction);
  if (const size_t at = c.url.find("://"); at != std::string::npos)
    s.host = c.url.substr(at + 3, c.url.find_first_of(":/", at + 3) - (at + 3));
  const bool request = direction == "request";
  const std::string text =
      request ? (c.arguments.is_null() ? "" : c.arguments.dump()) : c.result_text;
  if (engine && !text.empty()) {
    const detect::ScanResult r =
        engine->scan(text, request ? detect::Source::kToolArguments : detect::Source::kToolResult);
    for (const detect::Finding& f : r.findings)
      s.findings.push_back({f.detector, std::string(detect::to_string(f.category)), f.confidence,
                            request ? "arguments" : "result", true});
    s.score = r.score;
  }
  return s;
}

Subject subject_from_llm(const llm::LlmRecord& r, std::string_view direction) {
  Subject s = subject_from_process(r.process);
  s.kind = "llm";
  s.provider = r.call.provider;
  s.host = r.host;
  s.model = r.call.model.empty() ? r.call.response_model : r.call.model;
  s.operation = r.call.operation;
  s.direction = std::string(direction);
  s.api_key_fingerprint = r.api_key_fingerprint;

  detect::ScanResult scored;
  for (const llm::LocatedFinding& lf : r.inspection.findings) {
    if (!reported_in(lf.where, direction)) continue;
    const detect::Finding& f = lf.finding;
    // The inspector reports findings in messages only for the new turn.
    s.findings.push_back({f.detector, std::string(detect::to_string(f.category)), f.confidence,
                          lf.where, lf.where.starts_with("messages[")});
    scored.findings.push_back(f);
  }
  detect::score_findings(scored);
  s.score = scored.score;
  return s;
}

}  // namespace agentwall::policy
