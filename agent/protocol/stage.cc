#include "agent/protocol/stage.h"

#include <charconv>
#include <deque>
#include <map>
#include <vector>

#include "agent/protocol/http1/http1.h"
#include "agent/protocol/http2/http2.h"

namespace agentwall::protocol {
namespace {

enum class Proto : uint8_t { kUnknown, kHttp1, kHttp2, kOther };

constexpr size_t kDetectMax = 64;  // undecided after this many bytes: not HTTP

// The body of one message: decoding, cap, accounting.
struct Body {
  std::unique_ptr<ContentDecoder> decoder;
  bool started = false;
};

struct Ex {
  HttpExchange x;
  Body req_body;
  Body resp_body;
  bool request_done = false;
};

}  // namespace

struct HttpStage::Conn {
  HttpStage* stage = nullptr;
  stream::Connection conn;
  ProcessInfo process;
  Proto proto = Proto::kUnknown;
  std::string detect[2];
  // The pieces held while the protocol is unknown, with their times, to replay them as
  // they came.
  std::vector<std::pair<uint64_t, size_t>> held[2];  // (time, length) per piece of detect[d]
  bool mid_stream = false;
  uint64_t now = 0;
  size_t open = 0;  // exchanges alive

  // HTTP/1.1: requests in order, the oldest waits for the next response.
  struct ReqSink;
  struct RespSink;
  std::unique_ptr<ReqSink> h1_req_sink;
  std::unique_ptr<RespSink> h1_resp_sink;
  std::unique_ptr<http1::Parser> h1_req;
  std::unique_ptr<http1::Parser> h1_resp;
  std::unique_ptr<Ex> h1_building;             // request being read
  std::deque<std::unique_ptr<Ex>> h1_waiting;  // requests awaiting their response
  std::unique_ptr<Ex> h1_answering;            // response being read
  bool h1_interim = false;                     // the head being read is a 1xx
  uint64_t h1_start[2] = {0, 0};               // when the message being read began, per direction

  // HTTP/2: one decoder per direction, exchanges by stream id.
  struct H2Sink;
  std::unique_ptr<H2Sink> h2_sink[2];
  std::unique_ptr<http2::Decoder> h2[2];
  std::map<uint32_t, std::unique_ptr<Ex>> h2_streams;

  std::unique_ptr<Ex> new_exchange(HttpVersion v, uint32_t stream_id) {
    auto e = std::make_unique<Ex>();
    e->x.id = stage->next_exchange_id_++;
    e->x.version = v;
    e->x.stream_id = stream_id;
    ++stage->stats_.exchanges;
    ++open;
    return e;
  }

  void body(Ex& e, bool response, std::string_view wire) {
    HttpMessage& m = response ? e.x.response : e.x.request;
    Body& b = response ? e.resp_body : e.req_body;
    if (!b.started) {
      b.started = true;
      // Room for the whole body at once when its length is known (and within the cap).
      const std::string_view cl = header_value(m.headers, "content-length");
      uint64_t len = 0;
      if (!cl.empty() && std::from_chars(cl.data(), cl.data() + cl.size(), len).ec == std::errc())
        m.body.reserve(static_cast<size_t>(std::min<uint64_t>(len, stage->limits_.max_body)));
      m.content_encoding = header_value(m.headers, "content-encoding");
      if (!m.content_encoding.empty()) {
        b.decoder = std::make_unique<ContentDecoder>(m.content_encoding, stage->limits_.decode);
        if (b.decoder->identity()) b.decoder.reset();
      }
    }
    if (!m.first_ns) m.first_ns = now;
    m.last_ns = now;
    m.wire_body_bytes += wire.size();
    if (!b.decoder) {
      take_decoded(e, response, wire);
      return;
    }
    if (b.decoder->status() != ContentDecoder::Status::kOk) return;
    std::string out;
    const auto st = b.decoder->feed(wire, out);
    take_decoded(e, response, out);
    note_decoder(m, st);
  }

  void note_decoder(HttpMessage& m, ContentDecoder::Status st) {
    using S = ContentDecoder::Status;
    if (st == S::kOk) return;
    const uint32_t bit = st == S::kBombLimit ? kMsgBombLimit : kMsgDecodeError;
    if (!(m.flags & bit)) {
      m.flags |= bit;
      if (bit == kMsgBombLimit) {
        ++stage->stats_.bomb_limited;
      } else {
        ++stage->stats_.decode_errors;
      }
    }
  }

  void take_decoded(Ex& e, bool response, std::string_view decoded) {
    if (decoded.empty()) return;
    HttpMessage& m = response ? e.x.response : e.x.request;
    m.decoded_body_bytes += decoded.size();
    const bool store = !response || e.x.store_response_body;
    if (store) {
      const size_t room =
          stage->limits_.max_body - std::min(stage->limits_.max_body, m.body.size());
      if (decoded.size() > room) {
        if (!(m.flags & kMsgBodyCapped)) ++stage->stats_.body_capped;
        m.flags |= kMsgBodyCapped;
      }
      m.body.append(decoded.substr(0, std::min(room, decoded.size())));
    }
    if (response) stage->out_.on_response_body(conn, process, e.x, decoded);
  }

  void end_body(Ex& e, bool response) {
    HttpMessage& m = response ? e.x.response : e.x.request;
    Body& b = response ? e.resp_body : e.req_body;
    if (!b.decoder || b.decoder->status() != ContentDecoder::Status::kOk) return;
    std::string out;
    const auto st = b.decoder->finish(out);
    take_decoded(e, response, out);
    // A body cut short cannot be finished: that is the cut, not a decoding error.
    if (!(m.flags & (kMsgCut | kMsgGap))) note_decoder(m, st);
  }

  void request_complete(Ex& e, uint32_t flags) {
    e.x.request.flags |= flags;
    end_body(e, false);
    e.x.request.complete = !(e.x.request.flags & (kMsgCut | kMsgGap | kMsgStartMissed));
    if (!e.x.request.last_ns) e.x.request.last_ns = now;
    e.request_done = true;
    stage->out_.on_request(conn, process, e.x);
  }

  void response_head(Ex& e) {
    e.x.has_response = true;
    if (!e.x.response.first_ns) e.x.response.first_ns = now;
    e.x.response.last_ns = now;
    stage->out_.on_response_head(conn, process, e.x);
  }

  void finish_exchange(std::unique_ptr<Ex> e, uint32_t response_flags) {
    if (!e) return;
    if (e->x.has_request && !e->request_done) request_complete(*e, kMsgCut);
    if (e->x.has_response) {
      e->x.response.flags |= response_flags;
      end_body(*e, true);
      e->x.response.complete =
          !(e->x.response.flags & (kMsgCut | kMsgGap | kMsgStartMissed | kMsgReset));
      if (!e->x.response.last_ns) e->x.response.last_ns = now;
    }
    stage->out_.on_exchange(conn, process, e->x);
    --open;
  }

  // ---- HTTP/1.1 ----
  struct ReqSink final : http1::ParserSink {
    Conn& c;
    explicit ReqSink(Conn& conn) : c(conn) {}
    void on_head(const http1::Head& h) override {
      auto e = c.new_exchange(HttpVersion::kHttp1, 0);
      e->x.has_request = true;
      HttpMessage& m = e->x.request;
      m.method = h.method;
      m.path = h.target;
      m.headers = h.headers;
      m.authority = header_value(h.headers, "host");
      m.first_ns = c.h1_start[0] ? c.h1_start[0] : c.now;
      m.last_ns = c.now;
      c.h1_building = std::move(e);
    }
    void on_body(std::string_view b) override {
      if (c.h1_building) c.body(*c.h1_building, false, b);
    }
    void on_end(uint32_t flags) override {
      if (!c.h1_building) return;
      c.h1_building->x.request.last_ns = c.now;
      c.request_complete(*c.h1_building, flags);
      c.h1_waiting.push_back(std::move(c.h1_building));
      // A client that never reads its responses cannot grow the queue without bound.
      if (c.h1_waiting.size() > c.stage->limits_.max_exchanges_per_conn) {
        auto oldest = std::move(c.h1_waiting.front());
        c.h1_waiting.pop_front();
        c.finish_exchange(std::move(oldest), 0);
      }
    }
  };

  struct RespSink final : http1::ParserSink {
    Conn& c;
    explicit RespSink(Conn& conn) : c(conn) {}
    bool response_to_head() override {
      return !c.h1_waiting.empty() && c.h1_waiting.front()->x.request.method == "HEAD";
    }
    void on_head(const http1::Head& h) override {
      c.h1_interim = h.status >= 100 && h.status < 200 && h.status != 101;
      if (c.h1_interim) return;  // 100 Continue and friends: the real answer follows
      std::unique_ptr<Ex> e;
      if (!c.h1_waiting.empty()) {
        e = std::move(c.h1_waiting.front());
        c.h1_waiting.pop_front();
      } else if (c.h1_building) {
        // Answered before the request body ended (e.g. an early 413): pair it anyway.
        e = std::move(c.h1_building);
        c.request_complete(*e, kMsgCut);
      } else {
        e = c.new_exchange(HttpVersion::kHttp1, 0);
        e->x.response.flags |= kMsgStartMissed;  // its request came before the agent
      }
      HttpMessage& m = e->x.response;
      m.status = h.status;
      m.headers = h.headers;
      m.first_ns = c.h1_start[1] ? c.h1_start[1] : c.now;
      c.h1_answering = std::move(e);
      c.response_head(*c.h1_answering);
    }
    void on_body(std::string_view b) override {
      if (c.h1_answering) c.body(*c.h1_answering, true, b);
    }
    void on_end(uint32_t flags) override {
      if (c.h1_interim) {
        c.h1_interim = false;
        return;
      }
      if (c.h1_answering) c.h1_answering->x.response.last_ns = c.now;
      c.finish_exchange(std::move(c.h1_answering), flags);
    }
    void on_skipped(uint64_t) override {}
  };

  // ---- HTTP/2 ----
  struct H2Sink final : http2::FrameSink {
    Conn& c;
    bool response;  // this decoder reads the server's direction
    H2Sink(Conn& conn, bool resp) : c(conn), response(resp) {}

    Ex* stream(uint32_t id, bool create) {
      auto it = c.h2_streams.find(id);
      if (it != c.h2_streams.end()) return it->second.get();
      if (!create) return nullptr;
      if (c.h2_streams.size() >= c.stage->limits_.max_exchanges_per_conn) {
        // Bounded: the oldest stream is given up as cut.
        auto oldest = c.h2_streams.begin();
        auto e = std::move(oldest->second);
        c.h2_streams.erase(oldest);
        c.finish_exchange(std::move(e), kMsgCut);
      }
      auto e = c.new_exchange(HttpVersion::kHttp2, id);
      Ex* raw = e.get();
      c.h2_streams.emplace(id, std::move(e));
      return raw;
    }

    void end_stream(uint32_t id, uint32_t flags) {
      auto it = c.h2_streams.find(id);
      if (it == c.h2_streams.end()) return;
      auto e = std::move(it->second);
      c.h2_streams.erase(it);
      c.finish_exchange(std::move(e), flags);
    }

    void on_headers(uint32_t id, const Headers& headers, bool end, bool) override {
      Ex* e = stream(id, true);
      if (!response) {
        if (e->x.has_request) {
          if (end && !e->request_done) c.request_complete(*e, 0);  // trailers end it
          return;
        }
        e->x.has_request = true;
        HttpMessage& m = e->x.request;
        for (const Header& h : headers) {
          if (h.name == ":method") {
            m.method = h.value;
          } else if (h.name == ":path") {
            m.path = h.value;
          } else if (h.name == ":authority") {
            m.authority = h.value;
          } else if (!h.name.starts_with(':')) {
            m.headers.push_back(h);
          }
        }
        if (m.authority.empty()) m.authority = header_value(m.headers, "host");
        m.first_ns = m.last_ns = c.now;
        if (end) c.request_complete(*e, 0);
        return;
      }
      if (e->x.has_response) {
        if (end) end_stream(id, 0);  // trailers
        return;
      }
      int status = 0;
      for (const Header& h : headers) {
        if (h.name == ":status") status = std::atoi(h.value.c_str());
      }
      if (status >= 100 && status < 200) return;  // interim
      if (!e->x.has_request) e->x.response.flags |= kMsgStartMissed;
      if (e->x.has_request && !e->request_done) c.request_complete(*e, 0);
      e->x.response.status = status;
      for (const Header& h : headers) {
        if (!h.name.starts_with(':')) e->x.response.headers.push_back(h);
      }
      c.response_head(*e);
      if (end) end_stream(id, 0);
    }

    void on_headers_unknown(uint32_t id, bool end, bool) override {
      ++c.stage->stats_.hpack_lost;
      Ex* e = stream(id, true);
      if (!response) {
        if (e->x.has_request) return;
        e->x.has_request = true;
        e->x.request.flags |= kMsgHeadersUnknown;
        e->x.request.first_ns = c.now;
        if (end) c.request_complete(*e, 0);
        return;
      }
      if (e->x.has_response) {
        if (end) end_stream(id, 0);
        return;
      }
      if (e->x.has_request && !e->request_done) c.request_complete(*e, 0);
      e->x.response.flags |= kMsgHeadersUnknown;
      c.response_head(*e);
      if (end) end_stream(id, 0);
    }

    void on_data(uint32_t id, std::string_view data, bool end) override {
      Ex* e = stream(id, false);
      if (!e) {
        // DATA of a stream whose headers came before the agent: keep it, marked.
        e = stream(id, true);
        if (response) {
          e->x.response.flags |= kMsgStartMissed;
          c.response_head(*e);
        } else {
          e->x.has_request = true;
          e->x.request.flags |= kMsgStartMissed;
        }
      }
      if (!response) {
        if (e->request_done) return;  // DATA after END_STREAM: protocol error, ignore
        c.body(*e, false, data);
        if (end) c.request_complete(*e, 0);
        return;
      }
      if (!e->x.has_response) {
        e->x.response.flags |= kMsgHeadersUnknown;
        c.response_head(*e);
      }
      c.body(*e, true, data);
      if (end) end_stream(id, 0);
    }

    void on_data_lost(uint32_t id, uint64_t) override {
      if (Ex* e = stream(id, false)) (response ? e->x.response : e->x.request).flags |= kMsgGap;
    }
    void on_reset(uint32_t id, uint32_t) override { end_stream(id, kMsgReset); }
    void on_goaway(uint32_t, uint32_t) override {}
    void on_error(std::string_view) override { ++c.stage->stats_.malformed; }
  };

  void choose(Direction dir) {
    const std::string& out = detect[0];
    const std::string& in = detect[1];
    if (dir == Direction::kOut || !out.empty()) {
      if (out.size() >= 24 && http2::is_client_preface(out)) return start(Proto::kHttp2, false);
      const bool maybe_preface = http2::is_client_preface(out);
      const int req = http1::Parser::match_request(out);
      if (req == 1) return start(Proto::kHttp1, false);
      if (!maybe_preface && req < 0) {
        if (out.size() >= 9 && http2::looks_like_frame(out)) return start(Proto::kHttp2, true);
        if (out.size() >= 9 || http1::Parser::match_response(out) == 1)
          return start(Proto::kOther, false);  // a server's side, or not HTTP
      }
      if (out.size() >= kDetectMax) return start(Proto::kOther, false);
      return;
    }
    // The server spoke first: the agent came in after the request.
    const int resp = http1::Parser::match_response(in);
    if (resp == 1) return start(Proto::kHttp1, true);
    if (resp < 0) {
      if (in.size() >= 9 && http2::looks_like_frame(in)) return start(Proto::kHttp2, true);
      if (in.size() >= 9) return start(Proto::kOther, false);
    }
    if (in.size() >= kDetectMax) start(Proto::kOther, false);
  }

  void start(Proto p, bool mid) {
    proto = p;
    mid_stream = mid;
    HttpStageStats& s = stage->stats_;
    if (p == Proto::kHttp1) {
      ++s.connections_http1;
      h1_req_sink = std::make_unique<ReqSink>(*this);
      h1_resp_sink = std::make_unique<RespSink>(*this);
      h1_req = std::make_unique<http1::Parser>(http1::Parser::Kind::kRequest, *h1_req_sink, mid);
      h1_resp = std::make_unique<http1::Parser>(http1::Parser::Kind::kResponse, *h1_resp_sink);
    } else if (p == Proto::kHttp2) {
      ++s.connections_http2;
      for (int d = 0; d < 2; ++d) {
        h2_sink[d] = std::make_unique<H2Sink>(*this, d == 1);
        const auto start = mid      ? http2::Decoder::Start::kMidStream
                           : d == 0 ? http2::Decoder::Start::kPreface
                                    : http2::Decoder::Start::kFrames;
        h2[d] = std::make_unique<http2::Decoder>(start, *h2_sink[d]);
      }
    } else {
      ++s.connections_other;
    }
    // Replay what was held while deciding, out first: requests precede their answers.
    const uint64_t current = now;
    for (int d = 0; d < 2; ++d) {
      const std::string bytes = std::move(detect[d]);
      const auto pieces = std::move(held[d]);
      detect[d].clear();
      held[d].clear();
      size_t off = 0;
      for (const auto& [time, len] : pieces) {
        now = time;
        feed(static_cast<Direction>(d), std::string_view(bytes).substr(off, len));
        off += len;
      }
    }
    now = current;
  }

  void feed(Direction dir, std::string_view data) {
    const int d = static_cast<int>(dir);
    switch (proto) {
      case Proto::kUnknown:
        // Held whole (one chunk is at most 16 KiB): it is replayed once the protocol is known.
        detect[d].append(data);
        held[d].emplace_back(now, data.size());
        choose(dir);
        return;
      case Proto::kHttp1: {
        http1::Parser& p = dir == Direction::kOut ? *h1_req : *h1_resp;
        // A message's time is when its first byte came, not when its head was complete.
        if (!p.in_message()) h1_start[d] = now;
        p.feed(data);
        return;
      }
      case Proto::kHttp2:
        h2[d]->feed(data);
        return;
      case Proto::kOther:
        return;
    }
  }

  void gap(Direction dir, uint64_t len) {
    const int d = static_cast<int>(dir);
    switch (proto) {
      case Proto::kUnknown:
        // Lost before the protocol was known: decide on what follows, as mid-stream.
        detect[d].clear();
        held[d].clear();
        return;
      case Proto::kHttp1:
        (dir == Direction::kOut ? h1_req : h1_resp)->gap(len);
        return;
      case Proto::kHttp2:
        h2[d]->gap(len);
        return;
      case Proto::kOther:
        return;
    }
  }

  void end() {
    if (proto == Proto::kHttp1) {
      h1_req->finish();
      h1_resp->finish();
      if (h1_building) {
        auto e = std::move(h1_building);
        request_complete(*e, kMsgCut);
        finish_exchange(std::move(e), kMsgCut);
      }
      finish_exchange(std::move(h1_answering), kMsgCut);
      while (!h1_waiting.empty()) {
        auto e = std::move(h1_waiting.front());
        h1_waiting.pop_front();
        finish_exchange(std::move(e), kMsgCut);
      }
    } else if (proto == Proto::kHttp2) {
      while (!h2_streams.empty()) {
        auto e = std::move(h2_streams.begin()->second);
        h2_streams.erase(h2_streams.begin());
        finish_exchange(std::move(e), kMsgCut);
      }
    }
  }

  size_t buffered() const {
    size_t n = detect[0].size() + detect[1].size();
    if (h1_req) n += h1_req->buffered() + h1_resp->buffered();
    for (int d = 0; d < 2; ++d) {
      if (h2[d]) n += h2[d]->buffered();
    }
    return n;
  }
};

HttpStage::HttpStage(ExchangeSink& out, StageLimits limits) : out_(out), limits_(limits) {}

HttpStage::~HttpStage() = default;

void HttpStage::on_data(const stream::Connection& conn, const ProcessInfo* process,
                        const TlsChunk& chunk) {
  auto& slot = conns_[conn.id];
  if (!slot) {
    slot = std::make_unique<Conn>();
    slot->stage = this;
    if (process) {
      slot->process = *process;
    } else {
      slot->process.key = conn.process;
      slot->process.comm = conn.comm;
    }
  } else if (process && !slot->process.complete && process->complete) {
    slot->process = *process;
  }
  Conn& c = *slot;
  c.conn = conn;
  c.now = chunk.time_ns;
  c.feed(chunk.dir, chunk.data);
}

void HttpStage::on_gap(const stream::Connection& conn, Direction dir, uint64_t, uint64_t len,
                       stream::GapReason) {
  const auto it = conns_.find(conn.id);
  if (it == conns_.end()) return;
  it->second->conn = conn;
  it->second->gap(dir, len);
}

void HttpStage::end_connection(const stream::Connection& conn) {
  const auto it = conns_.find(conn.id);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  c->conn = conn;
  c->end();
}

void HttpStage::on_close(const stream::Connection& conn, const TlsClose& close) {
  const auto it = conns_.find(conn.id);
  if (it != conns_.end()) it->second->now = close.time_ns;
  end_connection(conn);
}

void HttpStage::on_forget(const stream::Connection& conn) {
  end_connection(conn);
}

void HttpStage::flush() {
  while (!conns_.empty()) {
    auto node = conns_.extract(conns_.begin());
    node.mapped()->end();
  }
}

HttpStageStats HttpStage::stats() const {
  HttpStageStats s = stats_;
  s.open_exchanges = 0;
  s.buffered_bytes = 0;
  for (const auto& [id, c] : conns_) {
    s.open_exchanges += c->open;
    s.buffered_bytes += c->buffered();
  }
  return s;
}

}  // namespace agentwall::protocol
