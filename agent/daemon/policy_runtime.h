// The policy in force and what is built from it: the budget ledger, the decide stage and the
// kernel gate's scope. A reload (SIGHUP) builds all of it for the new policy before anything
// changes, then swaps: calls in flight finish under the policy and ledger that judged their
// request (their reservations settle there), new calls meet the new policy. A policy whose
// ledger cannot be opened is refused, and the running one stays.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/budget/ledger.h"
#include "agent/capture/capture.h"
#include "agent/daemon/gating.h"
#include "agent/decide/decider.h"
#include "agent/enforce/gate.h"
#include "agent/policy/policy.h"

namespace agentwall::daemon {

class PolicyRuntime final : public llm::LlmSink, public mcp::McpObserver {
 public:
  using Emit = std::function<void(const std::string& line)>;
  PolicyRuntime(capture::Capture& cap, enforce::Gate& gate, Emit emit,
                const llm::Inspector* inspector, const llm::PriceTable* prices);
  ~PolicyRuntime() override;

  // Puts `policy` in force: the first one, or a reload. On failure nothing changes and
  // `error` says why.
  bool install(std::shared_ptr<const policy::Policy> policy, std::string& error);
  // Turns the kernel gate off (shutdown): nothing is held after this.
  void stop();
  // Lets go of replaced policies once their last call has ended (or after ten minutes).
  void tick(std::chrono::steady_clock::time_point now);

  const policy::Policy* policy() const { return current_ ? current_->policy.get() : nullptr; }
  decide::DecideStats stats() const;
  size_t gated_processes() const;
  // The budgets' latest states, as the policy in force counts them (agentwall status).
  std::vector<budget::BudgetStatus> budget_states() const {
    return current_ ? current_->decider->budget_states() : std::vector<budget::BudgetStatus>{};
  }
  uint64_t generation() const { return generation_; }

  bool wants_request(uint64_t conn_id) const override;
  void on_llm_request(const llm::LlmRecord& request, std::string_view body) override;
  void on_llm_call(const llm::LlmRecord& record) override;
  bool wants_mcp_request(uint64_t conn_id) const override {
    return current_ && current_->decider->wants_mcp_request(conn_id);
  }
  void on_mcp_request(const mcp::McpCall& request, uint64_t conn_id) override {
    if (current_) current_->decider->on_mcp_request(request, conn_id);
  }
  void on_mcp_call(const mcp::McpCall& call) override;

 private:
  struct Generation {
    std::shared_ptr<const policy::Policy> policy;
    std::unique_ptr<budget::Ledger> ledger;
    std::unique_ptr<decide::Decider> decider;
    std::unique_ptr<Gating> gating;
    std::chrono::steady_clock::time_point retired_at{};
  };
  void retire(std::unique_ptr<Generation> g);

  capture::Capture& cap_;
  enforce::Gate& gate_;
  Emit emit_;
  const llm::Inspector* inspector_;
  const llm::PriceTable* prices_;
  std::unique_ptr<Generation> current_;
  std::vector<std::unique_ptr<Generation>> retired_;
  decide::DecideStats gone_;  // counted by generations already let go
  uint64_t generation_ = 0;
};

}  // namespace agentwall::daemon
