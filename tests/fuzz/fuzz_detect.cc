// The detection engine on hostile text: normalisation (UTF-8 decoding forwards and, to find
// a word's start, backwards), every detector, decode-and-rescan, and the streaming scanner
// fed the same text in pieces. The first byte picks the source and where the pieces are
// cut; the rest is the text. What must hold:
// - the normalised text maps back into the input, in order (origin never decreases and
//   ends at the input's size), and every span maps back inside the input;
// - every finding's spans lie inside the text, begin <= end, confidence in [0, 1];
// - the score is 0..100, and 0 when nothing was found;
// - the streaming scanner's spans lie inside the bytes fed, and what it holds stays bounded.
#include <cstdint>
#include <string_view>

#include "agent/detect/engine.h"
#include "agent/detect/normalize.h"
#include "agent/detect/stream_scan.h"

using namespace agentwall::detect;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_findings(const std::vector<Finding>& findings, size_t size) {
  for (const Finding& f : findings) {
    check(f.confidence >= 0 && f.confidence <= 1);
    for (const Span& s : f.spans) check(s.begin <= s.end && s.end <= size);
  }
}

constexpr Source kSources[] = {
    Source::kUser,        Source::kSystem,        Source::kToolResult, Source::kToolDescription,
    Source::kModelOutput, Source::kToolArguments, Source::kUnknown};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const Engine* engine = new Engine();
  const uint8_t head = data[0];
  const Source source = kSources[head % std::size(kSources)];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const Normalized n = normalize(text);
  const std::string_view seen = view(n, text);
  if (n.changed) {
    check(n.origin.size() == seen.size() + 1 && n.origin.back() == text.size());
    for (size_t i = 1; i < n.origin.size(); ++i) check(n.origin[i - 1] <= n.origin[i]);
    const Span all = input_span(n, text, {0, seen.size()});
    check(all.begin <= all.end && all.end <= text.size());
  }

  const ScanResult r = engine->scan(text, source);
  check(r.score >= 0 && r.score <= 100);
  check(!r.findings.empty() || r.score == 0);
  check_findings(r.findings, text.size());

  // The same text in pieces of 1..64 bytes, cut where the head byte says.
  StreamScanner stream(*engine, source);
  const size_t step = 1 + (head >> 2);
  std::vector<Finding> streamed;
  for (size_t at = 0; at < text.size(); at += step) {
    std::vector<Finding> got = stream.feed(text.substr(at, step));
    streamed.insert(streamed.end(), got.begin(), got.end());
    check(stream.buffered() <= 16384);
  }
  std::vector<Finding> last = stream.finish();
  streamed.insert(streamed.end(), last.begin(), last.end());
  check(stream.total() == text.size());
  check_findings(streamed, text.size());
  return 0;
}
