#include "agent/protocol/sse/sse.h"

#include <algorithm>
#include <cstring>

namespace agentwall::protocol {

namespace {

constexpr char kBom[] = "\xEF\xBB\xBF";

// Offset of the first `c` in `bytes` at or after `from`, or bytes.size().
size_t find_byte(std::string_view bytes, size_t from, char c) {
  if (from >= bytes.size()) return bytes.size();  // memchr must not see a null pointer
  const void* hit = std::memchr(bytes.data() + from, c, bytes.size() - from);
  return hit ? static_cast<const char*>(hit) - bytes.data() : bytes.size();
}

}  // namespace

SseParser::SseParser(size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

void SseParser::feed(std::string_view piece, const OnEvent& on_event) {
  if (!bom_done_) {
    while (bom_matched_ < 3 && !piece.empty() && piece.front() == kBom[bom_matched_]) {
      ++bom_matched_;
      piece.remove_prefix(1);
    }
    if (bom_matched_ < 3 && piece.empty()) return;  // may still turn out to be a BOM
    bom_done_ = true;
    // The start of a BOM that did not finish as one is text.
    if (bom_matched_ < 3) scan(std::string_view(kBom, bom_matched_), on_event);
  }
  scan(piece, on_event);
}

void SseParser::finish(bool flush_partial, const OnEvent& on_event) {
  if (flush_partial) {
    if (!bom_done_) scan(std::string_view(kBom, bom_matched_), on_event);
    if (!discarding_) {
      if (!line_.empty()) on_line(line_, on_event);
      dispatch(on_event);
    }
  }
  reset();
}

// Lines end at "\r\n", "\n" or "\r". Each terminator's next position is found with memchr
// and kept until passed, so a piece is scanned once per terminator, not once per line.
void SseParser::scan(std::string_view bytes, const OnEvent& on_event) {
  size_t pos = 0;
  if (skip_lf_ && !bytes.empty()) {
    skip_lf_ = false;
    if (bytes.front() == '\n') pos = 1;
  }
  size_t lf = find_byte(bytes, pos, '\n');
  size_t cr = find_byte(bytes, pos, '\r');
  while (pos < bytes.size()) {
    if (lf < pos) lf = find_byte(bytes, pos, '\n');
    if (cr < pos) cr = find_byte(bytes, pos, '\r');
    const size_t eol = std::min(lf, cr);
    if (eol == bytes.size()) {
      keep_partial(bytes.substr(pos));
      return;
    }
    end_line(bytes.substr(pos, eol - pos), on_event);
    pos = eol + 1;
    if (eol == cr) {
      if (pos == bytes.size()) {
        skip_lf_ = true;
      } else if (bytes[pos] == '\n') {
        ++pos;
      }
    }
  }
}

// `tail` is the rest of a line whose start may be in line_.
void SseParser::end_line(std::string_view tail, const OnEvent& on_event) {
  if (discarding_) {
    if (tail.empty() && !discard_line_) discarding_ = false;  // the dropped event's blank line
    discard_line_ = false;
    return;
  }
  const size_t length = line_.size() + tail.size();
  if (event_bytes_ + length > max_event_bytes_) {
    drop_event(false);
    return;
  }
  event_bytes_ += length;
  if (line_.empty()) {
    on_line(tail, on_event);
  } else {
    line_.append(tail);
    on_line(line_, on_event);
    line_.clear();
  }
}

void SseParser::keep_partial(std::string_view head) {
  if (discarding_) {
    discard_line_ = true;
    return;
  }
  if (event_bytes_ + line_.size() + head.size() > max_event_bytes_) {
    drop_event(true);
    return;
  }
  line_.append(head);
}

void SseParser::on_line(std::string_view line, const OnEvent& on_event) {
  if (line.empty()) {
    dispatch(on_event);
    return;
  }
  if (line.front() == ':') return;  // comment, e.g. a keep-alive
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    event_.data.append(value);
    event_.data.push_back('\n');
  } else if (field == "event") {
    event_.event.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) event_.id.assign(value);
  }
  // "retry" only matters to a reconnecting client; unknown fields are ignored by the standard.
}

void SseParser::dispatch(const OnEvent& on_event) {
  event_bytes_ = 0;
  if (event_.data.empty()) {  // no data lines: nothing to deliver, as the standard says
    event_.event.clear();
    return;
  }
  event_.data.pop_back();  // the "\n" after the last data line
  ++events_;
  on_event(event_);
  event_.data.clear();
  event_.event.clear();
}

void SseParser::drop_event(bool inside_line) {
  ++oversized_;
  line_.clear();
  event_.data.clear();
  event_.event.clear();
  event_bytes_ = 0;
  discarding_ = true;
  discard_line_ = inside_line;
}

void SseParser::reset() {
  event_ = {};
  line_.clear();
  event_bytes_ = 0;
  bom_matched_ = 0;
  bom_done_ = false;
  skip_lf_ = false;
  discarding_ = false;
  discard_line_ = false;
}

}  // namespace agentwall::protocol
