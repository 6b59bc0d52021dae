// What the per-sink spool costs per 600-byte alert on one core: append alone, and the
// whole cycle a sink runs (append, then peek and ack in batches), in each Sync mode; plus
// CRC-32C over a record, SSE4.2 against the table. The spool lives in a fresh directory
// under $SPOOL_BENCH_DIR (default /tmp), so the figures are that file system's.
//
//   spool_bench [--benchmark_*]
//
// Arguments: sync mode (0 never, 1 interval of 1 s, 2 always) and, for the cycle, the
// batch size (records per peek and ack; 1 is an ack per record).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "agent/sinks/spool.h"

using namespace agentwall::sinks;
namespace fs = std::filesystem;

namespace {

constexpr size_t kPayload = 600;

struct BenchDir {
  fs::path path;
  BenchDir() {
    const char* base = std::getenv("SPOOL_BENCH_DIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/agentwall-spool-bench-XXXXXX";
    const char* made = mkdtemp(tmpl.data());
    if (!made) std::abort();
    path = made;
  }
  ~BenchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string alert_payload() {
  std::string p = R"({"type":"policy.alert","severity":"high","event_id":"0123456789abcdef",)";
  while (p.size() < kPayload - 2) p.push_back(static_cast<char>('a' + p.size() % 26));
  return p + "\"}";
}

std::unique_ptr<Spool> open_spool(const BenchDir& dir, int64_t sync, benchmark::State& state) {
  SpoolOptions o;
  o.dir = (dir.path / "spool").string();
  o.sync = static_cast<SpoolOptions::Sync>(sync);
  o.sync_interval = std::chrono::milliseconds(1000);
  std::string error;
  auto spool = Spool::open(o, error);
  if (!spool) state.SkipWithError(error.c_str());
  return spool;
}

const char* sync_name(int64_t sync) {
  return sync == 0 ? "never" : sync == 1 ? "interval" : "always";
}

// append() alone; an ack every 4096 records keeps the spool from growing without end.
void BM_Append(benchmark::State& state) {
  BenchDir dir;
  auto spool = open_spool(dir, state.range(0), state);
  if (!spool) return;
  const std::string payload = alert_payload();
  uint64_t seq = 0;
  for (auto _ : state) {
    seq = spool->append(payload);
    if ((seq & 4095) == 0) {
      state.PauseTiming();
      spool->ack(seq);
      state.ResumeTiming();
    }
  }
  if (seq == 0) state.SkipWithError(spool->last_error().c_str());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * int64_t(kPayload));
  state.SetLabel(sync_name(state.range(0)));
}
BENCHMARK(BM_Append)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

// The sink's cycle: every record appended, then every `batch` records one peek of the
// batch and one ack of its last seq (which writes the cursor file).
void BM_AppendPeekAck(benchmark::State& state) {
  BenchDir dir;
  auto spool = open_spool(dir, state.range(0), state);
  if (!spool) return;
  const auto batch = static_cast<size_t>(state.range(1));
  const std::string payload = alert_payload();
  uint64_t delivered = 0;
  size_t pending = 0;
  for (auto _ : state) {
    spool->append(payload);
    if (++pending == batch) {
      auto records = spool->peek(batch, 1 << 20);
      if (records.size() != batch) {
        state.SkipWithError("peek returned a short batch");
        break;
      }
      delivered += records.size();
      spool->ack(records.back().seq);
      pending = 0;
    }
  }
  if (spool->stats().dropped != 0) state.SkipWithError("records were dropped");
  state.counters["delivered"] = static_cast<double>(delivered);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * int64_t(kPayload));
  state.SetLabel(std::string(sync_name(state.range(0))) + " batch " +
                 std::to_string(state.range(1)));
}
BENCHMARK(BM_AppendPeekAck)
    ->ArgsProduct({{0, 1}, {1, 16, 128}})
    ->Args({2, 1})
    ->Args({2, 128})
    ->Unit(benchmark::kMicrosecond);

void BM_Crc32c(benchmark::State& state) {
  const std::string payload = alert_payload();
  uint32_t c = 0;
  for (auto _ : state) {
    c = crc32c(c, payload);
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(state.iterations() * int64_t(kPayload));
}
BENCHMARK(BM_Crc32c);

void BM_Crc32cPortable(benchmark::State& state) {
  const std::string payload = alert_payload();
  uint32_t c = 0;
  for (auto _ : state) {
    c = crc32c_portable(c, payload);
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(state.iterations() * int64_t(kPayload));
}
BENCHMARK(BM_Crc32cPortable);

}  // namespace

BENCHMARK_MAIN();
