// Newline-delimited streams (application/x-ndjson, as Ollama sends) cut into lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace agentwall::protocol {

class LineSplitter {
 public:
  using OnLine = std::function<void(std::string_view line)>;

  // A line longer than `max_line_bytes` is dropped and counted; reading resumes after it.
  explicit LineSplitter(size_t max_line_bytes = 1 << 20) : max_line_bytes_(max_line_bytes) {}

  // Lines end at "\n"; a "\r" before it is removed. Empty lines are skipped.
  void feed(std::string_view piece, const OnLine& on_line);
  // End of stream: a last line without "\n" is still a line (JSON Lines allows it).
  void finish(const OnLine& on_line);

  uint64_t lines() const { return lines_; }
  uint64_t oversized() const { return oversized_; }
  size_t buffered() const { return line_.size(); }

 private:
  void emit(std::string_view line, const OnLine& on_line);

  size_t max_line_bytes_;
  std::string line_;         // a line cut by the end of a piece
  bool discarding_ = false;  // inside an oversized line, until its "\n"
  uint64_t lines_ = 0;
  uint64_t oversized_ = 0;
};

}  // namespace agentwall::protocol
