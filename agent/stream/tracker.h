// The stream stage: turns the chunk stream into per-connection byte streams, one per
// direction, and makes every hole in them visible (ring buffer full, capture cap).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "agent/capture/chunk.h"

namespace agentwall::stream {

enum class GapReason : uint8_t {
  kRingbufFull,  // the kernel could not hand the bytes over in time
  kTruncated,    // the call was longer than the capture cap
};
std::string_view to_string(GapReason r);

struct Connection {
  uint64_t id = 0;
  ProcessKey process;
  std::string comm;
  uint64_t ssl = 0;
  int32_t fd = -1;
  bool pipe = false;   // the stdin or stdout of a watched process, not TLS (kChunkPipe)
  bool plain = false;  // a plaintext TCP connection, not TLS (kChunkPlain)
  Endpoint local;
  Endpoint peer;
  std::string sni;
  uint64_t first_ns = 0;
  uint64_t last_ns = 0;
  uint64_t next_off[2] = {0, 0};   // next expected stream offset per direction
  uint64_t gap_bytes[2] = {0, 0};  // bytes missing per direction
};

// What comes out of the stream stage.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void on_process(const ProcessInfo&) {}
  // `process` is null only when the process was never announced (a recording cut at
  // its start).
  virtual void on_data(const Connection& conn, const ProcessInfo* process,
                       const TlsChunk& chunk) = 0;
  virtual void on_gap(const Connection&, Direction, uint64_t /*offset*/, uint64_t /*len*/,
                      GapReason) {}
  virtual void on_close(const Connection&, const TlsClose&) {}
  // The connection is forgotten without a close (its process exited).
  virtual void on_forget(const Connection&) {}
};

struct TrackerStats {
  uint64_t connections_open = 0;
  uint64_t connections_total = 0;
  uint64_t processes = 0;
  uint64_t gaps = 0;
  uint64_t gap_bytes = 0;
  uint64_t truncated_bytes = 0;
  uint64_t duplicate_bytes = 0;  // bytes delivered twice (a held write retried), skipped
};

class Tracker final : public CaptureSink {
 public:
  explicit Tracker(StreamSink& out) : out_(out) {}

  void on_process(const ProcessInfo& p) override;
  void on_chunk(const TlsChunk& c) override;
  void on_sni(const TlsSni& s) override;
  void on_close(const TlsClose& c) override;
  // Forgets a process that exited, with its connections.
  void on_exit(const ProcessKey& key) override;

  const TrackerStats& stats() const { return stats_; }

 private:
  Connection& connection(uint64_t id, const ProcessKey& process, uint64_t ssl, uint64_t now);

  StreamSink& out_;
  std::unordered_map<uint64_t, Connection> conns_;
  std::unordered_map<ProcessKey, ProcessInfo, ProcessKeyHash> processes_;
  TrackerStats stats_;
};

}  // namespace agentwall::stream
