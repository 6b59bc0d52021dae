// Prints the stream stage's output as JSON lines: the `agentwall sniff` and
// `agentwall replay` view (docs/EVENTS.md, tls.* events).
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "agent/stream/tracker.h"

namespace agentwall::output {

using SniffFilter = ProcessSelector;

class SniffPrinter final : public stream::StreamSink {
 public:
  // Writes to `out` (not owned), one flushed line per event.
  SniffPrinter(std::FILE* out, SniffFilter filter) : out_(out), filter_(std::move(filter)) {}

  void on_data(const stream::Connection& conn, const ProcessInfo* process,
               const TlsChunk& chunk) override;
  void on_gap(const stream::Connection& conn, Direction dir, uint64_t offset, uint64_t len,
              stream::GapReason reason) override;
  void on_close(const stream::Connection& conn, const TlsClose& close) override;

  uint64_t lines() const { return lines_; }
  bool write_failed() const { return write_failed_; }

 private:
  bool selected(const ProcessKey& key, std::string_view comm) const;
  void emit(const std::string& line);

  std::FILE* out_;
  SniffFilter filter_;
  uint64_t lines_ = 0;
  bool write_failed_ = false;
};

// The JSON of one tls.data event (exposed for tests).
std::string tls_data_json(const stream::Connection& conn, const ProcessInfo* process,
                          const TlsChunk& chunk);

}  // namespace agentwall::output
