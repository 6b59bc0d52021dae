// What MCP servers offer, pinned: for each server identity (name and URL), its tools (name,
// description, input schema and a SHA-256 over the three), prompts, resources and
// instructions, with when each was first and last seen and which programs use it. Changes
// after the first listing raise `mcp.alert` events: a pinned tool whose description or schema
// changes (a rug pull), tools that appear or vanish, `notifications/tools/list_changed`, two
// servers offering the same tool name, a description that names another server's tool
// (shadowing), and descriptions or instructions the detection engine flags (tool poisoning,
// hidden text), or that are oversized. Kept in a JSON file in the state directory.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "agent/detect/engine.h"

namespace agentwall::mcp {

struct ServerId {
  std::string name, version, url;
  std::string key() const { return name + " " + url; }
};

// Who saw it: pasted into alerts as they are (process and session).
struct AlertContext {
  uint64_t time_ns = 0;
  std::string process_json;  // {"pid":…} or empty
  std::string session_id;
  std::string exe;
};

// One mcp.alert event (docs/EVENTS.md): the rule, its severity and message, the server, the
// tool when there is one, and `extra` members, then the process.
std::string mcp_alert_json(const char* rule, const char* severity, const ServerId& server,
                           const std::string& tool, const std::string& message,
                           const AlertContext& ctx, const nlohmann::json& extra);

// A scan as it goes into alerts: "score", and "findings" (detector, category, confidence,
// explanation), at most detect::ListedFindings::kListed of each detector, with
// "findings_unlisted" counting the rest when there are more.
nlohmann::json scan_fields(const detect::ScanResult& r);

// Whether a scan of text the model reads (a tool description, instructions, a tool result)
// says it carries instructions an attacker planted: scored again from the rule-based
// injection, hidden-text and unsafe-output findings only, the score reaches `threshold`.
// The learned model is left out (alone, it fires on ordinary prose); so is "addresses the
// model" when `written_for_model` (descriptions and server instructions are, by design).
bool carries_instructions(const detect::ScanResult& r, int threshold, bool written_for_model);

struct InventoryOptions {
  std::string path;                        // the JSON file; empty: kept in memory only
  const detect::Engine* engine = nullptr;  // null: no poisoning scan
  int threshold = 50;                      // detection score that makes a poisoning alert
  size_t max_description = 4096;           // longer descriptions raise an alert
  size_t content_cap = 1024;               // description text quoted in alerts
};

class Inventory {
 public:
  explicit Inventory(InventoryOptions options);

  // Reads the file (a missing file is an empty inventory). False with `error` when it
  // cannot be read or parsed; the inventory then starts empty and the file is kept aside.
  bool load(std::string& error);
  // Writes the file if anything changed since the last save (atomically: temp + rename).
  bool save(std::string& error);

  // Each returns the mcp.alert events (JSON lines) the observation raises.
  std::vector<std::string> on_tools(const ServerId& s, const nlohmann::json& tools,
                                    const AlertContext& ctx);
  std::vector<std::string> on_instructions(const ServerId& s, const std::string& text,
                                           const AlertContext& ctx);
  std::vector<std::string> on_list_changed(const ServerId& s, const AlertContext& ctx);
  void on_names(const ServerId& s, const char* kind, const nlohmann::json& items,
                const AlertContext& ctx);  // prompts/list, resources/list

  // The whole inventory (what the file holds): {"servers":[…]}.
  nlohmann::json to_json() const;
  size_t servers() const { return servers_.size(); }

  // SHA-256 over a tool's name, description and canonical input schema, hex.
  static std::string tool_hash(const std::string& name, const std::string& description,
                               const std::string& schema);

 private:
  struct Tool {
    std::string description, schema, hash;
    uint64_t first_ns = 0, last_ns = 0;
    uint32_t changes = 0;
  };
  struct Server {
    ServerId id;
    std::string instructions, instructions_hash;
    std::map<std::string, Tool> tools;
    std::set<std::string> prompts, resources, clients;
    uint64_t first_ns = 0, last_ns = 0;
    bool listed = false;  // a tools/list was seen: later ones are compared with it
  };
  Server& server(const ServerId& named, const AlertContext& ctx);
  std::string alert(const char* rule, const char* severity, const Server& s,
                    const std::string& tool, const std::string& message, const AlertContext& ctx,
                    const nlohmann::json& extra) const;
  void scan(const Server& s, const std::string& tool, const std::string& text, const char* rule,
            const AlertContext& ctx, std::vector<std::string>& out) const;

  InventoryOptions opt_;
  std::map<std::string, Server> servers_;  // by ServerId::key()
  bool dirty_ = false;
};

}  // namespace agentwall::mcp
