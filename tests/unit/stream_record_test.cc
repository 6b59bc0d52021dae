// The stream stage and the recording format, on hand-made chunk streams.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "agent/common/base64.h"
#include "agent/output/sniff_printer.h"
#include "agent/record/filter.h"
#include "agent/record/recording.h"
#include "agent/stream/tracker.h"

using namespace agentwall;

namespace {

struct Seen {
  std::string kind;
  uint64_t conn = 0;
  Direction dir = Direction::kOut;
  uint64_t offset = 0;
  uint64_t len = 0;
  std::string data;
  std::string reason;
};

class CollectingSink final : public stream::StreamSink {
 public:
  std::vector<Seen> events;
  std::vector<ProcessInfo> processes;
  void on_process(const ProcessInfo& p) override { processes.push_back(p); }
  void on_data(const stream::Connection& c, const ProcessInfo*, const TlsChunk& chunk) override {
    events.push_back({"data", c.id, chunk.dir, chunk.stream_off, chunk.data.size(),
                      std::string(chunk.data), ""});
  }
  void on_gap(const stream::Connection& c, Direction d, uint64_t off, uint64_t len,
              stream::GapReason r) override {
    events.push_back({"gap", c.id, d, off, len, "", std::string(stream::to_string(r))});
  }
  void on_close(const stream::Connection& c, const TlsClose&) override {
    events.push_back({"close", c.id, Direction::kOut, 0, 0, "", ""});
  }
};

TlsChunk chunk(uint64_t conn, Direction dir, uint64_t off, std::string_view data,
               uint32_t call_len = 0, uint32_t call_off = 0, uint32_t flags = kChunkLast) {
  TlsChunk c;
  c.time_ns = 1'700'000'000'000'000'000ull + off;
  c.process = {4242, 99'000'000};
  c.tid = 4243;
  c.comm = "curl";
  c.conn_id = conn;
  c.ssl = 0x5555000010;
  c.fd = 5;
  c.dir = dir;
  c.func = dir == Direction::kOut ? TlsFunc::kSslWrite : TlsFunc::kSslRead;
  c.stream_off = off;
  c.call_len = call_len ? call_len : static_cast<uint32_t>(data.size());
  c.call_off = call_off;
  c.flags = flags;
  c.peer.family = AF_INET;
  c.peer.port = 443;
  c.peer.addr = {127, 0, 0, 1};
  c.data = data;
  return c;
}

}  // namespace

TEST_CASE("stream: contiguous chunks pass through without gaps") {
  CollectingSink sink;
  stream::Tracker t(sink);
  t.on_chunk(chunk(1, Direction::kOut, 0, "GET / HTTP/1.1\r\n"));
  t.on_chunk(chunk(1, Direction::kOut, 16, "Host: x\r\n\r\n"));
  t.on_chunk(chunk(1, Direction::kIn, 0, "HTTP/1.1 200 OK\r\n"));
  REQUIRE(sink.events.size() == 3);
  for (const auto& e : sink.events) CHECK(e.kind == "data");
  CHECK(t.stats().gaps == 0);
  CHECK(t.stats().connections_total == 1);
}

TEST_CASE("stream: a hole in the offsets is a ringbuf_full gap of exactly the missing bytes") {
  CollectingSink sink;
  stream::Tracker t(sink);
  t.on_chunk(chunk(7, Direction::kIn, 0, "abcd"));
  t.on_chunk(chunk(7, Direction::kIn, 100, "efgh"));  // 96 bytes never arrived
  REQUIRE(sink.events.size() == 3);
  CHECK(sink.events[1].kind == "gap");
  CHECK(sink.events[1].offset == 4);
  CHECK(sink.events[1].len == 96);
  CHECK(sink.events[1].reason == "ringbuf_full");
  CHECK(t.stats().gap_bytes == 96);
}

TEST_CASE("stream: a truncated call reports the cut as a truncated gap, then resumes") {
  CollectingSink sink;
  stream::Tracker t(sink);
  // A 40-byte call captured to 16 bytes (cap), in two chunks of 8.
  t.on_chunk(chunk(3, Direction::kOut, 0, "01234567", 40, 0, kChunkTruncated));
  t.on_chunk(chunk(3, Direction::kOut, 8, "89abcdef", 40, 8, kChunkTruncated | kChunkLast));
  // The next call starts after the whole 40 bytes.
  t.on_chunk(chunk(3, Direction::kOut, 40, "next"));
  REQUIRE(sink.events.size() == 4);
  CHECK(sink.events[2].kind == "gap");
  CHECK(sink.events[2].reason == "truncated");
  CHECK(sink.events[2].offset == 16);
  CHECK(sink.events[2].len == 24);
  CHECK(sink.events[3].kind == "data");
  CHECK(t.stats().gaps == 0);  // a cut is not a loss of the ring buffer
  CHECK(t.stats().truncated_bytes == 24);
}

TEST_CASE("stream: a held write retried after writing part of it is not delivered twice") {
  CollectingSink sink;
  stream::Tracker t(sink);
  // Copied at the entry of a 10-byte write that then wrote 4 bytes; the retry writes the rest
  // from offset 4, copied again at its entry; then a write that was retried whole.
  t.on_chunk(chunk(5, Direction::kOut, 0, "0123456789", 10, 0, kChunkHeld | kChunkLast));
  t.on_chunk(chunk(5, Direction::kOut, 4, "456789", 6, 0, kChunkHeld | kChunkLast));
  t.on_chunk(chunk(5, Direction::kOut, 10, "abc", 3, 0, kChunkHeld | kChunkLast));
  t.on_chunk(chunk(5, Direction::kOut, 10, "abc", 3, 0, kChunkHeld | kChunkLast));
  t.on_chunk(chunk(5, Direction::kOut, 11, "bcdef", 5, 0, kChunkHeld | kChunkLast));
  std::string all;
  for (const Seen& e : sink.events) {
    CHECK(e.kind == "data");
    CHECK(e.offset == all.size());  // contiguous, never overlapping
    all += e.data;
  }
  CHECK(all == "0123456789abcdef");
  CHECK(t.stats().duplicate_bytes == 6 + 3 + 2);
  CHECK(t.stats().gaps == 0);
}

TEST_CASE("stream: bytes the kernel counted but never delivered show up at close") {
  CollectingSink sink;
  stream::Tracker t(sink);
  t.on_sni({1, {4242, 99'000'000}, 4243, 9, 0x10, "api.openai.com"});
  t.on_chunk(chunk(9, Direction::kOut, 0, "hello"));
  t.on_close({2, {4242, 99'000'000}, 4243, 9, 0x10, 5, 30});
  REQUIRE(sink.events.size() == 3);
  CHECK(sink.events[1].kind == "gap");
  CHECK(sink.events[1].dir == Direction::kIn);
  CHECK(sink.events[1].len == 30);
  CHECK(sink.events[2].kind == "close");
  CHECK(t.stats().connections_open == 0);
}

TEST_CASE("record: chunk encoding round-trips every field") {
  const std::string payload = std::string("\x00\x01", 2) + "binary\xff";  // 9 bytes
  TlsChunk c = chunk(11, Direction::kIn, 123456789, payload, 70000, 16384, kChunkTruncated);
  c.local.family = AF_INET6;
  c.local.port = 50000;
  c.local.addr[15] = 1;
  const std::string body = record::encode_chunk(c);
  TlsChunk d;
  std::string comm;
  REQUIRE(record::decode_chunk(body, d, comm));
  CHECK(d.time_ns == c.time_ns);
  CHECK(d.process == c.process);
  CHECK(d.tid == c.tid);
  CHECK(d.conn_id == 11);
  CHECK(d.ssl == c.ssl);
  CHECK(d.fd == 5);
  CHECK(d.dir == Direction::kIn);
  CHECK(d.func == TlsFunc::kSslRead);
  CHECK(d.stream_off == 123456789);
  CHECK(d.call_len == 70000);
  CHECK(d.call_off == 16384);
  CHECK(d.flags == kChunkTruncated);
  CHECK(d.local == c.local);
  CHECK(d.peer == c.peer);
  CHECK(d.comm == "curl");
  CHECK(d.data == payload);

  // Every cut of the header is refused; a chunk claiming more than its call is refused.
  for (size_t n = 0; n + payload.size() < body.size(); ++n) {
    CHECK_FALSE(record::decode_chunk(std::string_view(body).substr(0, n), d, comm));
  }
  TlsChunk liar = chunk(1, Direction::kOut, 0, "abcdef", 3);
  CHECK_FALSE(record::decode_chunk(record::encode_chunk(liar), d, comm));
}

TEST_CASE("record: NSPR's calls on an NSS descriptor round-trip by name; a later func is refused") {
  const std::pair<TlsFunc, std::string_view> nss[] = {{TlsFunc::kNssPrWrite, "PR_Write"},
                                                      {TlsFunc::kNssPrRead, "PR_Read"},
                                                      {TlsFunc::kNssPrSend, "PR_Send"},
                                                      {TlsFunc::kNssPrRecv, "PR_Recv"}};
  for (const auto& [func, name] : nss) {
    TlsChunk c = chunk(3, Direction::kOut, 0, "GET / HTTP/1.1\r\n");
    c.func = func;
    TlsChunk d;
    std::string comm;
    REQUIRE(record::decode_chunk(record::encode_chunk(c), d, comm));
    CHECK(d.func == func);
    CHECK(to_string(d.func) == name);
  }
  TlsChunk c = chunk(3, Direction::kOut, 0, "x");
  c.func = static_cast<TlsFunc>(kTlsFuncMax + 1);
  TlsChunk d;
  std::string comm;
  CHECK_FALSE(record::decode_chunk(record::encode_chunk(c), d, comm));
}

namespace {
std::string temp_path(const char* name) {
  return "/tmp/agentwall-unit-" + std::to_string(getpid()) + "-" + name;
}
}  // namespace

TEST_CASE("record: a recording replays to the same stream, and a cut one up to its cut") {
  const std::string path = temp_path("rec");
  {
    record::Writer w(path);
    REQUIRE(w.ok());
    ProcessInfo p;
    p.key = {4242, 99'000'000};
    p.comm = "curl";
    p.exe = "/usr/bin/curl";
    p.cmdline = "curl https://x";
    p.complete = true;
    w.on_process(p);
    w.on_sni({1, p.key, 4243, 1, 0x10, "localhost"});
    w.on_chunk(chunk(1, Direction::kOut, 0, "request"));
    w.on_chunk(chunk(1, Direction::kIn, 0, "response"));
    w.on_close({3, p.key, 4243, 1, 0x10, 7, 8});
    w.flush();
    CHECK(w.records_written() == 5);
    CHECK(w.records_lost() == 0);
  }
  CollectingSink sink;
  stream::Tracker t(sink);
  const auto r = record::replay_file(path, t);
  CHECK(r.ok());
  CHECK(r.records == 5);
  REQUIRE(sink.processes.size() == 1);
  CHECK(sink.processes[0].exe == "/usr/bin/curl");
  REQUIRE(sink.events.size() == 3);
  CHECK(sink.events[0].data == "request");
  CHECK(sink.events[1].data == "response");
  CHECK(sink.events[2].kind == "close");

  // Cut the file in the middle of the last record: the first records still replay, and
  // the error says where and why.
  std::ifstream in(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), {});
  const std::string cut_path = temp_path("cut");
  std::ofstream(cut_path, std::ios::binary) << all.substr(0, all.size() - 5);
  CollectingSink sink2;
  stream::Tracker t2(sink2);
  const auto r2 = record::replay_file(cut_path, t2);
  CHECK_FALSE(r2.ok());
  CHECK(r2.error.find("cut short") != std::string::npos);
  CHECK(r2.records == 4);
  CHECK(sink2.events.size() == 2);

  std::ofstream(cut_path, std::ios::binary) << "not a recording at all";
  const auto r3 = record::replay_file(cut_path, t2);
  CHECK(r3.error.find("not an agentwall recording") != std::string::npos);
  CHECK(record::replay_file("/nonexistent/x.awrec", t2).error.find("/nonexistent/x.awrec") !=
        std::string::npos);
  std::remove(path.c_str());
  std::remove(cut_path.c_str());
}

TEST_CASE("record: writing to a full disk is an error, counted, and never a crash") {
  record::Writer w("/dev/full");
  REQUIRE(w.ok());  // opening works; writing does not
  std::string big(2 << 20, 'x');
  w.on_chunk(chunk(1, Direction::kOut, 0, big));
  w.flush();
  w.on_chunk(chunk(1, Direction::kOut, big.size(), "more"));
  CHECK_FALSE(w.ok());
  CHECK(w.error().find("/dev/full") != std::string::npos);
  CHECK(w.records_lost() >= 1);
}

TEST_CASE("output: tls.data JSON carries the bytes exactly and the attribution") {
  stream::Connection conn;
  conn.id = 77;
  conn.sni = "api.anthropic.com";
  ProcessInfo p;
  p.exe = "/usr/bin/python3";
  const std::string bytes("POST /v1/messages\r\n\x00\xfe", 21);
  const TlsChunk c = chunk(77, Direction::kOut, 10, bytes);
  const auto j = nlohmann::json::parse(output::tls_data_json(conn, &p, c));
  CHECK(j["type"] == "tls.data");
  CHECK(j["pid"] == 4242);
  CHECK(j["tid"] == 4243);
  CHECK(j["comm"] == "curl");
  CHECK(j["exe"] == "/usr/bin/python3");
  CHECK(j["conn"] == 77);
  CHECK(j["fd"] == 5);
  CHECK(j["func"] == "SSL_write");
  CHECK(j["dir"] == "out");
  CHECK(j["len"] == 21);
  CHECK(j["offset"] == 10);
  CHECK(j["truncated"] == false);
  CHECK(j["peer"] == "127.0.0.1:443");
  CHECK(j["sni"] == "api.anthropic.com");
  CHECK(j["time"].get<std::string>().ends_with("Z"));
  CHECK(base64_decode(j["data_b64"].get<std::string>()) == std::optional<std::string>(bytes));
  CHECK_FALSE(j.contains("local"));  // unknown endpoints are left out, not invented
}

namespace {
class CountingSink final : public CaptureSink {
 public:
  std::vector<uint32_t> process_pids, chunk_pids, sni_pids, close_pids;
  void on_process(const ProcessInfo& p) override { process_pids.push_back(p.key.pid); }
  void on_chunk(const TlsChunk& c) override { chunk_pids.push_back(c.process.pid); }
  void on_sni(const TlsSni& s) override { sni_pids.push_back(s.process.pid); }
  void on_close(const TlsClose& c) override { close_pids.push_back(c.process.pid); }
};

TlsChunk chunk_of(uint32_t pid, std::string_view comm) {
  TlsChunk c = chunk(pid, Direction::kOut, 0, "x");
  c.process.pid = pid;
  c.comm = comm;
  return c;
}
}  // namespace

TEST_CASE("record: the process filter keeps one command's chunks, SNI and close") {
  CountingSink out;
  output::SniffFilter f;
  f.comm = "curl";
  record::ProcessFilter filter(out, f);
  // SNI arrives before the process's first chunk, when its comm is not known yet.
  filter.on_sni({1, {10, 1}, 10, 1, 0x1, "api.openai.com"});
  filter.on_sni({1, {20, 1}, 20, 2, 0x2, "example.com"});
  ProcessInfo curl;
  curl.key = {10, 1};
  curl.comm = "curl";
  ProcessInfo other;
  other.key = {20, 1};
  other.comm = "python3";
  filter.on_process(curl);
  filter.on_process(other);
  filter.on_chunk(chunk_of(10, "curl"));
  filter.on_chunk(chunk_of(20, "python3"));
  filter.on_close({2, {10, 1}, 10, 1, 0x1, 1, 0});
  filter.on_close({2, {20, 1}, 20, 2, 0x2, 1, 0});
  CHECK(out.process_pids == std::vector<uint32_t>{10});
  CHECK(out.sni_pids == std::vector<uint32_t>{10});  // held back, then delivered
  CHECK(out.chunk_pids == std::vector<uint32_t>{10});
  CHECK(out.close_pids == std::vector<uint32_t>{10});
}
