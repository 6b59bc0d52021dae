// Detection on text that arrives in pieces (SSE deltas, stdio chunks): findings come out as
// soon as they are whole, wherever the pieces were cut, with spans into the whole stream,
// each once, and memory stays bounded whatever the stream's length.
//
// How: the engine scans overlapping windows. A window starts `overlap` bytes before the
// previous window's reported end, so a match up to `overlap` bytes long that straddles a
// boundary is inside one window whole; findings ending within `guard` bytes of a window's end
// wait for the next window (the match may still be growing: a key cut mid-way). Matches
// longer than `overlap` may be reported in part or missed; the defaults cover every secret
// format and rule the engine has.
#pragma once

#include <deque>
#include <string>
#include <tuple>
#include <vector>

#include "agent/detect/engine.h"

namespace agentwall::detect {

struct StreamScanOptions {
  size_t step = 4096;     // scan once this many new bytes have come
  size_t overlap = 2048;  // bytes of the previous window scanned again
  size_t guard = 512;     // findings ending this close to the window's end wait
};

// For a model's streamed answer (the LLM stage): a window each 16 KiB, so scanning as it
// streams costs about 1.1x scanning the answer whole (detect_bench BM_AnswerStreamed against
// BM_AnswerWhole; the default 4 KiB step costs 1.55x), and a finding comes out at most 16 KiB
// of answer after it was streamed.
inline constexpr StreamScanOptions kAnswerScanOptions{16384, 2048, 512};

class StreamScanner {
 public:
  StreamScanner(const Engine& engine, Source source, StreamScanOptions options = {});

  // Appends `piece`; returns the findings completed by it (spans: offsets in the stream).
  std::vector<Finding> feed(std::string_view piece);
  // The stream ended: what is left.
  std::vector<Finding> finish();

  size_t total() const { return total_; }          // bytes fed
  size_t buffered() const { return buf_.size(); }  // bytes held (bounded)

 private:
  void scan(bool final, std::vector<Finding>& out);

  const Engine& engine_;
  Source source_;
  StreamScanOptions opt_;
  std::string buf_;         // stream bytes [buf_start_, total_)
  size_t buf_start_ = 0;    // stream offset of buf_[0]
  size_t total_ = 0;        // bytes fed
  size_t reported_to_ = 0;  // findings ending at or before this were reported
  // (end, begin, detector) of findings reported lately: one the overlap finds again (same
  // detector, overlapping span) is not reported twice; entries behind the window are dropped.
  std::deque<std::tuple<size_t, size_t, std::string>> seen_;
};

}  // namespace agentwall::detect
