// The agent's configuration files: /etc/agentwall/agentwall.yaml, then the drop-ins in
// /etc/agentwall/conf.d/*.yaml in name order, each key a drop-in sets replacing the value
// before it. Command-line options win over both (the CLI applies them). Every key is
// optional; docs/CONFIG.md lists them, packaging/agentwall.yaml shows them with their
// defaults. Errors carry FILE:LINE:COL, like the policy loader's.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace agentwall::config {

inline constexpr const char* kDefaultFile = "/etc/agentwall/agentwall.yaml";

// Local model servers' default ports: Ollama, LM Studio, vLLM, llama.cpp's server.
inline const std::vector<uint16_t> kDefaultPlaintextPorts = {11434, 1234, 8000, 8080};

struct Config {
  // Policy files and directories (their *.yaml in name order), merged in order; when they
  // name no file at all, the built-in default policy applies.
  std::vector<std::string> policies = {"/etc/agentwall/policies.d"};
  std::string events = "/var/log/agentwall/events.json";  // "-" = stdout
  std::vector<std::string> sinks = {
      "stdout://?types=policy.alert,budget.alert,agent.alert,alert.summary,sink.dropped,"
      "agent.reload"};
  std::string state_dir = "/var/lib/agentwall";
  std::string control_socket = "/run/agentwall/control.sock";  // empty: none
  std::string metrics;                                         // ADDR:PORT; empty: none
  double health_interval = 30;
  uint32_t alert_limit = 20;
  double drain_timeout = 5;
  uint32_t max_bytes = 1u << 20;
  uint32_t ringbuf_mb = 16;
  std::vector<std::string> attach;
  // Plaintext HTTP on loopback: TCP ports whose connections to 127.0.0.0/8 and ::1 are captured.
  std::vector<uint16_t> plaintext_ports = kDefaultPlaintextPorts;
  bool detect = true;
  int detect_threshold = 50;
  uint64_t content_cap = 4096;
  uint64_t max_body_mb = 8;
  std::vector<std::string> prices;
  std::vector<std::string> mcp_stdio_exes;  // MCP servers over stdio, named by the user (globs)
  // The coverage view's AI endpoints beside the known LLM hosts: host names, IP[:port].
  std::vector<std::string> coverage_endpoints;

  // Keys some file set ("capture.max_bytes"), and the files read, in order.
  std::set<std::string> set_keys;
  std::vector<std::string> files;
  bool is_set(const std::string& key) const { return set_keys.count(key) != 0; }
};

struct Loaded {
  std::optional<Config> config;     // nullopt when any file has an error
  std::vector<std::string> errors;  // "FILE:LINE:COL: message"
  std::vector<std::string> warnings;
};

// Reads `file` and the drop-ins in the conf.d directory beside it. A missing `file` is an
// error only when `required` (an explicit --config); without it, the built-in defaults hold
// and the drop-ins are still read.
Loaded load(const std::string& file, bool required);

// The same from strings (tests): {name, yaml} in order.
Loaded load_strings(const std::vector<std::pair<std::string, std::string>>& sources);

// The policy files `entries` name: files as they are, directories as their *.yaml and
// *.yml files in name order. A missing file is an error; a missing directory holds nothing.
std::vector<std::string> expand_policy_paths(const std::vector<std::string>& entries,
                                             std::vector<std::string>& errors);

// The configuration as YAML (`agentwall config show`), every key, with where it was set.
std::string to_yaml(const Config& c);

// Keys whose values differ between two configurations (for a reload to say what it cannot
// apply without a restart).
std::vector<std::string> changed_keys(const Config& a, const Config& b);

}  // namespace agentwall::config
