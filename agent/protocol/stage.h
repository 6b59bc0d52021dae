// The protocol stage: reads each captured connection as HTTP/1.1 or HTTP/2 (chosen from its
// first bytes), undoes transfer and content codings, pairs requests with responses and hands
// whole exchanges (and streamed response bodies as they arrive) to the next stage. It knows
// nothing of LLMs; it knows every byte it could not read and says so in the flags.
#pragma once

#include <memory>
#include <unordered_map>

#include "agent/protocol/content/content.h"
#include "agent/protocol/http.h"
#include "agent/stream/tracker.h"

namespace agentwall::protocol {

struct StageLimits {
  size_t max_body = 8 << 20;            // stored bytes per message body; the rest is counted
  size_t max_exchanges_per_conn = 512;  // HTTP/2 streams or pipelined requests in flight
  DecodeLimits decode;
};

class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  // The request is complete (head and body).
  virtual void on_request(const stream::Connection&, const ProcessInfo&, HttpExchange&) {}
  // The response head arrived.
  virtual void on_response_head(const stream::Connection&, const ProcessInfo&, HttpExchange&) {}
  // A piece of the response body, decoded, as it arrives.
  virtual void on_response_body(const stream::Connection&, const ProcessInfo&, HttpExchange&,
                                std::string_view /*decoded*/) {}
  // The exchange is over: response complete, or ended without one (cut, reset, connection
  // gone). Called exactly once per exchange.
  virtual void on_exchange(const stream::Connection&, const ProcessInfo&, HttpExchange&) = 0;
};

class HttpStage final : public stream::StreamSink {
 public:
  explicit HttpStage(ExchangeSink& out, StageLimits limits = {});
  ~HttpStage() override;

  void on_data(const stream::Connection& conn, const ProcessInfo* process,
               const TlsChunk& chunk) override;
  void on_gap(const stream::Connection& conn, Direction dir, uint64_t offset, uint64_t len,
              stream::GapReason reason) override;
  void on_close(const stream::Connection& conn, const TlsClose& close) override;
  void on_forget(const stream::Connection& conn) override;

  // Ends every connection still open (agent stopping, end of a replay).
  void flush();

  HttpStageStats stats() const;

  struct Conn;  // per-connection state (stage.cc)

 private:
  void end_connection(const stream::Connection& conn);

  ExchangeSink& out_;
  StageLimits limits_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  HttpStageStats stats_;
  uint64_t next_exchange_id_ = 1;
};

}  // namespace agentwall::protocol
