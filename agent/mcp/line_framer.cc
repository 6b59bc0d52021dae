#include "agent/mcp/line_framer.h"

namespace agentwall::mcp {

void LineFramer::drop_partial() {
  stats_.dropped_bytes += partial_.size();
  partial_.clear();
  partial_.shrink_to_fit();  // a line near the cap must not pin its memory
}

void LineFramer::deliver(std::string_view line, const OnLine& on_line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;
  ++stats_.lines;
  on_line(line);
}

void LineFramer::feed(std::string_view bytes, const OnLine& on_line) {
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, nl);
    if (skipping_) {
      stats_.dropped_bytes += piece.size() + (nl == std::string_view::npos ? 0 : 1);
      if (nl == std::string_view::npos) return;
      skipping_ = false;
    } else if (partial_.size() + piece.size() > max_line_) {
      ++stats_.oversized_lines;
      stats_.dropped_bytes += piece.size() + (nl == std::string_view::npos ? 0 : 1);
      drop_partial();
      if (nl == std::string_view::npos) {
        skipping_ = true;
        return;
      }
    } else if (nl == std::string_view::npos) {
      partial_.append(piece);
      return;
    } else if (partial_.empty()) {
      deliver(piece, on_line);  // the common case: no copy
    } else {
      partial_.append(piece);
      deliver(partial_, on_line);
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
}

void LineFramer::gap(uint64_t len) {
  ++stats_.gaps;
  stats_.dropped_bytes += len;
  drop_partial();
  // Whatever follows the hole up to the next newline is the end of a line whose start is
  // gone. (A hole that ends exactly at a line boundary costs the next line too: the bytes
  // cannot tell.)
  skipping_ = true;
}

}  // namespace agentwall::mcp
