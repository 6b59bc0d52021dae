// The decide stage: judges every LLM call by the policy. When a request is complete (before its
// last bytes are written when the kernel gate holds them) it is inspected, its estimated cost
// is reserved in the budgets and rate limits, and the policy's rules are evaluated: each rule
// that fires becomes a `policy.alert` event, and the strongest enforced action goes to the
// gate as the request's verdict. When the response is in, the reservation is settled with the
// real usage and the response's rules are evaluated.
//
// Pure: the ledger may be SQLite or Redis, but nothing here touches a process.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "agent/budget/ledger.h"
#include "agent/enforce/gate.h"
#include "agent/llm/inspect.h"
#include "agent/llm/stage.h"
#include "agent/mcp/stage.h"
#include "agent/policy/policy.h"

namespace agentwall::decide {

struct DecideOptions {
  const policy::Policy* policy = nullptr;     // required
  budget::Ledger* ledger = nullptr;           // null: no budgets or rate limits
  const llm::Inspector* inspector = nullptr;  // null: rules see no findings
  const llm::PriceTable* prices = nullptr;    // null: the built-in table
  // Whether the connection's write is held right now (the gate). A request that is not held
  // is judged when its exchange ends, with the inspection the LLM stage makes anyway, so
  // ungated traffic is inspected once. Null: every request is judged at once.
  std::function<bool(uint64_t conn_id)> holding;
};

struct DecideStats {
  uint64_t requests = 0;
  uint64_t alerts = 0;
  uint64_t verdicts = 0;  // requests given an enforced action (block, redact, kill)
  uint64_t budget_refusals = 0;
  uint64_t ledger_errors = 0;
};

class Decider final : public llm::LlmSink, public mcp::McpObserver {
 public:
  using Emit = std::function<void(const std::string& line)>;
  using OnVerdict = std::function<void(uint64_t conn_id, enforce::RequestVerdict)>;
  Decider(DecideOptions options, Emit emit, OnVerdict on_verdict);

  // A held request is judged at once; any request is seen at once when budgets count it.
  bool wants_request(uint64_t conn_id) const override {
    return opt_.ledger || !opt_.holding || opt_.holding(conn_id);
  }
  void on_llm_request(const llm::LlmRecord& request, std::string_view body) override;
  void on_llm_call(const llm::LlmRecord& record) override;
  // An MCP request over HTTP whose write is held: its rules (kind mcp, direction request)
  // run now, and a block, kill or redact (with the values to mask in its arguments) goes to
  // the gate. Not held (stdio, plaintext, a process outside the gate): it is judged with its
  // answer instead.
  bool wants_mcp_request(uint64_t conn_id) const override {
    return opt_.holding && opt_.holding(conn_id);
  }
  void on_mcp_request(const mcp::McpCall& request, uint64_t conn_id) override;
  // An MCP call with its answer: the rules that match it (kind mcp) raise policy.alert for
  // what it sent (its arguments, unless judged while held) and what came back (its result).
  void on_mcp_call(const mcp::McpCall& call) override;

  const DecideStats& stats() const { return stats_; }
  // Calls whose request this decider judged and whose response has not come yet: after a
  // reload they finish here, under the policy and ledger that saw their request.
  bool has_pending(uint64_t exchange_id) const { return pending_.count(exchange_id) != 0; }
  // The same for an MCP request judged while held.
  bool judged_mcp(const mcp::McpCall& call) const;
  size_t pending() const { return pending_.size(); }
  // The latest state of each budget and key seen at a reservation or settlement (for
  // `agentwall status`); at most kMaxBudgetStates keys, the first ones seen.
  std::vector<budget::BudgetStatus> budget_states() const;
  static constexpr size_t kMaxBudgetStates = 1000;

 private:
  struct Pending {
    uint64_t reservation = 0;
    std::map<std::string, std::string> budget_state, rate_limit_state;
    bool judged = false;  // the request's rules ran when it was held
  };
  void reserve(const llm::LlmRecord& r, std::string_view body, bool held, policy::Subject& s,
               enforce::RequestVerdict& v, Pending& p);
  void judge_request(const llm::LlmRecord& r, const policy::Subject& s, bool held,
                     std::string_view body, enforce::RequestVerdict& v);
  void budget_alerts(const llm::LlmRecord& r, const std::vector<budget::BudgetStatus>& statuses,
                     const std::string& phase);
  void alert(const llm::LlmRecord& r, const policy::Subject& s, const policy::Decision& d,
             const std::string& outcome);
  void emit_alert(const policy::Subject& s, const policy::Decision& d, const std::string& outcome,
                  const char* what, nlohmann::ordered_json call);

  DecideOptions opt_;
  Emit emit_;
  OnVerdict on_verdict_;
  DecideStats stats_;
  std::unordered_map<uint64_t, Pending> pending_;  // by exchange id, until it ends
  // MCP requests judged while held, until their on_mcp_call: "pid|rpc id|time".
  std::unordered_set<std::string> mcp_judged_;
  static constexpr size_t kMaxMcpJudged = 100000;
  std::map<std::pair<std::string, std::string>, budget::BudgetStatus> budget_states_;
};

// The text a finding's `where` names in a call ("messages[3]", "system", "output_text",
// "tool_calls[0].arguments"); empty when there is none.
std::string_view text_at(const llm::LlmCall& call, std::string_view where);

}  // namespace agentwall::decide
