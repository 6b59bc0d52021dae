// The coverage view's bookkeeping: who connected where, which peers are AI endpoints (named
// by the SNI of visible connections or by the configuration), and when a process whose content
// stays unseen becomes a coverage.gap. The TLS-stack guess is fixed in the Fixture (it reads
// real files; integration.test_coverage and test_codex run it on real stripped binaries); its
// reading of an executable's bytes is tested on its own, last.
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/common/time.h"
#include "agent/coverage/coverage.h"
#include "agent/coverage/tls_stack.h"

using namespace agentwall;
using nlohmann::json;

namespace {

constexpr uint64_t kSecond = 1'000'000'000ull;

Endpoint v4(const char* ip, uint16_t port) {
  Endpoint e;
  e.family = AF_INET;
  e.port = port;
  inet_pton(AF_INET, ip, e.addr.data());
  return e;
}

ProcessInfo process(uint32_t pid, const char* comm) {
  ProcessInfo p;
  p.key = {pid, 1000 + pid};
  p.comm = comm;
  p.exe = std::string("/usr/bin/") + comm;
  p.complete = true;
  return p;
}

struct Fixture {
  std::vector<json> events;
  std::vector<std::pair<std::string, uint32_t>> identified;
  coverage::Coverage cov;

  explicit Fixture(std::vector<std::string> endpoints = {})
      : cov([this](const std::string& line) { events.push_back(json::parse(line)); },
            options(std::move(endpoints))) {}

  coverage::CoverageOptions options(std::vector<std::string> endpoints) {
    coverage::CoverageOptions o;
    o.endpoints = std::move(endpoints);
    o.identify = [this](const std::string& exe, uint32_t pid) {
      identified.emplace_back(exe, pid);
      return coverage::TlsStack{"Go crypto/tls", "not captured by this version"};
    };
    return o;
  }

  void connect(const ProcessInfo& p, const Endpoint& peer, uint64_t t) {
    TcpConnect c;
    c.time_ns = t;
    c.process = p.key;
    c.fd = 5;
    c.peer = peer;
    cov.on_connect(c);
  }

  // A visible TLS connection: its SNI, then a chunk that knows its peer.
  void visible_call(const ProcessInfo& p, uint64_t conn, const std::string& sni,
                    const Endpoint& peer) {
    cov.on_sni({1, p.key, 1, conn, 0xabc, sni});
    TlsChunk c;
    c.process = p.key;
    c.conn_id = conn;
    c.peer = peer;
    c.data = "GET / HTTP/1.1\r\n\r\n";
    cov.on_chunk(c);
  }
};

}  // namespace

TEST_CASE("coverage: an unseen process talking to an LLM host named by another's SNI is a gap") {
  Fixture f;
  const ProcessInfo curl = process(10, "curl"), hidden = process(11, "goclient");
  const Endpoint api = v4("104.18.6.192", 443);
  f.cov.on_process(curl);
  f.connect(curl, api, 1 * kSecond);
  f.visible_call(curl, 77, "api.openai.com", api);
  CHECK(f.cov.name_of(api).host == "api.openai.com");
  CHECK(f.cov.name_of(api).ai);

  f.cov.on_process(hidden);
  f.connect(hidden, api, 2 * kSecond);
  f.connect(hidden, api, 3 * kSecond);
  f.cov.tick(5 * kSecond);  // within the grace time: nothing yet
  CHECK(f.events.empty());
  f.cov.on_exit(hidden.key);  // decided at its exit
  REQUIRE(f.events.size() == 1);
  const json& gap = f.events[0];
  CHECK(gap["type"] == "coverage.gap");
  CHECK(gap["severity"] == "high");
  CHECK(gap["endpoint"]["host"] == "api.openai.com");
  CHECK(gap["endpoint"]["peer"] == "104.18.6.192:443");
  CHECK(gap["endpoint"]["connections"] == 2);
  CHECK(gap["endpoint"]["named_by"] == "sni");
  CHECK(gap["tls_stack"] == "Go crypto/tls");
  CHECK(gap["process"]["pid"] == 11);
  CHECK(gap["process"]["exe"] == "/usr/bin/goclient");
  // Looked at when it first reached a known AI endpoint, while it lived; once.
  REQUIRE(f.identified.size() == 1);
  CHECK(f.identified[0] == std::pair<std::string, uint32_t>{"/usr/bin/goclient", 11});

  // The view: curl visible, the hidden one with its gap; both with the endpoint.
  const json view = json::parse(f.cov.json(10 * kSecond));
  REQUIRE(view["processes"].size() == 2);
  CHECK(view["processes"][0]["process"]["pid"] == 10);
  CHECK(view["processes"][0]["visible"] == true);
  CHECK(view["processes"][0]["tls_hosts"] == json::array({"api.openai.com"}));
  CHECK(view["processes"][1]["visible"] == false);
  CHECK(view["processes"][1]["gap"] == true);
  CHECK(view["processes"][1]["alive"] == false);
  CHECK(view["processes"][1]["endpoints"][0]["host"] == "api.openai.com");
  const coverage::CoverageStats s = f.cov.stats();
  CHECK(s.gaps == 1);
  CHECK(s.visible == 1);
  CHECK(s.invisible == 1);
}

TEST_CASE("coverage: a live process is decided after the grace time, once per endpoint") {
  Fixture f;
  const ProcessInfo p = process(20, "agent");
  const Endpoint api = v4("10.9.9.9", 443);
  f.visible_call(process(21, "curl"), 1, "api.anthropic.com", api);
  f.cov.on_process(p);
  f.connect(p, api, 100 * kSecond);
  f.cov.tick(105 * kSecond);
  CHECK(f.events.empty());
  f.cov.tick(111 * kSecond);
  REQUIRE(f.events.size() == 1);
  CHECK(f.identified.at(0).second == 20);  // alive: its /proc is read
  // Another process of the same executable is not looked at again.
  ProcessInfo twin = process(22, "agent");
  f.cov.on_process(twin);
  f.connect(twin, api, 100 * kSecond);
  f.cov.on_exit(twin.key);
  CHECK(f.events.size() == 2);
  CHECK(f.identified.size() == 1);
  f.connect(p, api, 120 * kSecond);  // the first process again: already reported
  f.cov.tick(200 * kSecond);
  f.cov.on_exit(p.key);
  CHECK(f.events.size() == 2);
}

TEST_CASE("coverage: visible processes, unknown peers and other hosts raise nothing") {
  Fixture f;
  const ProcessInfo seen = process(30, "python3"), other = process(31, "wget");
  const Endpoint api = v4("10.1.1.1", 443), web = v4("10.2.2.2", 443);
  f.visible_call(process(32, "curl"), 5, "api.openai.com", api);
  f.visible_call(process(33, "curl"), 6, "example.com", web);
  f.cov.on_process(seen);
  f.connect(seen, api, 1 * kSecond);
  f.visible_call(seen, 7, "api.openai.com", api);  // its content arrives
  f.cov.on_process(other);
  f.connect(other, web, 1 * kSecond);                  // a host that is not an AI endpoint
  f.connect(other, v4("10.3.3.3", 443), 1 * kSecond);  // no name at all
  f.cov.tick(100 * kSecond);
  f.cov.on_exit(seen.key);
  f.cov.on_exit(other.key);
  CHECK(f.events.empty());
  // wget never touched an AI endpoint: it is not in the view.
  const json view = json::parse(f.cov.json(0));
  for (const json& p : view["processes"]) CHECK(p["process"]["pid"] != 31);
}

TEST_CASE("coverage: configured endpoints, by IP:port, by IP and by name") {
  Fixture f({"192.168.7.7:8443", "10.4.4.4", "llm-gateway.internal"});
  const ProcessInfo a = process(40, "a"), b = process(41, "b"), c = process(42, "c");
  f.visible_call(process(43, "curl"), 9, "llm-gateway.internal", v4("10.5.5.5", 443));
  for (const ProcessInfo& p : {a, b, c}) f.cov.on_process(p);
  f.connect(a, v4("192.168.7.7", 8443), 0);
  f.connect(a, v4("192.168.7.7", 9000), 0);  // another port of that host: not listed
  f.connect(b, v4("10.4.4.4", 1234), 0);
  f.connect(c, v4("10.5.5.5", 443), 0);
  for (const ProcessInfo& p : {a, b, c}) f.cov.on_exit(p.key);
  REQUIRE(f.events.size() == 3);
  CHECK(f.events[0]["endpoint"]["peer"] == "192.168.7.7:8443");
  CHECK(f.events[0]["endpoint"]["named_by"] == "config");
  CHECK(f.events[1]["endpoint"]["peer"] == "10.4.4.4:1234");
  CHECK(f.events[2]["endpoint"]["host"] == "llm-gateway.internal");
  CHECK(f.events[2]["endpoint"]["named_by"] == "sni");
}

TEST_CASE("coverage: a resolver's answer names the address for the processes that connect to it") {
  Fixture f;
  // api.mistral.ai A 10.8.8.8, as a resolver received it (wire format).
  std::string msg = {char(0x12), char(0x34), char(0x81), char(0x80), 0, 1, 0, 1, 0, 0, 0, 0};
  for (const std::string label : {"api", "mistral", "ai"}) msg += char(label.size()) + label;
  msg += std::string{0, 0, 1, 0, 1};
  msg += std::string{char(0xc0), 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 8, 8, 8};
  f.cov.on_dns({1, 1}, msg);
  const ProcessInfo p = process(50, "rustclient");
  f.cov.on_process(p);
  f.connect(p, v4("10.8.8.8", 443), 0);
  f.connect(p, v4("10.8.8.9", 443), 0);  // not in the answer
  f.cov.on_exit(p.key);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0]["endpoint"]["host"] == "api.mistral.ai");
  CHECK(f.events[0]["endpoint"]["named_by"] == "dns");
  CHECK(f.events[0]["endpoint"]["peer"] == "10.8.8.8:443");
}

TEST_CASE("coverage: the peers of LLM calls and MCP sessions the agent decoded are AI endpoints") {
  Fixture f;
  // A self-hosted gateway no list knows, and a remote MCP server reached without SNI, as the
  // pipeline reports them (event lines as delivered; only their start and connection matter).
  f.cov.observe_event(
      R"({"type":"llm.exchange","time":"2026-11-26T16:00:00Z","provider":"openai",)"
      R"("request":{"tools":[{"parameters":{"connection":{"peer":"1.1.1.1:1"}}}]},)"
      R"("process":{"pid":60,"comm":"python3"},)"
      R"("connection":{"id":4,"local":"10.0.0.2:40000","peer":"10.6.6.6:443","sni":"llm.corp.example","fd":7}})"
      "\n");
  f.cov.observe_event(
      R"({"type":"mcp.message","method":"tools/call","process":{"pid":61},"connection":{"id":9,"peer":"10.7.7.7:8443","fd":5}})");
  // Other events, and connections the content only mentions, teach nothing.
  f.cov.observe_event(R"({"type":"tls.data","connection":{"peer":"10.9.0.1:443"}})");
  f.cov.observe_event(R"({"type":"policy.alert","connection":{"peer":"10.9.0.2:443"}})");
  f.cov.observe_event(R"({"type":"llm.exchange","connection":{"peer":"10.9.0.3:443"},"x":1})");
  CHECK(f.cov.name_of(v4("10.6.6.6", 443)).ai);
  CHECK(f.cov.name_of(v4("10.6.6.6", 443)).host == "llm.corp.example");
  CHECK(f.cov.name_of(v4("10.6.6.6", 443)).source == "llm");
  CHECK(f.cov.name_of(v4("10.7.7.7", 8443)).source == "mcp");
  CHECK_FALSE(f.cov.name_of(v4("10.6.6.6", 80)).ai);  // another port
  CHECK_FALSE(f.cov.name_of(v4("1.1.1.1", 1)).ai);
  CHECK_FALSE(f.cov.name_of(v4("10.9.0.1", 443)).ai);
  CHECK_FALSE(f.cov.name_of(v4("10.9.0.2", 443)).ai);
  CHECK_FALSE(f.cov.name_of(v4("10.9.0.3", 443)).ai);

  const ProcessInfo rust = process(62, "rustagent");
  f.cov.on_process(rust);
  f.connect(rust, v4("10.6.6.6", 443), 0);
  f.connect(rust, v4("10.7.7.7", 8443), 0);
  f.cov.on_exit(rust.key);
  REQUIRE(f.events.size() == 2);
  CHECK(f.events[0]["endpoint"]["host"] == "llm.corp.example");
  CHECK(f.events[0]["endpoint"]["named_by"] == "llm");
  CHECK(f.events[1]["endpoint"]["peer"] == "10.7.7.7:8443");
  CHECK(f.events[1]["endpoint"]["named_by"] == "mcp");
}

TEST_CASE("coverage: the summary names the program, not the thread that connected") {
  Fixture f({"10.9.9.9:443"});
  ProcessInfo p = process(60, "tokio-rt-worker");
  p.exe = "/opt/codex/bin/codex";
  f.cov.on_process(p);
  f.connect(p, v4("10.9.9.9", 443), 0);
  f.cov.on_exit(p.key);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0]["summary"].get<std::string>().starts_with("codex talks to 10.9.9.9:443"));
  CHECK(f.events[0]["process"]["comm"] == "tokio-rt-worker");
}

TEST_CASE("coverage: the TLS stack read from an executable's bytes and its mapped libraries") {
  const auto image = [](std::initializer_list<std::string_view> markers) {
    std::string s = "not an ELF file\n";
    for (const std::string_view m : markers) s.append(m).append("\n");
    return s;
  };
  const auto stack = [](const std::string& bytes, std::vector<std::string> libs = {},
                        bool located = false) {
    return coverage::identify_tls_stack(
        {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, libs, located);
  };
  // Codex (npm @openai/codex, a static musl Rust binary, stripped) carries both: rustls for
  // its HTTPS client and a vendored OpenSSL 3 for something else. Its API traffic is rustls
  // (its ClientHello is rustls's, with the system roots as with a custom CA), so rustls wins.
  CHECK(stack(image({"rustls-0.23.46/src/conn.rs", "ssl/ssl_lib.c", "OpenSSL 3.6.4 25 Aug 2026"}))
            .name == "rustls");
  CHECK(stack(image({"ssl/ssl_lib.c"})).name == "OpenSSL (linked in, stripped)");
  // With rustls's aws-lc-rs provider: captured at aws-lc's AEAD when located, and said so.
  CHECK(stack(image({"rustls-0.23.46/src/crypto/aws_lc_rs/tls13.rs"})).name == "rustls (aws-lc)");
  CHECK(stack(image({"rustls-0.23.46/src/crypto/aws_lc_rs/tls13.rs"}), {}, true).name ==
        "rustls (aws-lc, stripped; located by signature)");
  CHECK(stack(image({"BoringSSL", "rustls"})).name == "BoringSSL (linked in, stripped)");
  CHECK(stack(image({"rustls"}), {"/usr/lib/x86_64-linux-gnu/libssl.so.3"}).name ==
        "OpenSSL (shared)");
  // NSS is attached (libnspr4's I/O calls, libssl3's SSL layer): a gap means its calls were
  // not seen, not that NSS is not captured.
  const coverage::TlsStack nss = stack(image({"plain"}), {"/usr/lib/x86_64-linux-gnu/libnspr4.so",
                                                          "/usr/lib/x86_64-linux-gnu/libnss3.so",
                                                          "/usr/lib/x86_64-linux-gnu/libssl3.so"});
  CHECK(nss.name == "NSS");
  CHECK(nss.reason.find("which is attached") != std::string::npos);
  CHECK(stack(image({"plain"}), {"/usr/lib/x86_64-linux-gnu/libnss3.so"})
            .reason.find("without its TLS library") != std::string::npos);
  CHECK(stack(image({"plain"})).name == "unknown");
  CHECK(stack("").name == "unknown");
}

TEST_CASE("coverage: in the background, a gap waits for its stack without holding the caller") {
  std::vector<json> events;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> asked{0};
  coverage::CoverageOptions o;
  o.endpoints = {"10.3.3.3:443"};
  o.identify_in_background = true;
  o.identify = [&](const std::string&, uint32_t) {
    ++asked;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
    return coverage::TlsStack{"rustls", "rustls (a Rust TLS library) is not captured"};
  };
  auto let_go = [&] {
    {
      const std::lock_guard<std::mutex> lock(mu);
      release = true;
    }
    cv.notify_all();
  };
  {
    coverage::Coverage cov([&](const std::string& line) { events.push_back(json::parse(line)); },
                           o);
    const ProcessInfo p = process(70, "codex");
    cov.on_process(p);
    TcpConnect c;
    c.time_ns = unix_now_ns();
    c.process = p.key;
    c.peer = v4("10.3.3.3", 443);
    cov.on_connect(c);  // asks for the stack, and returns while it is being read
    cov.on_exit(p.key);
    cov.tick(unix_now_ns());
    CHECK(events.empty());  // due, but waiting for the stack
    let_go();
    for (int i = 0; i < 500 && events.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      cov.tick(unix_now_ns());
    }
    REQUIRE(events.size() == 1);
    CHECK(events[0]["tls_stack"] == "rustls");
    CHECK(asked == 1);

    // A stack that takes longer than identify_wait_ns: the gap goes out, stack unknown.
    const ProcessInfo q = process(71, "slow");
    cov.on_process(q);
    c.process = q.key;
    {
      const std::lock_guard<std::mutex> lock(mu);
      release = false;
    }
    cov.on_connect(c);
    for (int i = 0; i < 500 && asked < 2; ++i)  // the thread is inside identify, held there
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(asked == 2);
    cov.on_exit(q.key);
    CHECK(events.size() == 1);
    cov.tick(unix_now_ns() + o.identify_wait_ns + 1);
    REQUIRE(events.size() == 2);
    CHECK(events[1]["tls_stack"] == "unknown");
    let_go();  // the thread finishes its read before the view goes
  }
}
