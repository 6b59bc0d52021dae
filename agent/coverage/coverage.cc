#include "agent/coverage/coverage.h"

#include <arpa/inet.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/common/time.h"
#include "agent/coverage/dns.h"
#include "agent/llm/adapter.h"

namespace agentwall::coverage {
namespace {

constexpr size_t kMaxContactsPerProcess = 64;
constexpr size_t kMaxConnMemo = 65536;  // conn id -> SNI / peer, until they meet
constexpr size_t kMaxProcesses = 100000;

// Events start with their type (the sinks read it from the front): ordered keys.
using ordered_json = nlohmann::ordered_json;

ordered_json process_doc(const ProcessInfo& p, const ProcessKey& key) {
  ordered_json j = {{"pid", key.pid}, {"start_ns", key.start_ns}};
  if (!p.comm.empty()) j["comm"] = p.comm;
  if (p.complete) {
    j["ppid"] = p.ppid;
    j["uid"] = p.uid;
    j["exe"] = p.exe;
    j["cmdline"] = p.cmdline;
    if (!p.cgroup_path.empty()) j["cgroup"] = p.cgroup_path;
  }
  return j;
}

// Who the alert's summary names: the executable's name. The comm of the event is the
// connecting thread's, which in a multi-threaded program names a worker ("tokio-rt-worker"
// for Codex), not the program.
std::string who(const ProcessInfo& p) {
  if (!p.exe.empty()) {
    const size_t slash = p.exe.rfind('/');
    return slash == std::string::npos ? p.exe : p.exe.substr(slash + 1);
  }
  return p.comm.empty() ? std::string("a process") : p.comm;
}

// "10.0.0.7:8443" / "[::1]:443" / "10.0.0.7" / "[::1]" against an endpoint.
bool literal_matches(const std::string& entry, const Endpoint& peer) {
  const std::string full = peer.to_string();
  if (entry == full) return true;
  const size_t colon = full.rfind(':');
  return colon != std::string::npos && entry == full.substr(0, colon);
}

}  // namespace

// One thread that reads executables for the view, one at a time, in the order asked.
struct Coverage::Background {
  using Identify = std::function<TlsStack(const std::string&, uint32_t)>;
  explicit Background(Identify fn) : identify(std::move(fn)), thread([this] { run(); }) {}
  ~Background() {
    {
      const std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_one();
    thread.join();
  }
  void ask(const std::string& exe, uint32_t pid) {
    {
      const std::lock_guard<std::mutex> lock(mu);
      jobs.emplace_back(exe, pid);
    }
    cv.notify_one();
  }
  std::vector<std::pair<std::string, TlsStack>> take() {
    const std::lock_guard<std::mutex> lock(mu);
    return std::exchange(done, {});
  }
  void run() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return stop || !jobs.empty(); });
      if (stop) return;
      const auto [exe, pid] = jobs.front();
      jobs.pop_front();
      lock.unlock();
      TlsStack stack = identify(exe, pid);
      lock.lock();
      done.emplace_back(exe, std::move(stack));
    }
  }

  Identify identify;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<std::string, uint32_t>> jobs;
  std::vector<std::pair<std::string, TlsStack>> done;
  bool stop = false;
  std::thread thread;  // last: started once the rest exists
};

Coverage::Coverage(Emit emit, CoverageOptions options)
    : emit_(std::move(emit)), opt_(std::move(options)) {
  if (opt_.identify_in_background) background_ = std::make_unique<Background>(opt_.identify);
}

Coverage::~Coverage() = default;

bool Coverage::configured(const Endpoint& peer, const std::string& host) const {
  for (const std::string& e : opt_.endpoints) {
    if ((!host.empty() && e == host) || literal_matches(e, peer)) return true;
  }
  return false;
}

Coverage::PeerName Coverage::name_of(const Endpoint& peer) const {
  PeerName n;
  if (const auto it = names_.find(peer.to_string()); it != names_.end()) {
    n.host = it->second;
    n.source = "sni";
  } else if (!dns_names_.empty()) {
    const std::string full = peer.to_string();
    std::string ip = full.substr(0, full.rfind(':'));
    if (ip.size() > 2 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
    if (const auto d = dns_names_.find(ip); d != dns_names_.end()) {
      n.host = d->second;
      n.source = "dns";
    }
  }
  if (configured(peer, n.host)) {
    n.ai = true;
    if (n.source.empty()) n.source = "config";
  } else {
    n.ai = !n.host.empty() && llm::is_known_llm_host(n.host);
  }
  if (!n.ai && !learned_.empty()) {
    if (const auto l = learned_.find(peer.to_string()); l != learned_.end()) {
      n.ai = true;
      if (n.host.empty()) n.host = l->second.host;
      if (n.source.empty()) n.source = l->second.source;
    }
  }
  return n;
}

void Coverage::observe_event(std::string_view line) {
  const char* source = nullptr;
  if (line.starts_with(R"({"type":"llm.exchange")"))
    source = "llm";
  else if (line.starts_with(R"({"type":"mcp.message")"))
    source = "mcp";
  else
    return;
  // Both write `connection` last, a flat object: the line ends with it and the event's '}'.
  // Found from the end, so that content earlier in the line (a request body may hold any
  // JSON) cannot pose as it.
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  const size_t begin = line.rfind(R"("connection":{)");
  if (begin == std::string_view::npos) return;
  const size_t end = line.find('}', begin);
  if (end == std::string_view::npos || end + 2 != line.size()) return;
  const std::string_view conn = line.substr(begin, end - begin);
  auto field = [&](std::string_view key) -> std::string_view {
    const size_t k = conn.find(key);
    if (k == std::string_view::npos) return {};
    const size_t from = k + key.size();
    const size_t to = conn.find('"', from);
    return to == std::string_view::npos ? std::string_view{} : conn.substr(from, to - from);
  };
  const std::string_view peer = field(R"("peer":")");
  if (peer.empty()) return;
  const std::string key(peer);
  if (learned_.count(key)) return;
  if (learned_.size() >= kMaxConnMemo) learned_.clear();
  learned_[key] = Learned{std::string(field(R"("sni":")")), source};
}

Coverage::Proc* Coverage::proc_of(const ProcessKey& key) {
  if (const auto it = procs_.find(key); it != procs_.end()) return &it->second;
  if (procs_.size() >= kMaxProcesses) return nullptr;
  Proc& p = procs_[key];
  p.info.key = key;
  return &p;
}

void Coverage::on_process(const ProcessInfo& info) {
  Proc* p = proc_of(info.key);
  if (!p) return;
  p->info = info;
}

void Coverage::learn(const std::string& peer, const std::string& host) {
  if (names_.size() >= kMaxConnMemo && !names_.count(peer)) names_.clear();
  names_[peer] = host;
}

void Coverage::on_sni(const TlsSni& s) {
  if (s.sni.empty()) return;
  if (conn_sni_.size() >= kMaxConnMemo) conn_sni_.clear();
  conn_sni_[s.conn_id] = s.sni;
  if (const auto it = conn_peer_.find(s.conn_id); it != conn_peer_.end())
    learn(it->second.to_string(), s.sni);
  if (const auto p = procs_.find(s.process); p != procs_.end()) {
    auto& hosts = p->second.content_hosts;
    if (hosts.size() < 16 && std::find(hosts.begin(), hosts.end(), s.sni) == hosts.end())
      hosts.push_back(s.sni);
  }
}

void Coverage::on_chunk(const TlsChunk& c) {
  Proc* proc = proc_of(c.process);
  if (!proc) return;
  Proc& p = *proc;
  ++p.chunks;
  if (!c.peer.is_ip() || (c.flags & kChunkPipe)) return;
  if (conn_peer_.size() >= kMaxConnMemo) conn_peer_.clear();
  if (!conn_peer_.emplace(c.conn_id, c.peer).second) return;  // known already
  if (const auto s = conn_sni_.find(c.conn_id); s != conn_sni_.end())
    learn(c.peer.to_string(), s->second);
}

void Coverage::on_connect(const TcpConnect& c) {
  if (!c.peer.is_ip()) return;
  Proc* proc = proc_of(c.process);
  if (!proc) return;
  Proc& p = *proc;
  const std::string key = c.peer.to_string();
  auto contact = p.contacts.find(key);
  if (contact == p.contacts.end()) {
    if (p.contacts.size() >= kMaxContactsPerProcess) {
      ++p.dropped_contacts;
      return;
    }
    contact = p.contacts.emplace(key, Contact{c.peer, c.time_ns, c.time_ns, 0}).first;
  }
  contact->second.last_ns = c.time_ns;
  ++contact->second.connections;
  identify_if_ai(p, c.peer, c.process.pid);
}

void Coverage::identify_if_ai(Proc& p, const Endpoint& peer, uint32_t live_pid) {
  if (!p.stack_known && p.chunks == 0 && name_of(peer).ai) identify(p, live_pid);
}

// The name a process's own ClientHello gave its peer: learned as a visible connection's SNI
// is, so that a process whose TLS stack the agent cannot read (rustls, an unknown library) is
// named by it too. Towards an AI endpoint, the stack is looked at now, as at a connect.
void Coverage::on_client_hello(const ClientHello& h) {
  if (!h.peer.is_ip() || h.sni.empty()) return;
  learn(h.peer.to_string(), h.sni);
  if (Proc* proc = proc_of(h.process)) identify_if_ai(*proc, h.peer, h.process.pid);
}

void Coverage::identify(Proc& p, uint32_t live_pid) {
  // One look per executable: a runtime's processes (node, python3) carry the same stack.
  if (const auto it = stacks_.find(p.info.exe); !p.info.exe.empty() && it != stacks_.end()) {
    p.stack = it->second;
  } else if (background_ && !p.info.exe.empty()) {
    if (!p.identify_ns) p.identify_ns = unix_now_ns();
    if (identifying_.insert(p.info.exe).second) background_->ask(p.info.exe, live_pid);
    return;  // known when the thread is done (collect_identified)
  } else {
    p.stack = opt_.identify(p.info.exe, live_pid);
    if (!p.info.exe.empty()) {
      if (stacks_.size() >= 4096) stacks_.clear();
      stacks_[p.info.exe] = p.stack;
    }
  }
  p.stack_known = true;
}

void Coverage::collect_identified() {
  if (!background_) return;
  for (auto& [exe, stack] : background_->take()) {
    identifying_.erase(exe);
    if (stacks_.size() >= 4096) stacks_.clear();
    stacks_[exe] = stack;
    for (auto& [key, p] : procs_) {
      if (p.stack_known || p.info.exe != exe) continue;
      p.stack = stack;
      p.stack_known = true;
    }
  }
}

void Coverage::on_dns(const ProcessKey&, std::string_view message) {
  for (const DnsAddress& a : parse_dns_answers(message)) {
    char text[INET6_ADDRSTRLEN] = {};
    if (!inet_ntop(a.family, a.addr.data(), text, sizeof(text))) continue;
    if (dns_names_.size() >= kMaxConnMemo) dns_names_.clear();
    dns_names_[text] = a.name;
  }
}

void Coverage::on_close(const TlsClose& c) {
  conn_sni_.erase(c.conn_id);
  conn_peer_.erase(c.conn_id);
}

void Coverage::on_exit(const ProcessKey& key) {
  const auto it = procs_.find(key);
  if (it == procs_.end()) return;
  Proc& p = it->second;
  p.exited = true;
  p.exit_ns = unix_now_ns();
  collect_identified();
  decide(p, p.exit_ns, true);
  // Nothing to show (no AI endpoint, no content): forgotten at once.
  bool ai = false;
  for (const auto& [k, c] : p.contacts) ai = ai || name_of(c.peer).ai;
  for (const std::string& h : p.content_hosts) ai = ai || llm::is_known_llm_host(h);
  if (!ai) procs_.erase(it);
}

void Coverage::decide(Proc& p, uint64_t now_ns, bool at_exit) {
  p.decision_waits = false;
  if (p.chunks > 0) return;  // its content is seen
  for (const auto& [key, contact] : p.contacts) {
    if (!at_exit && now_ns < contact.first_ns + opt_.grace_ns) continue;
    const PeerName name = name_of(contact.peer);
    const std::string endpoint = name.host.empty() ? key : name.host;
    if (!name.ai || p.alerted.count(endpoint)) continue;
    if (!p.stack_known) identify(p, p.exited ? 0 : p.info.key.pid);
    if (!p.stack_known) {  // being read in the background
      if (now_ns < p.identify_ns + opt_.identify_wait_ns) {
        p.decision_waits = true;  // tick() decides again
        continue;
      }
      p.stack = {"unknown", "its executable was not read in time"};
      p.stack_known = true;
    }
    p.alerted.insert(endpoint);
    ++gaps_;
    ordered_json j = {{"type", "coverage.gap"},
                      {"time", format_rfc3339(now_ns)},
                      {"severity", "high"},
                      {"summary", who(p.info) + " talks to " + endpoint +
                                      " and the agent cannot see what it says: " + p.stack.reason}};
    j["endpoint"] = {{"peer", key}, {"connections", contact.connections}};
    if (!name.host.empty()) j["endpoint"]["host"] = name.host;
    j["endpoint"]["named_by"] = name.source;
    j["tls_stack"] = p.stack.name;
    j["reason"] = p.stack.reason;
    j["process"] = process_doc(p.info, p.info.key);
    emit_(j.dump(-1, ' ', false, ordered_json::error_handler_t::replace));
  }
}

void Coverage::tick(uint64_t now_ns) {
  collect_identified();
  for (auto it = procs_.begin(); it != procs_.end();) {
    Proc& p = it->second;
    if (p.exited && now_ns > p.exit_ns + opt_.keep_exited_ns) {
      it = procs_.erase(it);
      continue;
    }
    if (!p.exited)
      decide(p, now_ns, false);
    else if (p.decision_waits)
      decide(p, now_ns, true);
    ++it;
  }
}

std::string Coverage::json(uint64_t now_ns) const {
  ordered_json list = ordered_json::array();
  for (const auto& [key, p] : procs_) {
    ordered_json endpoints = ordered_json::array();
    bool ai = false;
    for (const auto& [peer, c] : p.contacts) {
      const PeerName name = name_of(c.peer);
      if (!name.ai) continue;
      ai = true;
      ordered_json e = {{"peer", peer},
                        {"connections", c.connections},
                        {"first", format_rfc3339(c.first_ns)},
                        {"last", format_rfc3339(c.last_ns)},
                        {"named_by", name.source}};
      if (!name.host.empty()) e["host"] = name.host;
      endpoints.push_back(std::move(e));
    }
    ordered_json hosts = ordered_json::array();
    for (const std::string& h : p.content_hosts) {
      if (!llm::is_known_llm_host(h) && !configured(Endpoint{}, h)) continue;
      ai = true;
      hosts.push_back(h);
    }
    if (!ai) continue;
    ordered_json e = {{"process", process_doc(p.info, key)},
                      {"alive", !p.exited},
                      {"visible", p.chunks > 0},
                      {"chunks", p.chunks},
                      {"endpoints", std::move(endpoints)},
                      {"tls_hosts", std::move(hosts)},
                      {"gap", !p.alerted.empty()}};
    if (p.dropped_contacts) e["peers_not_kept"] = p.dropped_contacts;  // past the cap of 64
    if (p.stack_known) {
      e["tls_stack"] = p.stack.name;
      e["reason"] = p.stack.reason;
    }
    list.push_back(std::move(e));
  }
  std::sort(list.begin(), list.end(), [](const ordered_json& a, const ordered_json& b) {
    return a["process"]["pid"].get<uint32_t>() < b["process"]["pid"].get<uint32_t>();
  });
  ordered_json doc = {
      {"type", "agent.coverage"}, {"time", format_rfc3339(now_ns)}, {"processes", std::move(list)}};
  return doc.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

CoverageStats Coverage::stats() const {
  CoverageStats s;
  s.gaps = gaps_;
  s.processes = procs_.size();
  for (const auto& [key, p] : procs_) (p.chunks ? s.visible : s.invisible) += 1;
  return s;
}

}  // namespace agentwall::coverage
