// Fuzzes the HTTP/2 decoder. Input: byte 0 picks the start mode and limits, byte 1 seeds the
// choice of split points and gaps, the rest is one direction's bytes. Checks, besides the
// sanitizers: the same bytes give the same events however they are split, nothing is reported
// after on_error, and buffered() stays bounded.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/protocol/http2/http2.h"

namespace {

using agentwall::protocol::Headers;
using agentwall::protocol::http2::Decoder;

constexpr size_t kHeaderCap = 4096;

// DATA pieces are joined per run so that where the bytes were split does not show.
class Recorder : public agentwall::protocol::http2::FrameSink {
 public:
  std::string log;

  void on_headers(uint32_t id, const Headers& headers, bool end, bool trailers) override {
    event("H", id, end, trailers);
    for (const auto& h : headers) log += h.name + ":" + h.value + "\n";
  }
  void on_headers_unknown(uint32_t id, bool end, bool trailers) override {
    event("U", id, end, trailers);
  }
  void on_data(uint32_t id, std::string_view data, bool end) override {
    check_alive();
    if (!(data_open_ && data_stream_ == id)) {
      if (data.empty() && !end) return;
      log += "D" + std::to_string(id) + " ";
    }
    log += data;
    data_open_ = !end;
    data_stream_ = id;
    if (end) log += " end\n";
  }
  void on_data_lost(uint32_t id, uint64_t len) override {
    event("L", id, false, false);
    log += std::to_string(len) + "\n";
  }
  void on_reset(uint32_t id, uint32_t code) override {
    event("R", id, false, false);
    log += std::to_string(code) + "\n";
  }
  void on_push_promise(uint32_t id, uint32_t promised, const Headers& headers) override {
    event("P", id, false, false);
    log += std::to_string(promised) + "\n";
    for (const auto& h : headers) log += h.name + ":" + h.value + "\n";
  }
  void on_goaway(uint32_t last, uint32_t code) override {
    event("G", last, false, false);
    log += std::to_string(code) + "\n";
  }
  void on_error(std::string_view what) override {
    event("E", 0, false, false);
    log += std::string(what) + "\n";
    dead_ = true;
  }

 private:
  void check_alive() const {
    if (dead_) __builtin_trap();  // nothing may follow on_error
  }
  void event(const char* kind, uint32_t id, bool end, bool trailers) {
    check_alive();
    if (data_open_) log += "\n";
    data_open_ = false;
    log += std::string(kind) + std::to_string(id) + (end ? " end" : "") +
           (trailers ? " trailers" : "") + "\n";
  }
  bool data_open_ = false;
  uint32_t data_stream_ = 0;
  bool dead_ = false;
};

struct Rng {
  uint32_t state;
  uint32_t next() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  }
};

void check_bounded(const Decoder& d) {
  // Partial frame fields, one block's fields (a field can overshoot the cap by up to nghttp2's
  // 64 KiB per field) and the 64 KiB HPACK table.
  if (d.buffered() > kHeaderCap + 3 * 64 * 1024) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static constexpr Decoder::Start kStarts[] = {Decoder::Start::kPreface, Decoder::Start::kFrames,
                                               Decoder::Start::kMidStream};
  const Decoder::Start start = kStarts[data[0] % 3];
  Decoder::Limits limits;
  if (data[0] & 0x4) limits.max_frame = 16384;
  limits.max_header_bytes = (data[0] & 0x8) ? 64 : kHeaderCap;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);

  (void)agentwall::protocol::http2::is_client_preface(bytes);
  (void)agentwall::protocol::http2::looks_like_frame(bytes);

  Recorder whole;
  {
    Decoder d(start, whole, limits);
    d.feed(bytes);
    check_bounded(d);
  }

  Rng rng{0x9e3779b9u ^ (uint32_t{data[1]} * 0x01000193u)};
  Recorder split;
  {
    Decoder d(start, split, limits);
    for (size_t pos = 0; pos < bytes.size();) {
      const size_t n = std::min<size_t>(bytes.size() - pos, rng.next() % 48);
      d.feed(bytes.substr(pos, n));
      pos += n;
      check_bounded(d);
    }
  }
  if (split.log != whole.log) __builtin_trap();  // splitting must not change what is decoded

  Recorder lossy;
  Decoder d(start, lossy, limits);
  for (size_t pos = 0; pos < bytes.size();) {
    const size_t n = std::min<size_t>(bytes.size() - pos, 1 + rng.next() % 64);
    d.feed(bytes.substr(pos, n));
    pos += n;
    if (rng.next() % 8 == 0) {
      const size_t lost = std::min<size_t>(bytes.size() - pos, rng.next() % 24);
      d.gap(lost);
      pos += lost;
    }
    check_bounded(d);
  }
  return 0;
}
