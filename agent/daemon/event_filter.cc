#include "agent/daemon/event_filter.h"

#include <fnmatch.h>

#include <array>

#include "agent/common/fast_json.h"

namespace agentwall::daemon {
namespace {

constexpr std::array<std::string_view, 5> kSeverities = {"info", "low", "medium", "high",
                                                         "critical"};

bool glob(const std::string& pattern, const std::string& s) {
  return fnmatch(pattern.c_str(), s.c_str(), 0) == 0;
}

// The value of the leading "type" member, which every event has first; empty otherwise.
std::string_view leading_type(std::string_view line) {
  constexpr std::string_view kPrefix = "{\"type\":\"";
  if (!line.starts_with(kPrefix)) return {};
  line.remove_prefix(kPrefix.size());
  const size_t end = line.find('"');
  return end == std::string_view::npos ? std::string_view() : line.substr(0, end);
}

}  // namespace

int severity_rank(std::string_view severity) {
  for (size_t i = 0; i < kSeverities.size(); ++i)
    if (kSeverities[i] == severity) return static_cast<int>(i);
  return -1;
}

std::optional<EventFilter> EventFilter::from_request(const nlohmann::json& request,
                                                     std::string& error) {
  EventFilter f;
  if (const auto t = request.find("types"); t != request.end()) {
    if (!t->is_array()) {
      error = "\"types\" must be an array of globs, e.g. [\"policy.*\"]";
      return std::nullopt;
    }
    for (const auto& g : *t) {
      if (!g.is_string()) {
        error = "\"types\" must be an array of globs, e.g. [\"policy.*\"]";
        return std::nullopt;
      }
      f.types.push_back(g.get<std::string>());
    }
  }
  if (const auto p = request.find("pid"); p != request.end()) {
    if (!p->is_number_integer() || p->get<int64_t>() < 0 || p->get<int64_t>() > UINT32_MAX) {
      error = "\"pid\" must be a process id";
      return std::nullopt;
    }
    f.pid = p->get<uint32_t>();
  }
  if (const auto e = request.find("exe"); e != request.end()) {
    if (!e->is_string()) {
      error = "\"exe\" must be a glob, e.g. \"*python*\"";
      return std::nullopt;
    }
    f.exe = e->get<std::string>();
  }
  if (const auto s = request.find("min_severity"); s != request.end()) {
    f.min_severity = s->is_string() ? severity_rank(s->get<std::string>()) : -1;
    if (f.min_severity < 0) {
      error = "\"min_severity\" must be one of info, low, medium, high, critical";
      return std::nullopt;
    }
  }
  return f;
}

bool EventFilter::matches(std::string_view line) const {
  if (!types.empty()) {
    const std::string type(leading_type(line));
    bool any = false;
    for (const auto& g : types) any = any || glob(g, type);
    if (!any) return false;
  }
  if (!pid && exe.empty() && min_severity < 0) return true;
  const nlohmann::json j = parse_json(line);
  if (!j.is_object()) return false;
  const auto p = j.find("process");
  const nlohmann::json& proc = p != j.end() && p->is_object() ? *p : j;
  if (pid) {
    const auto n = proc.find("pid");
    if (n == proc.end() || !n->is_number_integer() || n->get<int64_t>() != *pid) return false;
  }
  if (!exe.empty()) {
    const auto e = proc.find("exe");
    if (e == proc.end() || !e->is_string() || !glob(exe, e->get<std::string>())) return false;
  }
  if (min_severity >= 0) {
    const auto s = j.find("severity");
    if (s == j.end() || !s->is_string() || severity_rank(s->get<std::string>()) < min_severity)
      return false;
  }
  return true;
}

}  // namespace agentwall::daemon
