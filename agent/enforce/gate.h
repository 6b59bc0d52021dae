// The gate: pairs each write the kernel holds with what the pipeline concluded from its bytes
// and carries the verdict out. The held bytes go through the ordinary pipeline first (the
// ring buffer keeps order), so by the time the hold itself arrives, the request it completes
// has been parsed, inspected and judged by the policy.
//
// Pure apart from the Actuator it is given: unit tests drive it with a recording actuator.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/capture/chunk.h"
#include "agent/enforce/enforcer.h"

namespace agentwall::enforce {

// What the policy decided for a request, before its last bytes are written.
struct RequestVerdict {
  Verdict verdict = Verdict::kAllow;
  bool fail_closed = false;          // on a missed deadline: block instead of allow
  std::string rule;                  // the rule that asked for it
  std::string reason;                // its message
  std::vector<std::string> secrets;  // for redact: the exact values to mask
  std::string body;                  // the request body as the pipeline read it (decoded)
  uint64_t exchange_id = 0;
};

// Where each occurrence of each secret lies in `held`; empty with `why` set when some
// secret cannot be masked there (not in these bytes, or also in bytes sent before).
std::vector<Mask> find_masks(std::string_view held, std::string_view body,
                             const std::vector<std::string>& secrets, std::string& why);

struct GateOptions {
  double deadline_ms = 5;  // from the hold to the verdict; after it, fail open (or closed)
  char fill = '*';
};

struct GateStats {
  uint64_t holds = 0;
  uint64_t allowed = 0;
  uint64_t blocked = 0;
  uint64_t redacted = 0;
  uint64_t killed = 0;
  uint64_t deadline_missed = 0;
  uint64_t failures = 0;  // a verdict that could not be carried out as asked
  // From the kernel's hold to the process resumed, over the last holds (up to 4096).
  double latency_p50_us = 0;
  double latency_p99_us = 0;
  double latency_max_us = 0;
  // Every hold's latency, counted cumulatively into these buckets (upper bounds in µs;
  // the last is +Inf): the Prometheus histogram.
  static constexpr std::array<double, 12> kBucketsUs = {50,   100,   250,   500,    1000, 2500,
                                                        5000, 10000, 25000, 100000, 1e6,  1e300};
  std::array<uint64_t, 12> latency_buckets{};
  double latency_sum_us = 0;
};

class Gate final : public CaptureSink {
 public:
  // `emit` receives one `enforce.action` JSON line per verdict that is not a plain allow.
  using Emit = std::function<void(const std::string& line)>;
  Gate(Actuator& act, Emit emit, GateOptions options = {});

  // Called by the policy while the held bytes go through the pipeline.
  void note_request(uint64_t conn_id, RequestVerdict v);

  void on_chunk(const TlsChunk& chunk) override;
  void on_hold(const TlsHold& hold) override;
  void on_close(const TlsClose& close) override;

  GateStats stats() const;
  // A reloaded policy's deadline applies to the holds after this.
  void set_deadline_ms(double ms) { opt_.deadline_ms = ms; }
  // A write of the connection is held right now (its bytes are being judged).
  bool holding(uint64_t conn_id) const { return held_.count(conn_id) != 0; }

 private:
  struct Held {
    uint64_t stream_off = 0;
    std::string bytes;
  };
  // A write the gate blocked: nothing of it was sent, so the connection's stream stays at
  // its offset. A client may write the same bytes again there (Claude Code 2.1.200 does
  // after BoringSSL's error). The capture already has bytes at that offset and skips them,
  // so the pipeline sees no new request and notes no verdict: without this, the retry
  // would be let through. Any later held write at that offset is blocked the same way.
  struct Refused {
    uint64_t stream_off = 0;
    RequestVerdict verdict;  // the one that blocked it (no secrets kept)
  };
  Outcome carry_out(const TlsHold& h, const RequestVerdict& v, std::string_view held);
  void remember_refusal(const TlsHold& h, const RequestVerdict& v, const Outcome& out);

  Actuator& act_;
  Emit emit_;
  GateOptions opt_;
  std::unordered_map<uint64_t, Held> held_;                // by connection
  std::unordered_map<uint64_t, RequestVerdict> verdicts_;  // by connection
  std::unordered_map<uint64_t, Refused> refused_;          // by connection
  static constexpr size_t kRefusedMax = 65536;             // connections; then forgotten
  GateStats stats_;
  std::vector<double> latencies_;  // ring of the last kLatencies holds' latencies
  size_t next_latency_ = 0;
  static constexpr size_t kLatencies = 4096;
};

}  // namespace agentwall::enforce
