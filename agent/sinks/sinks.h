// Where events go after the pipeline: every configured sink, each with its own filter and
// format, the network ones behind a durable spool and a sender thread that retries with
// backoff. Events get a unique `event_id` here; each sink numbers what it delivers (`seq`)
// so that gaps are visible downstream. Flood control turns alert storms into summaries.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/sinks/format.h"
#include "agent/sinks/uri.h"

namespace agentwall::sinks {

struct FloodOptions {
  // Alerts per rule and process (and per process, any rule) in each window; beyond that
  // they are counted and summarised in one `alert.summary` event when the window ends.
  // 0 = no limit.
  uint32_t per_rule_process = 20;
  uint32_t per_process = 100;
  std::chrono::seconds window{60};
};

struct SinkSetOptions {
  std::string state_dir;  // spools go to STATE_DIR/spool/<sink name>/
  FormatContext context;
  FloodOptions flood;
  // The clock flood windows are measured with, in seconds. Unset: the wall clock. Tests
  // set it so that a window's end does not depend on how fast the machine runs.
  std::function<uint64_t()> clock_s;
};

struct SinkStats {
  std::string name, kind, format;
  uint64_t accepted = 0;     // events that passed the filter
  uint64_t filtered = 0;     // events the filter left out
  uint64_t delivered = 0;    // events the receiver took (or written, for files)
  uint64_t send_errors = 0;  // failed connects, writes and requests (each is retried)
  uint64_t dropped = 0;      // lost: the spool was full, or a file write failed
  uint64_t queue_depth = 0;  // spooled, not yet delivered
  uint64_t spool_bytes = 0;
  bool healthy = true;  // the last attempt succeeded
  std::string last_error;
};

struct FloodStats {
  uint64_t suppressed = 0;  // alerts held back by flood control
  uint64_t summaries = 0;   // alert.summary events emitted
};

class Sink;

class SinkSet {
 public:
  // Opens every sink (files, spools, TLS contexts; connections are made by the senders).
  // Null and `error` when one cannot be opened.
  static std::unique_ptr<SinkSet> open(std::vector<SinkConfig> configs, SinkSetOptions options,
                                       std::string& error);
  ~SinkSet();

  // One event: a JSON object whose first member is "type". Thread-safe.
  void publish(std::string_view line);
  // Flood summaries whose window ended and spool-drop alerts. Call about once a second.
  void tick();
  // SIGUSR1: file sinks close and reopen their file (after logrotate moved it).
  void reopen();
  // Stops taking events and gives the senders up to `timeout` to deliver what is spooled;
  // what is left stays in the spool for the next start.
  void shutdown(std::chrono::milliseconds timeout);

  std::vector<SinkStats> stats() const;
  FloodStats flood_stats() const;
  size_t size() const { return sinks_.size(); }

 private:
  SinkSet() = default;
  void deliver(std::string_view line, std::string_view type, const json* parsed);
  std::string next_event_id();
  bool admit(std::string_view type, const json& event, uint64_t now);
  uint64_t now_s() const;

  SinkSetOptions options_;
  std::vector<std::unique_ptr<Sink>> sinks_;
  mutable std::mutex mu_;
  // event ids: UUIDv7 (time, then a per-process random part and a counter)
  uint64_t id_random_ = 0;
  uint64_t id_counter_ = 0;
  // flood control
  struct Window {
    uint64_t start_s = 0;
    uint32_t count = 0;
    uint64_t suppressed = 0;
    std::string rule, exe;
    uint32_t pid = 0;
  };
  std::unordered_map<std::string, Window> flood_;
  FloodStats flood_stats_;
  bool stopped_ = false;
};

}  // namespace agentwall::sinks
