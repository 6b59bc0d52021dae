#include "agent/mcp/calls.h"

#include "agent/mcp/text.h"

#include <algorithm>
#include <cctype>

namespace agentwall::mcp {
namespace {

using nlohmann::json;

// An alert's scan fields (scan_fields) with the text it quotes under `key`.
json with_text(json fields, const char* key, std::string text) {
  fields[key] = std::move(text);
  return fields;
}

// Words of a tool name: read_file, readFile, read-file → read, file.
std::vector<std::string> words(const std::string& name) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool upper = std::isupper(static_cast<unsigned char>(c));
    if (!std::isalnum(static_cast<unsigned char>(c)) || (upper && !cur.empty())) {
      if (!cur.empty()) out.push_back(lower(cur));
      cur.clear();
      if (!std::isalnum(static_cast<unsigned char>(c))) continue;
    }
    cur += c;
  }
  if (!cur.empty()) out.push_back(lower(cur));
  return out;
}

bool any_word(const std::string& tool, std::initializer_list<const char*> verbs) {
  for (const std::string& w : words(tool))
    for (const char* v : verbs)
      if (w == v) return true;
  return false;
}

// Arguments that point at credentials or other private files: one of these names, not part
// of a longer word.
const char* sensitive_path(const std::string& text) {
  static const char* const kNames[] = {".ssh",
                                       "id_rsa",
                                       "id_ed25519",
                                       ".aws",
                                       ".env",
                                       ".netrc",
                                       ".git-credentials",
                                       ".kube/config",
                                       ".docker/config.json",
                                       "/etc/shadow",
                                       ".pgpass",
                                       "credentials",
                                       "secret",
                                       "secrets"};
  const std::string t = lower(text);
  for (const char* name : kNames)
    if (contains_word(t, name)) return "its arguments name a private location";
  return nullptr;
}

}  // namespace

CallChecker::CallChecker(CallCheckOptions options) : opt_(options) {}

bool CallChecker::reads(const std::string& tool) {
  return any_word(tool, {"read", "get", "cat", "open", "load", "view", "query", "search", "list",
                         "fetch", "download", "export", "dump", "show", "find", "select"});
}

bool CallChecker::sends(const std::string& tool) {
  return any_word(tool, {"send",    "post",    "upload",  "email", "mail",     "http",    "request",
                         "webhook", "publish", "share",   "tweet", "slack",    "message", "comment",
                         "notify",  "submit",  "forward", "push",  "transfer", "curl",    "wget"});
}

std::vector<std::string> CallChecker::on_call(uint32_t client_pid, const ServerId& server,
                                              const std::string& tool, const json& arguments,
                                              const std::string& result_text, bool is_error,
                                              const AlertContext& ctx) {
  std::vector<std::string> out;
  const std::string args = arguments.is_null() ? "" : arguments.dump();
  bool private_result = false;
  if (opt_.engine) {
    if (!args.empty() && args != "{}") {
      const detect::ScanResult r = opt_.engine->scan(args, detect::Source::kToolArguments);
      const bool unsafe = std::any_of(r.findings.begin(), r.findings.end(), [](const auto& f) {
        return f.category == detect::Category::kUnsafeOutput;
      });
      if (unsafe && r.score >= opt_.threshold)
        out.push_back(mcp_alert_json(
            "mcp.dangerous_tool_call", "high", server, tool,
            "a call of tool " + tool + " of " + server.name + " is dangerous: " +
                (r.reasons.empty() ? std::string("flagged") : r.reasons.front()),
            ctx, with_text(scan_fields(r), "arguments", capped(args, opt_.content_cap))));
    }
    if (!result_text.empty() && !is_error) {
      const detect::ScanResult r = opt_.engine->scan(result_text, detect::Source::kToolResult);
      bool injection = false;
      for (const auto& f : r.findings) {
        injection = injection || f.category == detect::Category::kInjection ||
                    f.category == detect::Category::kHiddenText;
        private_result = private_result || f.category == detect::Category::kSecret ||
                         f.category == detect::Category::kPii;
      }
      if (injection && carries_instructions(r, opt_.threshold, false))
        out.push_back(mcp_alert_json(
            "mcp.tool_result_injection", "high", server, tool,
            "the result of tool " + tool + " of " + server.name +
                " carries instructions for the model: " +
                (r.reasons.empty() ? std::string("flagged") : r.reasons.front()),
            ctx, with_text(scan_fields(r), "result_text", capped(result_text, opt_.content_cap))));
    }
  }
  // Toxic flows: a private read, then a send, by the same client process.
  std::deque<Read>& recent = reads_[client_pid];
  while (!recent.empty() && ctx.time_ns > recent.front().time_ns + opt_.flow_window_ns)
    recent.pop_front();
  if (sends(tool)) {
    for (const Read& r : recent) {
      out.push_back(mcp_alert_json(
          "mcp.toxic_flow", "high", server, tool,
          "tool " + r.tool + " of " + r.server.name + " read private data (" + r.why +
              "), then tool " + tool + " of " + server.name + " can send it out",
          ctx,
          {{"steps",
            json::array(
                {{{"step", "read"}, {"server", r.server.name}, {"tool", r.tool}, {"why", r.why}},
                 {{"step", "send"},
                  {"server", server.name},
                  {"tool", tool},
                  {"arguments", capped(args, opt_.content_cap)}}})}}));
    }
    recent.clear();  // one alert per read and send
  }
  if (!is_error && reads(tool) && !sends(tool)) {
    const char* why = sensitive_path(args);
    if (!why && private_result) why = "its result holds secrets or personal data";
    if (why) {
      recent.push_back({server, tool, why, ctx.time_ns});
      if (recent.size() > 8) recent.pop_front();
    }
  }
  if (reads_.size() > 4096) reads_.erase(reads_.begin());
  return out;
}

}  // namespace agentwall::mcp
