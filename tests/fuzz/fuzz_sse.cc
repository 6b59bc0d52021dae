// SSE and NDJSON framing on hostile bytes. Byte 0 picks the piece size, the event size limit
// and whether a cut event is flushed; the rest is the stream. Whatever the cuts, the events
// must be those of the whole stream, and no event or buffer may pass its limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/protocol/sse/lines.h"
#include "agent/protocol/sse/sse.h"

namespace {

using agentwall::protocol::LineSplitter;
using agentwall::protocol::SseEvent;
using agentwall::protocol::SseParser;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Events flattened into one string, so two runs compare with ==.
std::string parse_sse(std::string_view stream, size_t piece, size_t max_event, bool flush) {
  SseParser parser(max_event);
  std::string seen;
  const auto collect = [&](const SseEvent& e) {
    // An event's data and name came from its lines, which together fit the limit.
    check(e.data.size() + e.event.size() <= max_event);
    seen += e.event + '\0' + e.data + '\0' + e.id + '\1';
  };
  for (size_t at = 0; at < stream.size(); at += piece) {
    parser.feed(stream.substr(at, piece), collect);
    check(parser.buffered() <= max_event);
  }
  parser.finish(flush, collect);
  check(parser.buffered() == 0);
  return seen + std::to_string(parser.oversized());
}

std::string split_lines(std::string_view stream, size_t piece, size_t max_line) {
  LineSplitter lines(max_line);
  std::string seen;
  const auto collect = [&](std::string_view line) {
    check(!line.empty() && line.size() <= max_line);
    check(line.find('\n') == std::string_view::npos);
    seen.append(line).push_back('\n');
  };
  for (size_t at = 0; at < stream.size(); at += piece) {
    lines.feed(stream.substr(at, piece), collect);
    check(lines.buffered() <= max_line + 1);
  }
  lines.finish(collect);
  return seen + std::to_string(lines.oversized());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t knobs = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t piece = 1 + (knobs & 0x1f);
  const size_t max_event = (knobs & 0x20) ? 64 : 1 << 20;
  const bool flush = knobs & 0x40;
  check(parse_sse(stream, piece, max_event, flush) ==
        parse_sse(stream, stream.size() + 1, max_event, flush));
  check(split_lines(stream, piece, max_event) == split_lines(stream, stream.size() + 1, max_event));
  return 0;
}
