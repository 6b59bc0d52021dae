#include "agent/detect/stream_scan.h"

#include <algorithm>

namespace agentwall::detect {

StreamScanner::StreamScanner(const Engine& engine, Source source, StreamScanOptions options)
    : engine_(engine), source_(source), opt_(options) {
  opt_.step = std::max<size_t>(opt_.step, 1);
  opt_.guard = std::min(opt_.guard, opt_.step / 2);
}

std::vector<Finding> StreamScanner::feed(std::string_view piece) {
  std::vector<Finding> out;
  while (!piece.empty()) {
    // Take no more than makes the next step, so the buffer never holds more than
    // overlap + guard + step bytes whatever the piece's size.
    const size_t pending = total_ - reported_to_;
    const size_t room = pending < opt_.step + opt_.guard ? opt_.step + opt_.guard - pending : 0;
    const size_t take = std::max<size_t>(1, std::min(piece.size(), room));
    buf_.append(piece.substr(0, take));
    total_ += take;
    piece.remove_prefix(take);
    if (total_ - reported_to_ >= opt_.step + opt_.guard) scan(false, out);
  }
  return out;
}

std::vector<Finding> StreamScanner::finish() {
  std::vector<Finding> out;
  if (total_ > reported_to_) scan(true, out);
  return out;
}

void StreamScanner::scan(bool final, std::vector<Finding>& out) {
  const size_t end = total_;
  const size_t ready = final ? end : end - opt_.guard;  // report findings ending by here
  ScanResult r = engine_.scan(buf_, source_);
  for (Finding& f : r.findings) {
    if (f.spans.empty()) continue;
    size_t last = 0;
    for (Span& s : f.spans) {
      s.begin += buf_start_;
      s.end += buf_start_;
      last = std::max(last, s.end);
    }
    if (last > ready) continue;  // may still grow: the next window has it whole
    const size_t first = f.spans[0].begin;
    const bool again = std::any_of(seen_.begin(), seen_.end(), [&](const auto& s) {
      return std::get<2>(s) == f.detector && first < std::get<0>(s) && std::get<1>(s) < last;
    });
    if (again) continue;
    seen_.emplace_back(last, first, f.detector);
    out.push_back(std::move(f));
  }
  reported_to_ = ready;
  // Keep `overlap` bytes before the reported end, plus what is not reported yet.
  const size_t keep_from = ready > opt_.overlap ? ready - opt_.overlap : 0;
  if (keep_from > buf_start_) {
    buf_.erase(0, keep_from - buf_start_);
    buf_start_ = keep_from;
  }
  while (!seen_.empty() && std::get<0>(seen_.front()) <= buf_start_) seen_.pop_front();
  // Still bounded if a window is full of findings that start inside the overlap.
  while (seen_.size() > 4096) seen_.pop_front();
}

}  // namespace agentwall::detect
