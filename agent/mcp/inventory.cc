#include "agent/mcp/inventory.h"

#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/common/json_writer.h"
#include "agent/common/time.h"
#include "agent/mcp/text.h"

namespace agentwall::mcp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string hex_sha256(std::string_view data) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace

Inventory::Inventory(InventoryOptions options) : opt_(std::move(options)) {}

std::string Inventory::tool_hash(const std::string& name, const std::string& description,
                                 const std::string& schema) {
  // Length-prefixed, so that moving text from one field to the next changes the hash.
  std::string data;
  for (const std::string* s : {&name, &description, &schema})
    data += std::to_string(s->size()) + ":" + *s + "\n";
  return hex_sha256(data);
}

Inventory::Server& Inventory::server(const ServerId& named, const AlertContext& ctx) {
  // A session whose `initialize` was not seen (joined mid-way) does not know the server's
  // name: the one named server pinned under the same URL (for stdio, the same command line)
  // is it; with none, or several, it stays nameless.
  ServerId id = named;
  if (id.name.empty()) {
    const Server* found = nullptr;
    size_t named_here = 0;
    for (const auto& [key, other] : servers_) {
      if (other.id.url != id.url || other.id.name.empty()) continue;
      found = &other;
      ++named_here;
    }
    if (named_here == 1) id = found->id;
  }
  Server& s = servers_[id.key()];
  if (!s.first_ns) {
    s.id = id;
    s.first_ns = ctx.time_ns;
    dirty_ = true;
  }
  if (s.id.version != id.version) {
    s.id.version = id.version;
    dirty_ = true;
  }
  s.last_ns = std::max(s.last_ns, ctx.time_ns);
  if (!ctx.exe.empty() && s.clients.insert(ctx.exe).second) dirty_ = true;
  return s;
}

std::string mcp_alert_json(const char* rule, const char* severity, const ServerId& server,
                           const std::string& tool, const std::string& message,
                           const AlertContext& ctx, const json& extra) {
  JsonWriter w;
  w.begin_object().field("type", "mcp.alert").field("time", format_rfc3339(ctx.time_ns));
  w.field("rule", rule).field("severity", severity).field("message", message);
  w.key("server").begin_object().field("name", server.name).field("version", server.version);
  w.field("url", server.url).end_object();
  if (!tool.empty()) w.field("tool", tool);
  if (!ctx.session_id.empty()) w.field("session_id", ctx.session_id);
  for (auto it = extra.begin(); it != extra.end(); ++it)
    w.key(it.key()).raw(it.value().dump(-1, ' ', false, json::error_handler_t::replace));
  if (!ctx.process_json.empty()) w.key("process").raw(ctx.process_json);
  w.end_object();
  return w.take();
}

json scan_fields(const detect::ScanResult& r) {
  json findings = json::array();
  detect::ListedFindings listed;
  for (const detect::Finding& f : r.findings) {
    if (!listed.take({}, f.detector)) continue;
    findings.push_back({{"detector", f.detector},
                        {"category", std::string(detect::to_string(f.category))},
                        {"confidence", f.confidence},
                        {"explanation", f.explanation}});
  }
  json out = {{"score", r.score}, {"findings", std::move(findings)}};
  if (listed.dropped() > 0) out["findings_unlisted"] = listed.dropped();
  return out;
}

bool carries_instructions(const detect::ScanResult& r, int threshold, bool written_for_model) {
  if (r.score < threshold) return false;
  detect::ScanResult kept;
  for (const detect::Finding& f : r.findings) {
    const bool planted = f.category == detect::Category::kInjection ||
                         f.category == detect::Category::kHiddenText ||
                         f.category == detect::Category::kUnsafeOutput;
    if (!planted || f.detector == "injection.model") continue;
    if (written_for_model && f.detector == "injection.addressed_to_model") continue;
    kept.findings.push_back(f);
  }
  if (kept.findings.empty()) return false;
  detect::score_findings(kept);
  return kept.score >= threshold;
}

std::string Inventory::alert(const char* rule, const char* severity, const Server& s,
                             const std::string& tool, const std::string& message,
                             const AlertContext& ctx, const json& extra) const {
  return mcp_alert_json(rule, severity, s.id, tool, message, ctx, extra);
}

void Inventory::scan(const Server& s, const std::string& tool, const std::string& text,
                     const char* rule, const AlertContext& ctx,
                     std::vector<std::string>& out) const {
  if (text.size() > opt_.max_description)
    out.push_back(alert("mcp.oversized_description", "medium", s, tool,
                        (tool.empty() ? std::string("instructions") : "tool " + tool) + " of " +
                            s.id.name + ": " + std::to_string(text.size()) +
                            " bytes of text for the model, more than " +
                            std::to_string(opt_.max_description),
                        ctx, {{"bytes", text.size()}}));
  if (!opt_.engine) return;
  const detect::ScanResult r = opt_.engine->scan(text, detect::Source::kToolDescription);
  if (!carries_instructions(r, opt_.threshold, true)) return;
  std::string why = r.reasons.empty() ? "flagged by detection" : r.reasons.front();
  json fields = scan_fields(r);
  fields["text"] = capped(text, opt_.content_cap);
  out.push_back(alert(rule, "high", s, tool,
                      (tool.empty() ? std::string("the instructions") : "tool " + tool) + " of " +
                          s.id.name + " carry instructions for the model: " + why,
                      ctx, fields));
}

std::vector<std::string> Inventory::on_tools(const ServerId& id, const json& tools,
                                             const AlertContext& ctx) {
  std::vector<std::string> out;
  Server& s = server(id, ctx);
  std::map<std::string, Tool> seen;
  if (tools.is_array()) {
    for (const json& t : tools) {
      const std::string name = str_at(t, "name");
      if (name.empty()) continue;
      Tool tool;
      tool.description = str_at(t, "description");
      // nlohmann::json keeps object members sorted: the dump is canonical.
      tool.schema = t.contains("inputSchema") ? t["inputSchema"].dump() : "{}";
      tool.hash = tool_hash(name, tool.description, tool.schema);
      seen[name] = std::move(tool);
    }
  }
  const bool first = !s.listed;
  for (auto& [name, now] : seen) {
    const auto it = s.tools.find(name);
    const bool is_new = it == s.tools.end();
    const bool changed = !is_new && it->second.hash != now.hash;
    if (is_new || changed) {
      // What the model will read: the description and every description in the schema.
      scan(s, name, now.description + "\n" + now.schema, "mcp.tool_poisoning", ctx, out);
    }
    if (changed) {
      const Tool& old = it->second;
      out.push_back(
          alert("mcp.tool_changed", "high", s, name,
                "tool " + name + " of " + s.id.name + " changed its " +
                    (old.description != now.description ? "description" : "input schema") +
                    " after it was pinned (a rug pull?)",
                ctx,
                {{"old_hash", old.hash},
                 {"new_hash", now.hash},
                 {"old_description", capped(old.description, opt_.content_cap)},
                 {"new_description", capped(now.description, opt_.content_cap)},
                 {"schema_changed", old.schema != now.schema}}));
      now.first_ns = old.first_ns;
      now.changes = old.changes + 1;
    } else if (is_new) {
      if (!first)
        out.push_back(alert("mcp.tool_added", "medium", s, name,
                            "tool " + name + " of " + s.id.name +
                                " appeared after the first "
                                "listing",
                            ctx, {{"hash", now.hash}}));
      now.first_ns = ctx.time_ns;
    } else {
      now.first_ns = it->second.first_ns;
      now.changes = it->second.changes;
    }
    now.last_ns = ctx.time_ns;
  }
  for (const auto& [name, old] : s.tools)
    if (!seen.count(name))
      out.push_back(alert("mcp.tool_removed", "low", s, name,
                          "tool " + name + " of " + s.id.name + " is no longer offered", ctx,
                          {{"hash", old.hash}}));
  // Other servers: the same tool name (a collision the model cannot tell apart), and
  // descriptions that speak of another server's tools (shadowing).
  for (const auto& [key, other] : servers_) {
    if (key == s.id.key() || other.id.name == s.id.name) continue;
    for (const auto& [name, tool] : seen) {
      const bool known = s.tools.count(name) && s.tools.at(name).hash == tool.hash;
      if (known) continue;  // alerted when it first appeared
      if (other.tools.count(name))
        out.push_back(
            alert("mcp.tool_name_collision", "medium", s, name,
                  "tool " + name + " is offered by both " + s.id.name + " and " + other.id.name,
                  ctx, {{"other_server", other.id.name}}));
      const std::string text = lower(tool.description + " " + tool.schema);
      for (const auto& [other_name, other_tool] : other.tools) {
        if (other_name.size() < 4 || other_name == name || !contains_word(text, lower(other_name)))
          continue;
        out.push_back(alert("mcp.tool_shadowing", "high", s, name,
                            "tool " + name + " of " + s.id.name + " speaks of tool " + other_name +
                                " of another server, " + other.id.name,
                            ctx,
                            {{"other_server", other.id.name},
                             {"other_tool", other_name},
                             {"description", capped(tool.description, opt_.content_cap)}}));
      }
    }
  }
  const bool same =
      !first && std::equal(seen.begin(), seen.end(), s.tools.begin(), s.tools.end(),
                           [](const auto& a, const auto& b) {
                             return a.first == b.first && a.second.hash == b.second.hash;
                           });
  if (!same) dirty_ = true;
  s.tools = std::move(seen);
  s.listed = true;
  return out;
}

std::vector<std::string> Inventory::on_instructions(const ServerId& id, const std::string& text,
                                                    const AlertContext& ctx) {
  std::vector<std::string> out;
  Server& s = server(id, ctx);
  const std::string hash = hex_sha256(text);
  if (hash == s.instructions_hash) return out;
  scan(s, "", text, "mcp.instructions_poisoning", ctx, out);
  if (!s.instructions_hash.empty() && !text.empty())
    out.push_back(alert("mcp.instructions_changed", "medium", s, "",
                        "the instructions of " + s.id.name + " changed", ctx,
                        {{"old", capped(s.instructions, opt_.content_cap)},
                         {"new", capped(text, opt_.content_cap)}}));
  s.instructions = text;
  s.instructions_hash = hash;
  dirty_ = true;
  return out;
}

std::vector<std::string> Inventory::on_list_changed(const ServerId& id, const AlertContext& ctx) {
  Server& s = server(id, ctx);
  return {alert("mcp.tools_list_changed", "low", s, "",
                s.id.name + " announced that its tools changed (notifications/tools/list_changed)",
                ctx, json::object())};
}

void Inventory::on_names(const ServerId& id, const char* kind, const json& items,
                         const AlertContext& ctx) {
  Server& s = server(id, ctx);
  std::set<std::string>& set = std::string(kind) == "prompts" ? s.prompts : s.resources;
  if (!items.is_array()) return;
  for (const json& i : items) {
    const std::string n = str_at(i, std::string(kind) == "prompts" ? "name" : "uri");
    if (!n.empty() && set.insert(n).second) dirty_ = true;
  }
}

json Inventory::to_json() const {
  json servers = json::array();
  for (const auto& [key, s] : servers_) {
    json tools = json::array();
    for (const auto& [name, t] : s.tools)
      tools.push_back({{"name", name},
                       {"description", t.description},
                       {"input_schema", t.schema},
                       {"sha256", t.hash},
                       {"first_seen", format_rfc3339(t.first_ns)},
                       {"last_seen", format_rfc3339(t.last_ns)},
                       {"first_seen_ns", t.first_ns},
                       {"last_seen_ns", t.last_ns},
                       {"changes", t.changes}});
    servers.push_back({{"name", s.id.name},
                       {"version", s.id.version},
                       {"url", s.id.url},
                       {"first_seen", format_rfc3339(s.first_ns)},
                       {"last_seen", format_rfc3339(s.last_ns)},
                       {"first_seen_ns", s.first_ns},
                       {"last_seen_ns", s.last_ns},
                       {"clients", s.clients},
                       {"instructions", s.instructions},
                       {"tools", tools},
                       {"prompts", s.prompts},
                       {"resources", s.resources}});
  }
  return {{"servers", servers}};
}

bool Inventory::load(std::string& error) {
  if (opt_.path.empty()) return true;
  std::ifstream in(opt_.path);
  if (!in) {
    if (errno == ENOENT) return true;
    error = "cannot read the MCP inventory " + opt_.path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.contains("servers") || !j["servers"].is_array()) {
    const std::string aside = opt_.path + ".corrupt";
    std::error_code ec;
    fs::rename(opt_.path, aside, ec);
    error = "the MCP inventory " + opt_.path + " is not valid JSON; moved to " + aside +
            " and starting a new one";
    return false;
  }
  auto time_of = [](const json& v) { return v.is_number_unsigned() ? v.get<uint64_t>() : 0; };
  for (const json& sj : j["servers"]) {
    Server s;
    s.id = {str_at(sj, "name"), str_at(sj, "version"), str_at(sj, "url")};
    s.first_ns = time_of(sj.value("first_seen_ns", json()));
    s.last_ns = time_of(sj.value("last_seen_ns", json()));
    s.instructions = str_at(sj, "instructions");
    if (!s.instructions.empty()) s.instructions_hash = hex_sha256(s.instructions);
    for (const char* k : {"clients", "prompts", "resources"}) {
      std::set<std::string>& set = std::string(k) == "clients"   ? s.clients
                                   : std::string(k) == "prompts" ? s.prompts
                                                                 : s.resources;
      if (sj.contains(k) && sj[k].is_array())
        for (const json& v : sj[k])
          if (v.is_string()) set.insert(v.get<std::string>());
    }
    if (sj.contains("tools") && sj["tools"].is_array()) {
      for (const json& tj : sj["tools"]) {
        Tool t;
        t.description = str_at(tj, "description");
        t.schema = str_at(tj, "input_schema");
        t.hash = str_at(tj, "sha256");
        t.first_ns = time_of(tj.value("first_seen_ns", json()));
        t.last_ns = time_of(tj.value("last_seen_ns", json()));
        t.changes = tj.value("changes", 0u);
        s.tools[str_at(tj, "name")] = std::move(t);
      }
      s.listed = true;
    }
    servers_[s.id.key()] = std::move(s);
  }
  return true;
}

bool Inventory::save(std::string& error) {
  if (opt_.path.empty() || !dirty_) return true;
  std::error_code ec;
  fs::create_directories(fs::path(opt_.path).parent_path(), ec);
  const std::string tmp = opt_.path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << to_json().dump(1, ' ', false, json::error_handler_t::replace) << "\n";
    out.flush();
    if (!out) {
      error = "cannot write the MCP inventory " + tmp + ": " + std::strerror(errno);
      return false;
    }
  }
  if (std::rename(tmp.c_str(), opt_.path.c_str()) != 0) {
    error = "cannot replace the MCP inventory " + opt_.path + ": " + std::strerror(errno);
    return false;
  }
  dirty_ = false;
  return true;
}

}  // namespace agentwall::mcp
