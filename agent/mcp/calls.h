// What tool calls do, judged as they happen: a result that carries instructions for the model
// (indirect prompt injection: a web page, a file, an issue), arguments that are dangerous
// (shell that fetches and runs code, reads of credentials, exfiltration URLs), and toxic
// flows: in one client process, a tool that read private data (credentials, secrets,
// personal data) followed by a tool that can send data out, reported as one alert with both
// steps. Pure.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/detect/engine.h"
#include "agent/mcp/inventory.h"

namespace agentwall::mcp {

struct CallCheckOptions {
  const detect::Engine* engine = nullptr;  // null: only the toxic-flow heuristics by name
  int threshold = 50;
  size_t content_cap = 1024;
  uint64_t flow_window_ns = 30ull * 60 * 1000000000;  // a read counts this long
};

class CallChecker {
 public:
  explicit CallChecker(CallCheckOptions options);

  // One tools/call and its result, by the client process `client_pid`.
  std::vector<std::string> on_call(uint32_t client_pid, const ServerId& server,
                                   const std::string& tool, const nlohmann::json& arguments,
                                   const std::string& result_text, bool is_error,
                                   const AlertContext& ctx);

  // Tool names that read (read_file, get_secret, query, …) and that send (send_email,
  // http_request, upload, post_message, …): the toxic-flow heuristics, exposed for tests.
  static bool reads(const std::string& tool);
  static bool sends(const std::string& tool);

 private:
  struct Read {
    ServerId server;
    std::string tool, why;
    uint64_t time_ns = 0;
  };
  CallCheckOptions opt_;
  std::map<uint32_t, std::deque<Read>> reads_;  // by client pid, the last few private reads
};

}  // namespace agentwall::mcp
