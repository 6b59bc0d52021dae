// Which events an `agentwall tail` subscriber wants: the filter of a {"cmd":"tail"} request.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::daemon {

// info < low < medium < high < critical (the policy's levels); -1 for anything else.
int severity_rank(std::string_view severity);

struct EventFilter {
  std::vector<std::string> types;  // globs (fnmatch) on "type"; empty: every type
  std::optional<uint32_t> pid;     // process.pid (or pid, for tls.* events)
  std::string exe;                 // glob on process.exe (or exe)
  int min_severity = -1;           // events without a severity at least this are left out

  // From a request: {"types":[…],"pid":N,"exe":"…","min_severity":"medium"}. Nullopt and
  // `error` for a field of the wrong type or an unknown severity.
  static std::optional<EventFilter> from_request(const nlohmann::json& request, std::string& error);
  // `line` is one event as the sinks get it; parsed only when pid, exe or severity are asked.
  bool matches(std::string_view line) const;
};

}  // namespace agentwall::daemon
