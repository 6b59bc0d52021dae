#include "agent/protocol/sse/lines.h"

#include <cstring>

namespace agentwall::protocol {

void LineSplitter::feed(std::string_view piece, const OnLine& on_line) {
  while (!piece.empty()) {
    const void* hit = std::memchr(piece.data(), '\n', piece.size());
    if (!hit) {
      if (discarding_) return;
      if (line_.size() + piece.size() > max_line_bytes_ + 1) {  // + 1: a "\r" still to strip
        ++oversized_;
        line_.clear();
        discarding_ = true;
        return;
      }
      line_.append(piece);
      return;
    }
    const size_t end = static_cast<const char*>(hit) - piece.data();
    if (discarding_) {
      discarding_ = false;
    } else if (line_.empty()) {
      emit(piece.substr(0, end), on_line);
    } else {
      line_.append(piece.substr(0, end));
      emit(line_, on_line);
      line_.clear();
    }
    piece.remove_prefix(end + 1);
  }
}

void LineSplitter::finish(const OnLine& on_line) {
  if (!discarding_) emit(line_, on_line);
  line_.clear();
  discarding_ = false;
}

void LineSplitter::emit(std::string_view line, const OnLine& on_line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;
  if (line.size() > max_line_bytes_) {
    ++oversized_;
    return;
  }
  ++lines_;
  on_line(line);
}

}  // namespace agentwall::protocol
