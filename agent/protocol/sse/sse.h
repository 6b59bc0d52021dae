// Server-Sent Events (text/event-stream) read incrementally, as the WHATWG HTML standard's
// "event stream interpretation" says, with the memory one event may take bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace agentwall::protocol {

struct SseEvent {
  std::string event;  // the "event" field; empty when absent (the standard's "message")
  std::string data;   // "data" lines joined with "\n"
  std::string id;     // the last event ID: an "id" field lasts until another one
};

class SseParser {
 public:
  using OnEvent = std::function<void(const SseEvent&)>;

  // An event whose lines (field names, values and comments, not line ends) add up to more
  // than `max_event_bytes` is dropped and counted; reading resumes after its blank line.
  // Counting lines rather than what is kept makes the outcome the same however the stream is
  // split, and bounds what is buffered.
  explicit SseParser(size_t max_event_bytes = 1 << 20);

  // Reads the next piece of the stream; pieces may be split anywhere, even inside "\r\n".
  // Bytes are passed through as they are: invalid UTF-8 is not replaced.
  void feed(std::string_view piece, const OnEvent& on_event);
  // End of stream. The standard drops an event not closed by a blank line; with
  // `flush_partial` it is dispatched instead (a cut stream still carried it). The parser is
  // then ready for a new stream; the counters keep counting.
  void finish(bool flush_partial, const OnEvent& on_event);

  uint64_t events() const { return events_; }        // dispatched
  uint64_t oversized() const { return oversized_; }  // dropped for size
  size_t buffered() const { return line_.size() + event_.data.size() + event_.event.size(); }

 private:
  void scan(std::string_view bytes, const OnEvent& on_event);
  void end_line(std::string_view tail, const OnEvent& on_event);
  void keep_partial(std::string_view head);
  void on_line(std::string_view line, const OnEvent& on_event);
  void dispatch(const OnEvent& on_event);
  void drop_event(bool inside_line);
  void reset();

  size_t max_event_bytes_;
  SseEvent event_;          // the event being built; `id` persists across events
  std::string line_;        // a line cut by the end of a piece
  size_t event_bytes_ = 0;  // length of the event's complete lines so far
  size_t bom_matched_ = 0;
  bool bom_done_ = false;
  bool skip_lf_ = false;       // a "\r" ended the last line: a "\n" right after belongs to it
  bool discarding_ = false;    // inside an oversized event, until its blank line
  bool discard_line_ = false;  // while discarding: the current line is not empty
  uint64_t events_ = 0;
  uint64_t oversized_ = 0;
};

}  // namespace agentwall::protocol
