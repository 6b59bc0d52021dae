// Replay throughput of the pipeline after capture (stream → HTTP/1.1 and HTTP/2 → SSE →
// provider adapters → llm.exchange JSON) on recorded real traffic, one core, against a
// baseline measured in the same run: the stream stage alone on the same records.
// Also: memory held per open connection, and whether a huge streamed body stays bounded.
//
//   pipeline_bench [--benchmark_*] RECORDING...
#include <benchmark/benchmark.h>
#include <malloc.h>

#ifdef AGENTWALL_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "agent/output/pipeline.h"
#include "agent/record/tape.h"

using namespace agentwall;

namespace {

using record::Tape;

Tape g_tape;

class NullStream final : public stream::StreamSink {
 public:
  uint64_t n = 0;
  void on_data(const stream::Connection&, const ProcessInfo*, const TlsChunk& c) override {
    n += c.data.size();
  }
};

void BM_StreamStageOnly(benchmark::State& state) {
  NullStream null;
  stream::Tracker tracker(null);
  uint64_t base = 0;
  for (auto _ : state) {
    g_tape.play(tracker, base += 1'000'000);
    benchmark::DoNotOptimize(null.n);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(g_tape.bytes));
}
BENCHMARK(BM_StreamStageOnly)->Unit(benchmark::kMillisecond);

void BM_Pipeline(benchmark::State& state) {
  uint64_t lines = 0;
  size_t json_bytes = 0;
  output::Pipeline pipeline([&](const std::string& l) {
    ++lines;
    json_bytes += l.size();
  });
  uint64_t base = 0;
  for (auto _ : state) {
    g_tape.play(pipeline.input(), base += 1'000'000);
  }
  pipeline.flush();
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(g_tape.bytes));
  state.counters["exchanges_per_s"] =
      benchmark::Counter(double(lines), benchmark::Counter::kIsRate);
  state.counters["exchanges_per_play"] = double(lines) / double(state.iterations());
}
BENCHMARK(BM_Pipeline)->Unit(benchmark::kMillisecond);

// Bytes the program has allocated and not freed, from whichever allocator it runs on.
size_t heap_in_use() {
#ifdef AGENTWALL_TCMALLOC
  size_t bytes = 0;
  if (MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &bytes)) return bytes;
#endif
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// Memory per open connection: N connections each stopped in the middle of a streamed
// response (head seen, SSE events flowing, no end).
void report_memory() {
  output::Pipeline pipeline([](const std::string&) {});
  ProcessInfo p;
  p.key = {4242, 1};
  p.comm = "bench";
  p.complete = true;
  pipeline.input().on_process(p);
  auto chunk = [&](uint64_t conn, Direction dir, uint64_t& off, std::string_view data) {
    TlsChunk c;
    c.time_ns = 1;
    c.process = p.key;
    c.comm = "bench";
    c.conn_id = conn;
    c.dir = dir;
    c.flags = kChunkLast;
    c.stream_off = off;
    c.call_len = uint32_t(data.size());
    c.data = data;
    off += data.size();
    pipeline.input().on_chunk(c);
  };
  const std::string body =
      R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]})";
  const std::string req =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
      "Authorization: Bearer sk-bench\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  std::string event =
      R"(data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"word "}}]})";
  event += "\n\n";
  char size_line[32];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", event.size());
  const std::string framed = size_line + event + "\r\n";

  constexpr int kConns = 2000;
  const size_t before = heap_in_use();
  std::vector<uint64_t> offs(2 * kConns, 0);
  for (int i = 0; i < kConns; ++i) {
    chunk(i + 1, Direction::kOut, offs[2 * i], req);
    chunk(i + 1, Direction::kIn, offs[2 * i + 1], head);
    for (int k = 0; k < 20; ++k) chunk(i + 1, Direction::kIn, offs[2 * i + 1], framed);
  }
  const size_t after = heap_in_use();
  std::printf("{\"memory_per_open_connection_bytes\": %zu, \"connections\": %d}\n",
              (after - before) / kConns, kConns);

  // One connection streaming ~200 MB: what it holds must not grow with the body.
  uint64_t out_off = 0, in_off = 0;
  chunk(900000, Direction::kOut, out_off, req);
  chunk(900000, Direction::kIn, in_off, head);
  std::string batch;
  for (int k = 0; k < 512; ++k) batch += framed;
  size_t at_1mb = 0;
  const size_t total = 200u << 20;
  size_t sent = 0;
  while (sent < total) {
    chunk(900000, Direction::kIn, in_off, batch);
    sent += batch.size();
    if (!at_1mb && sent >= (1u << 20)) at_1mb = heap_in_use();
  }
  const size_t at_end = heap_in_use();
  std::printf(
      "{\"streamed_body_bytes\": %zu, \"heap_after_1MiB\": %zu, \"heap_after_all\": %zu, "
      "\"growth_bytes\": %lld}\n",
      sent, at_1mb, at_end, (long long)at_end - (long long)at_1mb);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: pipeline_bench [--benchmark_*] RECORDING...\n");
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    std::string error;
    if (!g_tape.load(argv[i], error)) {
      std::fprintf(stderr, "pipeline_bench: %s\n", error.c_str());
      return 2;
    }
  }
  std::fprintf(stderr, "pipeline_bench: %zu records, %llu bytes\n", g_tape.records.size(),
               (unsigned long long)g_tape.bytes);
  if (std::getenv("PIPELINE_BENCH_MEMORY_ONLY") == nullptr) benchmark::RunSpecifiedBenchmarks();
  report_memory();
  benchmark::Shutdown();
  return 0;
}
