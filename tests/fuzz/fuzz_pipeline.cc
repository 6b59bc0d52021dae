// The whole pipeline after capture (HTTP stage, LLM stage, adapters, event JSON) on hostile
// bytes. The input is a list of pieces of one connection: a header byte per piece (bit 7:
// direction in, bit 6: a hole before it, bits 0-5: length / 4 ... see below), then its bytes.
// Every event that comes out must be valid JSON.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/output/pipeline.h"

using namespace agentwall;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static output::Pipeline* pipeline = nullptr;
  if (!pipeline) {
    pipeline = new output::Pipeline([](const std::string& line) {
      if (nlohmann::json::parse(line, nullptr, false).is_discarded()) __builtin_trap();
    });
    ProcessInfo p;
    p.key = {1, 1};
    p.comm = "fuzz";
    pipeline->input().on_process(p);
  }
  static uint64_t conn = 0;
  ++conn;
  uint64_t off[2] = {0, 0};
  size_t i = 0;
  while (i < size) {
    const uint8_t h = data[i++];
    const int dir = h >> 7;
    const size_t len = std::min<size_t>(size - i, 1 + (h & 63) * 7);
    if (h & 64) off[dir] += 1 + (h & 7);  // a hole the tracker reports as a gap
    TlsChunk c;
    c.time_ns = 1000 + i;
    c.process = {1, 1};
    c.comm = "fuzz";
    c.conn_id = conn;
    c.dir = static_cast<Direction>(dir);
    c.flags = kChunkLast;
    c.stream_off = off[dir];
    c.call_len = uint32_t(len);
    c.data = std::string_view(reinterpret_cast<const char*>(data + i), len);
    pipeline->input().on_chunk(c);
    off[dir] += len;
    i += len;
  }
  TlsClose close;
  close.conn_id = conn;
  close.process = {1, 1};
  close.bytes_out = off[0];
  close.bytes_in = off[1];
  pipeline->input().on_close(close);
  return 0;
}
