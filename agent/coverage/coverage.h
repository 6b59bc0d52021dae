// The coverage view: which processes talk to AI endpoints, and whether the agent sees what
// they say. A process that connects to a known LLM endpoint (or one the user lists) and whose
// content stays invisible raises one `coverage.gap` alert per endpoint, with the TLS stack it
// carries and why that is not captured: a blind spot is a finding, not a silence.
//
// Who talks to whom comes from the kernel (every TCP connect, CaptureSink::on_connect); the
// names of peers from the SNI of connections the agent does see (a visible process's
// connection to api.openai.com names its address for everyone), from DNS answers resolvers
// received, and from the user's list.
// A peer that the agent saw an LLM API call or an MCP session go to is an AI endpoint too, for
// every process (observe_event): a self-hosted gateway or a remote MCP server that a visible
// client uses makes an invisible process talking to it a gap.
// Content is "visible" for a process once any of its TLS or plaintext chunks arrived.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/capture/chunk.h"
#include "agent/coverage/tls_stack.h"

namespace agentwall::coverage {

struct CoverageOptions {
  // More AI endpoints: host names (matched against SNI-learned names) and IP[:port] literals
  // ("10.0.0.7:8443", "[fd00::1]:443", "192.168.1.5").
  std::vector<std::string> endpoints;
  // A connection with no content from its process for this long is a gap; a process that
  // exits is decided at its exit.
  uint64_t grace_ns = 10'000'000'000ull;
  // How long exited processes stay in the view.
  uint64_t keep_exited_ns = 600'000'000'000ull;
  // Finds the TLS stack of a process (tests replace it).
  std::function<TlsStack(const std::string& exe, uint32_t pid)> identify =
      [](const std::string& exe, uint32_t pid) { return identify_tls_stack(exe, pid); };
  // Runs `identify` on a thread of the view's own (the daemon: it reads the whole executable,
  // a third of a second for a 300 MB one, which must not stall the capture loop that feeds the
  // view). A gap that falls due meanwhile waits for it, at most identify_wait_ns; then its
  // stack is "unknown".
  bool identify_in_background = false;
  uint64_t identify_wait_ns = 5'000'000'000ull;
};

struct CoverageStats {
  uint64_t processes = 0;  // in the view now
  uint64_t visible = 0;
  uint64_t invisible = 0;
  uint64_t gaps = 0;  // coverage.gap alerts emitted since start
};

class Coverage final : public CaptureSink {
 public:
  using Emit = std::function<void(const std::string& json_line)>;
  Coverage(Emit emit, CoverageOptions options);
  ~Coverage() override;
  Coverage(const Coverage&) = delete;
  Coverage& operator=(const Coverage&) = delete;

  void on_process(const ProcessInfo& p) override;
  void on_chunk(const TlsChunk& c) override;
  void on_sni(const TlsSni& s) override;
  void on_connect(const TcpConnect& c) override;
  void on_close(const TlsClose& c) override;
  void on_dns(const ProcessKey& key, std::string_view message) override;
  void on_client_hello(const ClientHello& h) override;
  void on_exit(const ProcessKey& key) override;

  // Learns AI endpoints from a delivered event line: the connection peer of an `llm.exchange`
  // or an `mcp.message` is one from then on (named by that connection's SNI, `named_by`
  // "llm" or "mcp"). Other lines cost a prefix test.
  void observe_event(std::string_view line);

  // Decides connections past their grace time and forgets old exited processes.
  void tick(uint64_t now_ns);
  // The `agentwall coverage` document: one entry per process that talked to an AI endpoint
  // or whose AI traffic was seen.
  std::string json(uint64_t now_ns) const;
  CoverageStats stats() const;

  // The name of `peer` ("api.openai.com") and where it came from ("sni", "config"), or
  // empty when unknown; whether it is an AI endpoint. SNI wins over DNS (it names the port).
  struct PeerName {
    std::string host;
    std::string source;
    bool ai = false;
  };
  PeerName name_of(const Endpoint& peer) const;

 private:
  struct Contact {
    Endpoint peer;
    uint64_t first_ns = 0;
    uint64_t last_ns = 0;
    uint64_t connections = 0;
  };
  struct Proc {
    ProcessInfo info;
    uint64_t chunks = 0;                      // content seen from this process
    std::vector<std::string> content_hosts;   // SNI / peers of its visible connections
    std::map<std::string, Contact> contacts;  // by peer "ip:port"
    uint64_t dropped_contacts = 0;            // beyond the per-process cap
    std::set<std::string> alerted;            // endpoints a gap was raised for
    TlsStack stack;
    bool stack_known = false;
    uint64_t identify_ns = 0;     // when its stack was asked for in the background
    bool decision_waits = false;  // a gap is due once its stack is known
    bool exited = false;
    uint64_t exit_ns = 0;
  };
  Proc* proc_of(const ProcessKey& key);  // created when new; null when the view is full
  void decide(Proc& p, uint64_t now_ns, bool at_exit);
  void identify(Proc& p, uint32_t live_pid);  // its TLS stack; live_pid 0 once it is gone
  // Towards a known AI endpoint with no content seen yet: its stack is looked at now, while
  // /proc still shows its mappings (a short-lived client is gone by the time it is decided).
  void identify_if_ai(Proc& p, const Endpoint& peer, uint32_t live_pid);
  void collect_identified();                                     // results of the background thread
  void learn(const std::string& peer, const std::string& host);  // names_, bounded
  bool configured(const Endpoint& peer, const std::string& host) const;

  Emit emit_;
  CoverageOptions opt_;
  std::unordered_map<ProcessKey, Proc, ProcessKeyHash> procs_;
  std::unordered_map<std::string, std::string> names_;      // "ip:port" -> host, from SNI
  std::unordered_map<std::string, std::string> dns_names_;  // "ip" -> host, from DNS answers
  struct Learned {
    std::string host;            // the SNI of the call, when it had one
    const char* source = "llm";  // "llm" or "mcp"
  };
  std::unordered_map<std::string, Learned> learned_;    // "ip:port" -> seen carrying LLM/MCP
  std::unordered_map<uint64_t, std::string> conn_sni_;  // conn id -> SNI, until its peer shows
  std::unordered_map<uint64_t, Endpoint> conn_peer_;    // conn id -> peer, until its SNI shows
  std::unordered_map<std::string, TlsStack> stacks_;    // by executable path
  struct Background;                                    // identify_in_background
  std::unique_ptr<Background> background_;
  std::set<std::string> identifying_;  // executables the background thread has or is reading
  uint64_t gaps_ = 0;
};

}  // namespace agentwall::coverage
