#include "agent/protocol/http1/http1.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

namespace agentwall::protocol::http1 {
namespace {

constexpr std::array<std::string_view, 9> kMethods = {
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"};

// How `bytes` compares with a message start: 1 = it is one (enough bytes to tell),
// 0 = a prefix that could still become one, -1 = not one.
int match_request_start(std::string_view b) {
  int best = -1;
  for (std::string_view m : kMethods) {
    const size_t need = m.size() + 2;  // "POST /"
    const size_t n = std::min(b.size(), m.size());
    if (b.substr(0, n) != m.substr(0, n)) continue;
    if (b.size() < need) {
      // The method matched so far; the rest must be SP and a target start.
      if (b.size() > m.size() && b[m.size()] != ' ') continue;
      best = std::max(best, 0);
      continue;
    }
    if (b[m.size()] != ' ') continue;
    const char t = b[m.size() + 1];
    if (t == '/' || t == '*' || t == 'h' || (m == "CONNECT" && std::isalnum(uint8_t(t)))) return 1;
  }
  return best;
}

int match_response_start(std::string_view b) {
  static constexpr std::string_view kProto = "HTTP/1.";
  const size_t n = std::min(b.size(), kProto.size());
  if (b.substr(0, n) != kProto.substr(0, n)) return -1;
  // "HTTP/1.1 200"
  static constexpr size_t kNeed = 12;
  for (size_t i = kProto.size(); i < std::min(b.size(), kNeed); ++i) {
    const char c = b[i];
    const bool ok = i == 8 ? c == ' ' : std::isdigit(uint8_t(c));
    if (!ok) return -1;
  }
  return b.size() >= kNeed ? 1 : 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= 32 || c >= 127 || std::strchr("\"(),/:;<=>?@[\\]{}", c)) return false;
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(uint8_t(c)));
  return out;
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (item.size() == token.size() &&
        std::equal(item.begin(), item.end(), token.begin(),
                   [](char a, char b) { return std::tolower(uint8_t(a)) == b; }))
      return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

Parser::Parser(Kind kind, ParserSink& sink, bool resync) : Parser(kind, sink, resync, Limits{}) {}

Parser::Parser(Kind kind, ParserSink& sink, bool resync, Limits limits)
    : kind_(kind), sink_(sink), limits_(limits), state_(resync ? State::kResync : State::kHead) {}

int Parser::match_request(std::string_view bytes) {
  return match_request_start(bytes);
}

int Parser::match_response(std::string_view bytes) {
  return match_response_start(bytes);
}

bool Parser::in_message() const {
  switch (state_) {
    case State::kHead:
      return !buf_.empty();
    case State::kResync:
    case State::kOpaque:
      return false;
    default:
      return true;
  }
}

void Parser::feed(std::string_view data) {
  while (!data.empty()) {
    const size_t n = step(data);
    data.remove_prefix(n);
    if (state_ == State::kOpaque) return;
  }
}

size_t Parser::step(std::string_view in) {
  switch (state_) {
    case State::kHead:
      return step_head(in);
    case State::kBodyLength: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
      sink_.on_body(in.substr(0, n));
      remaining_ -= n;
      if (remaining_ == 0) end_message();
      return n;
    }
    case State::kBodyUntilClose:
      sink_.on_body(in);
      return in.size();
    case State::kChunkSize: {
      bool done = false;
      const size_t n = step_line(in, buf_, done);
      if (!done) return n;
      std::string_view line = trim(buf_);
      line = line.substr(0, line.find(';'));  // chunk extensions
      line = trim(line);
      uint64_t size = 0;
      const auto r = std::from_chars(line.data(), line.data() + line.size(), size, 16);
      buf_.clear();
      if (line.empty() || r.ec != std::errc() || r.ptr != line.data() + line.size()) {
        end_message(kMsgMalformed);
        lose_sync();
        return n;
      }
      remaining_ = size;
      state_ = size == 0 ? State::kTrailers : State::kChunkData;
      return n;
    }
    case State::kChunkData: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
      sink_.on_body(in.substr(0, n));
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::kChunkDataEnd;
      return n;
    }
    case State::kChunkDataEnd: {
      bool done = false;
      const size_t n = step_line(in, buf_, done);
      if (!done) return n;
      const bool empty = trim(buf_).empty();
      buf_.clear();
      if (!empty) {
        end_message(kMsgMalformed);
        lose_sync();
        return n;
      }
      state_ = State::kChunkSize;
      return n;
    }
    case State::kTrailers: {
      bool done = false;
      const size_t n = step_line(in, buf_, done);
      if (!done) return n;
      const bool empty = trim(buf_).empty();
      buf_.clear();
      if (empty) end_message();
      return n;
    }
    case State::kResync:
      return step_resync(in);
    case State::kOpaque:
      return in.size();
  }
  return in.size();
}

// Appends to `line` up to and including the next LF; `done` when the LF was found.
size_t Parser::step_line(std::string_view in, std::string& line, bool& done) {
  const size_t lf = in.find('\n');
  const size_t n = lf == std::string_view::npos ? in.size() : lf + 1;
  if (line.size() + n > limits_.max_line) {
    // A line longer than any sane chunk-size or trailer line: this is not HTTP framing.
    line.clear();
    end_message(kMsgMalformed);
    lose_sync();
    done = false;
    return n;
  }
  line.append(in.substr(0, n));
  done = lf != std::string_view::npos;
  return n;
}

size_t Parser::step_head(std::string_view in) {
  // Blank lines between messages are allowed (RFC 9112 2.2).
  if (buf_.empty()) {
    size_t skip = 0;
    while (skip < in.size() && (in[skip] == '\r' || in[skip] == '\n')) ++skip;
    if (skip) return skip;
  }
  const size_t old = buf_.size();
  const size_t take = std::min(in.size(), limits_.max_head + 4 - std::min(old, limits_.max_head));
  buf_.append(in.substr(0, take));
  // Search from a little before the old end: the terminator may straddle pieces.
  size_t from = old >= 3 ? old - 3 : 0;
  size_t end = std::string::npos;
  size_t term = 0;
  for (size_t i = buf_.find('\n', from); i != std::string::npos; i = buf_.find('\n', i + 1)) {
    if (i + 1 < buf_.size() && buf_[i + 1] == '\n') {
      end = i;
      term = 2;
      break;
    }
    if (i + 2 < buf_.size() && buf_[i + 1] == '\r' && buf_[i + 2] == '\n') {
      end = i;
      term = 3;
      break;
    }
  }
  if (end == std::string::npos) {
    if (buf_.size() > limits_.max_head) {
      buf_.clear();
      flags_ |= kMsgMalformed;
      lose_sync();
    }
    return take;
  }
  const size_t head_len = end + term;
  const size_t used = head_len - old;
  Head head;
  const bool ok = parse_head(std::string_view(buf_).substr(0, head_len), head);
  buf_.clear();
  if (!ok) {
    lose_sync();
    return used;
  }
  head_seen_ = true;
  sink_.on_head(head);
  start_body(head);
  return used;
}

bool Parser::parse_head(std::string_view text, Head& head) const {
  size_t eol = text.find('\n');
  std::string_view first = trim(text.substr(0, eol));
  head.request = kind_ == Kind::kRequest;
  if (head.request) {
    const size_t sp1 = first.find(' ');
    const size_t sp2 = first.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    const std::string_view method = first.substr(0, sp1);
    const std::string_view version = first.substr(sp2 + 1);
    if (!is_token(method) || !version.starts_with("HTTP/1.") || version.size() != 8) return false;
    head.method = method;
    head.target = trim(first.substr(sp1 + 1, sp2 - sp1 - 1));
    head.minor_version = version[7] - '0';
  } else {
    if (match_response_start(first) != 1) return false;
    head.minor_version = first[7] - '0';
    head.status = (first[9] - '0') * 100 + (first[10] - '0') * 10 + (first[11] - '0');
  }
  text.remove_prefix(eol + 1);
  while (!text.empty()) {
    eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      // Obsolete line folding: continues the previous value.
      if (!head.headers.empty()) head.headers.back().value += " " + std::string(trim(line));
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return false;
    head.headers.push_back(
        {lower(line.substr(0, colon)), std::string(trim(line.substr(colon + 1)))});
  }
  return true;
}

void Parser::start_body(const Head& head) {
  remaining_ = 0;
  if (!head.request) {
    if (head.status == 101) {
      end_message();
      state_ = State::kOpaque;
      return;
    }
    if ((head.status >= 100 && head.status < 200) || head.status == 204 || head.status == 304 ||
        sink_.response_to_head()) {
      end_message();
      return;
    }
  }
  const std::string_view te = header_value(head.headers, "transfer-encoding");
  if (!te.empty() && has_token(te, "chunked")) {
    state_ = State::kChunkSize;
    return;
  }
  const std::string_view cl = header_value(head.headers, "content-length");
  if (!cl.empty()) {
    uint64_t n = 0;
    const std::string_view v = trim(cl);
    const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
    if (r.ec != std::errc() || r.ptr != v.data() + v.size()) {
      end_message(kMsgMalformed);
      lose_sync();
      return;
    }
    remaining_ = n;
    if (n == 0) {
      end_message();
    } else {
      state_ = State::kBodyLength;
    }
    return;
  }
  if (head.request) {
    end_message();  // a request without length has no body
  } else {
    state_ = State::kBodyUntilClose;
  }
}

void Parser::end_message(uint32_t extra_flags) {
  const uint32_t flags = flags_ | extra_flags;
  const bool had_head = head_seen_;
  flags_ = 0;
  head_seen_ = false;
  remaining_ = 0;
  state_ = State::kHead;
  if (had_head) sink_.on_end(flags);
}

void Parser::lose_sync() {
  buf_.clear();
  resync_tail_.clear();
  at_line_start_ = true;
  state_ = State::kResync;
}

size_t Parser::step_resync(std::string_view in) {
  const size_t old = resync_tail_.size();
  resync_tail_.append(in);
  const std::string_view t = resync_tail_;
  for (size_t p = 0; p < t.size(); ++p) {
    const bool line_start = p == 0 ? at_line_start_ : t[p - 1] == '\n';
    if (!line_start) {
      // Jump to the next line start.
      const size_t lf = t.find('\n', p);
      if (lf == std::string_view::npos) break;
      p = lf;
      continue;
    }
    const std::string_view rest = t.substr(p);
    const int m = kind_ == Kind::kRequest ? match_request_start(rest) : match_response_start(rest);
    if (m < 0) continue;
    skipped_ += p;
    sink_.on_skipped(p);
    if (m == 0) {
      // Could be a start: keep it and wait for more bytes.
      resync_tail_.erase(0, p);
      at_line_start_ = true;
      return in.size();
    }
    state_ = State::kHead;
    if (p >= old) {
      resync_tail_.clear();
      return p - old;  // the message starts inside `in`
    }
    buf_ = resync_tail_.substr(p, old - p);  // part of the head was kept from before
    resync_tail_.clear();
    return 0;
  }
  skipped_ += t.size();
  sink_.on_skipped(t.size());
  at_line_start_ = t.back() == '\n';  // `in` was not empty, so neither is `t`
  resync_tail_.clear();
  return in.size();
}

void Parser::gap(uint64_t len) {
  if (len == 0) return;
  switch (state_) {
    case State::kBodyLength:
    case State::kChunkData:
      if (len <= remaining_) {
        // The hole lies inside a body of known length: framing survives.
        flags_ |= kMsgGap;
        remaining_ -= len;
        if (remaining_ == 0) {
          if (state_ == State::kBodyLength) {
            end_message();
          } else {
            state_ = State::kChunkDataEnd;
          }
        }
        return;
      }
      end_message(kMsgGap | kMsgCut);
      lose_sync();
      return;
    case State::kBodyUntilClose:
      flags_ |= kMsgGap;
      return;
    case State::kOpaque:
      return;
    case State::kResync:
      resync_tail_.clear();
      at_line_start_ = true;
      return;
    default:
      if (in_message()) end_message(kMsgGap | kMsgCut);
      lose_sync();
      return;
  }
}

void Parser::finish() {
  if (state_ == State::kBodyUntilClose) {
    end_message();
  } else if (in_message()) {
    end_message(kMsgCut);
  }
  buf_.clear();
}

}  // namespace agentwall::protocol::http1
