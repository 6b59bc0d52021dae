// Prometheus metrics: counters from the events that flow and the health snapshot, served
// in the text exposition format on a loopback HTTP endpoint (`--metrics 127.0.0.1:9464`).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>

#include "agent/daemon/agent.h"
#include "agent/sinks/sinks.h"

namespace agentwall::daemon {

class Metrics {
 public:
  // Every event the agent emits; llm.exchange and alerts are counted by label.
  void observe(std::string_view line);
  std::string render(const HealthSnapshot& h, const std::vector<sinks::SinkStats>& sinks,
                     const sinks::FloodStats& flood) const;

 private:
  struct Llm {
    uint64_t calls = 0;
    uint64_t input_tokens = 0, output_tokens = 0;
    double cost_usd = 0;
  };
  std::map<std::tuple<std::string, std::string>, Llm> llm_;  // provider, model
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t>
      alerts_;  // type, rule, action
};

class MetricsServer {
 public:
  // Listens on ADDR:PORT (loopback unless the user says otherwise). Null and `error`.
  static std::unique_ptr<MetricsServer> start(const std::string& listen, std::string& error);
  ~MetricsServer();
  void set(std::string text);
  uint16_t port() const { return port_; }

 private:
  MetricsServer() = default;
  void serve();

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string text_;
};

}  // namespace agentwall::daemon
