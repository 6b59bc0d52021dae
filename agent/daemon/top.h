// `agentwall top`: what each process did with LLM APIs lately, counted from the events the
// agent emits (llm.exchange, policy.alert, budget.alert, enforce.action). Fed on the main
// thread; bounded: processes not seen for a while are forgotten, and so are the quietest
// when there are too many.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::daemon {

struct TopRow {
  uint32_t pid = 0;
  std::string exe, comm, user;
  uint64_t calls = 0;
  uint64_t input_tokens = 0, output_tokens = 0;
  double cost_usd = 0;
  uint64_t alerts = 0;  // policy.alert and budget.alert
  uint64_t blocked = 0, redacted = 0, killed = 0;
  std::string last_model, last_provider;
  int64_t last_seen_ns = 0;  // unix time
  // Over the last minute.
  uint64_t calls_1m = 0;
  uint64_t tokens_1m = 0;
};

class ProcessTop {
 public:
  struct Options {
    size_t max_rows = 1000;
    int64_t forget_after_ns = 10ll * 60 * 1'000'000'000;
  };
  ProcessTop() : ProcessTop(Options{}) {}
  explicit ProcessTop(Options options) : opt_(options) {}

  // One event line as the sinks get it; lines of other types cost a prefix comparison.
  void observe(std::string_view line, int64_t now_ns);
  // Every process seen in the last forget_after_ns, most recently seen first.
  std::vector<TopRow> rows(int64_t now_ns);
  // The reply to {"cmd":"top"}: {"type":"agent.top","time":…,"processes":[…]}.
  std::string json(int64_t now_ns);

 private:
  struct Entry {
    TopRow row;
    std::deque<std::pair<int64_t, uint64_t>> recent;  // (time, tokens) of the last minute's calls
  };
  Entry& entry(uint32_t pid, std::string_view exe, int64_t now_ns);
  void forget(int64_t now_ns);

  Options opt_;
  std::map<uint32_t, Entry> by_pid_;
};

}  // namespace agentwall::daemon
