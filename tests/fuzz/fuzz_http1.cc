// HTTP/1.1 framing on hostile bytes: byte 0 picks the direction and whether the parser
// starts mid-stream, byte 1 the piece size; a 0xFF byte in the input is read as a hole.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/protocol/http1/http1.h"

namespace {
class Sink final : public agentwall::protocol::http1::ParserSink {
 public:
  size_t bytes = 0;
  bool in_message = false;
  void on_head(const agentwall::protocol::http1::Head& h) override {
    in_message = true;
    bytes += h.headers.size();
  }
  void on_body(std::string_view b) override {
    if (!in_message) __builtin_trap();  // a body outside a message is a parser bug
    bytes += b.size();
  }
  void on_end(uint32_t) override {
    if (!in_message) __builtin_trap();
    in_message = false;
  }
  bool response_to_head() override { return bytes & 1; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using agentwall::protocol::http1::Parser;
  if (size < 2) return 0;
  const auto kind = (data[0] & 1) ? Parser::Kind::kResponse : Parser::Kind::kRequest;
  Sink sink;
  Parser p(kind, sink, data[0] & 2);
  const size_t piece = 1 + data[1] % 64;
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  while (!in.empty()) {
    const size_t hole = in.find('\xff');
    if (hole == 0) {
      p.gap(1 + (in.size() > 1 ? uint8_t(in[1]) : 0));
      in.remove_prefix(in.size() > 1 ? 2 : 1);
      continue;
    }
    const size_t n = std::min({piece, in.size(), hole});
    p.feed(in.substr(0, n));
    in.remove_prefix(n);
    if (p.buffered() > 70 * 1024) __builtin_trap();  // memory must stay bounded
  }
  p.finish();
  if (sink.in_message) __builtin_trap();  // finish() ends every message
  return 0;
}
