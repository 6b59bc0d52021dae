// Line framing for MCP's stdio transport: newline-delimited JSON-RPC, one message per line.
// Bytes come as the system calls moved them — a line split across reads, several lines in
// one, a hole where the ring buffer lost some — and lines come out whole or not at all.
// Memory is bounded: a line longer than the cap is dropped (and counted), never buffered.
// Pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace agentwall::mcp {

struct LineFramerStats {
  uint64_t lines = 0;            // whole lines handed out
  uint64_t oversized_lines = 0;  // lines longer than the cap, dropped
  uint64_t gaps = 0;             // holes in the byte stream
  uint64_t dropped_bytes = 0;    // bytes of dropped lines (oversized, or cut by a hole)
};

class LineFramer {
 public:
  using OnLine = std::function<void(std::string_view line)>;
  static constexpr size_t kDefaultMaxLine = 4 << 20;

  explicit LineFramer(size_t max_line = kDefaultMaxLine) : max_line_(max_line) {}

  // Hands every line that `bytes` completes to `on_line`, without its "\n" (nor a "\r"
  // before it); empty lines are skipped. The view lives only during the call.
  void feed(std::string_view bytes, const OnLine& on_line);
  // `len` bytes of the stream are missing: the line they cut is dropped, the partial line
  // before them and the rest of it after them.
  void gap(uint64_t len);

  size_t buffered() const { return partial_.size(); }
  const LineFramerStats& stats() const { return stats_; }

 private:
  void drop_partial();
  void deliver(std::string_view line, const OnLine& on_line);

  size_t max_line_;
  std::string partial_;    // the start of a line whose end has not come yet
  bool skipping_ = false;  // inside a line already dropped: wait for its newline
  LineFramerStats stats_;
};

}  // namespace agentwall::mcp
