#include "agent/daemon/policy_runtime.h"

#include <spdlog/spdlog.h>

#include "agent/daemon/host_checks.h"

namespace agentwall::daemon {
namespace {

void add(decide::DecideStats& to, const decide::DecideStats& s) {
  to.requests += s.requests;
  to.alerts += s.alerts;
  to.verdicts += s.verdicts;
  to.budget_refusals += s.budget_refusals;
  to.ledger_errors += s.ledger_errors;
}

constexpr auto kRetiredFor = std::chrono::minutes(10);

}  // namespace

PolicyRuntime::PolicyRuntime(capture::Capture& cap, enforce::Gate& gate, Emit emit,
                             const llm::Inspector* inspector, const llm::PriceTable* prices)
    : cap_(cap), gate_(gate), emit_(std::move(emit)), inspector_(inspector), prices_(prices) {}

PolicyRuntime::~PolicyRuntime() = default;

bool PolicyRuntime::install(std::shared_ptr<const policy::Policy> pol, std::string& error) {
  auto g = std::make_unique<Generation>();
  g->policy = std::move(pol);
  const policy::Policy& p = *g->policy;
  // A held process is resumed (or killed) with a signal: without CAP_KILL, one of another
  // user would stay stopped. Such a policy is refused rather than half enforced.
  if (p.gate_scope().gated && !has_capability(5)) {
    error = "this policy enforces (rule " + p.gate_scope().scopes.front().rule +
            " blocks, redacts or kills), which needs CAP_KILL to resume or kill the processes it "
            "holds, and the agent does not have it. Under systemd, add the drop-in: install -D -m "
            "0644 /usr/share/agentwall/systemd/enforce.conf "
            "/etc/systemd/system/agentwall.service.d/enforce.conf && systemctl daemon-reload && "
            "systemctl restart agentwall; or set the policy's mode to monitor";
    return false;
  }
  if (!p.budgets().empty() || !p.rate_limits().empty()) {
    g->ledger = budget::Ledger::open(p.ledger(), p.budgets(), p.rate_limits(),
                                     p.settings().state_dir, error);
    if (!g->ledger) {
      error = "budget ledger: " + error;
      return false;
    }
  }
  enforce::Gate& gate = gate_;
  g->decider = std::make_unique<decide::Decider>(
      decide::DecideOptions{&p, g->ledger.get(), inspector_, prices_,
                            [&gate](uint64_t conn) { return gate.holding(conn); }},
      emit_,
      [&gate](uint64_t conn, enforce::RequestVerdict v) { gate.note_request(conn, std::move(v)); });
  g->gating = std::make_unique<Gating>(p.gate_scope(), cap_);
  // The old scope's processes, cgroups and hosts leave the kernel's maps before the new
  // scope's go in: a process the new policy does not name is never held again.
  if (current_) {
    current_->gating->clear();
    retire(std::move(current_));
  }
  gate_.set_deadline_ms(p.settings().verdict_timeout_ms);
  g->gating->start();
  current_ = std::move(g);
  ++generation_;
  return true;
}

void PolicyRuntime::retire(std::unique_ptr<Generation> g) {
  g->retired_at = std::chrono::steady_clock::now();
  if (g->decider->pending() == 0) {
    add(gone_, g->decider->stats());
    return;
  }
  retired_.push_back(std::move(g));
}

void PolicyRuntime::stop() {
  if (current_) current_->gating->stop();
}

void PolicyRuntime::tick(std::chrono::steady_clock::time_point now) {
  for (auto it = retired_.begin(); it != retired_.end();) {
    const Generation& g = **it;
    if (g.decider->pending() == 0 || now - g.retired_at > kRetiredFor) {
      if (g.decider->pending())
        spdlog::info("policy reload: {} calls judged by the replaced policy never ended",
                     g.decider->pending());
      add(gone_, g.decider->stats());
      it = retired_.erase(it);
    } else {
      ++it;
    }
  }
}

decide::DecideStats PolicyRuntime::stats() const {
  decide::DecideStats s = gone_;
  for (const auto& g : retired_) add(s, g->decider->stats());
  if (current_) add(s, current_->decider->stats());
  return s;
}

size_t PolicyRuntime::gated_processes() const {
  return current_ ? current_->gating->gated_processes() : 0;
}

bool PolicyRuntime::wants_request(uint64_t conn_id) const {
  return current_ && current_->decider->wants_request(conn_id);
}

void PolicyRuntime::on_llm_request(const llm::LlmRecord& request, std::string_view body) {
  if (current_) current_->decider->on_llm_request(request, body);
}

void PolicyRuntime::on_mcp_call(const mcp::McpCall& call) {
  // A request judged while held before a reload ends under the policy that judged it.
  for (const auto& g : retired_) {
    if (g->decider->judged_mcp(call)) {
      g->decider->on_mcp_call(call);
      return;
    }
  }
  if (current_) current_->decider->on_mcp_call(call);
}

void PolicyRuntime::on_llm_call(const llm::LlmRecord& record) {
  for (const auto& g : retired_) {
    if (g->decider->has_pending(record.exchange_id)) {
      g->decider->on_llm_call(record);
      return;
    }
  }
  if (current_) current_->decider->on_llm_call(record);
}

}  // namespace agentwall::daemon
