#include "agent/decide/decider.h"

#include <nlohmann/json.hpp>

#include "agent/common/time.h"
#include "agent/detect/engine.h"
#include "agent/policy/subject_llm.h"

namespace agentwall::decide {
namespace {

using json = nlohmann::ordered_json;

// Tokens a request will cost, before it is answered: its prompt (about four bytes of JSON
// per token, an over-estimate for English, which is what a reservation wants) plus the
// output it asks for, up to 4096. Settling replaces it with the provider's figures.
int64_t estimate_tokens(const llm::LlmCall& call, std::string_view body) {
  const int64_t input = static_cast<int64_t>(body.size() / 4) + 1;
  const int64_t output =
      call.max_output_tokens > 0 ? std::min<int64_t>(call.max_output_tokens, 4096) : 256;
  return input + output;
}

double estimate_usd(const llm::PriceTable& prices, const llm::LlmCall& call, int64_t tokens,
                    std::string_view body) {
  const auto p = prices.find(call.model);
  if (!p) return 0;
  const int64_t input = static_cast<int64_t>(body.size() / 4) + 1;
  return llm::price_call(*p, input, std::max<int64_t>(tokens - input, 0), 0, 0).usd;
}

enforce::Verdict to_verdict(policy::Action a) {
  switch (a) {
    case policy::Action::kKill:
      return enforce::Verdict::kKill;
    case policy::Action::kBlock:
      return enforce::Verdict::kBlock;
    case policy::Action::kRedact:
      return enforce::Verdict::kRedact;
    case policy::Action::kAlert:
      break;
  }
  return enforce::Verdict::kAllow;
}

json process_json(const policy::Subject& s) {
  json p = {{"pid", s.pid}, {"exe", s.exe}, {"name", s.name}};
  if (!s.user.empty()) p["user"] = s.user;
  if (!s.unit.empty()) p["unit"] = s.unit;
  if (!s.container.empty()) p["container"] = s.container;
  return p;
}

json call_json(const llm::LlmRecord& r) {
  return {{"provider", r.call.provider},
          {"model", r.call.model},
          {"operation", r.call.operation},
          {"host", r.host},
          {"exchange_id", r.exchange_id}};
}

// For each of the subject's findings, its index in the inspection it was taken from (the
// subject keeps those of one direction, in the inspection's order).
std::vector<size_t> source_indexes(const policy::Subject& s, const llm::Inspection& in) {
  std::vector<size_t> out;
  size_t j = 0;
  for (const policy::FindingFact& f : s.findings) {
    while (j < in.findings.size() &&
           !(in.findings[j].where == f.where && in.findings[j].finding.detector == f.detector))
      ++j;
    out.push_back(j);
    if (j < in.findings.size()) ++j;
  }
  return out;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string_view text_at(const llm::LlmCall& call, std::string_view where) {
  auto index_in = [&](std::string_view prefix) -> std::optional<size_t> {
    if (!where.starts_with(prefix)) return std::nullopt;
    size_t i = 0;
    size_t at = prefix.size();
    if (at >= where.size() || where[at] < '0' || where[at] > '9') return std::nullopt;
    while (at < where.size() && where[at] >= '0' && where[at] <= '9')
      i = i * 10 + size_t(where[at++] - '0');
    return i;
  };
  if (where == "system") return call.system;
  if (where == "output_text") return call.output_text;
  if (auto i = index_in("messages["); i && *i < call.messages.size()) return call.messages[*i].text;
  if (auto i = index_in("tool_calls["); i && *i < call.tool_calls.size())
    return call.tool_calls[*i].arguments;
  return {};
}

Decider::Decider(DecideOptions options, Emit emit, OnVerdict on_verdict)
    : opt_(options), emit_(std::move(emit)), on_verdict_(std::move(on_verdict)) {
  if (!opt_.prices) opt_.prices = &llm::PriceTable::builtin();
}

void Decider::alert(const llm::LlmRecord& r, const policy::Subject& s, const policy::Decision& d,
                    const std::string& outcome) {
  emit_alert(s, d, outcome, "llm", call_json(r));
}

void Decider::emit_alert(const policy::Subject& s, const policy::Decision& d,
                         const std::string& outcome, const char* what, json call) {
  ++stats_.alerts;
  json j;
  j["type"] = "policy.alert";
  j["time"] = format_rfc3339(unix_now_ns());
  j["rule"] = d.rule;
  j["severity"] = d.severity;
  j["action"] = std::string(policy::to_string(d.action));
  j["enforced"] = d.enforce;
  j["outcome"] = outcome;
  j["direction"] = s.direction;
  j["message"] = d.message;
  if (!d.tags.empty()) j["tags"] = d.tags;
  j["process"] = process_json(s);
  j[what] = std::move(call);
  json findings = json::array();
  detect::ListedFindings listed;
  for (size_t i : d.findings) {
    if (i >= s.findings.size()) continue;
    const auto& f = s.findings[i];
    if (!listed.take(f.where, f.detector)) continue;
    findings.push_back({{"detector", f.detector},
                        {"category", f.category},
                        {"confidence", f.confidence},
                        {"where", f.where}});
  }
  if (!findings.empty()) j["findings"] = findings;
  if (listed.dropped() > 0) j["findings_unlisted"] = listed.dropped();
  if (s.score) j["score"] = s.score;
  emit_(dump(j));
}

void Decider::budget_alerts(const llm::LlmRecord& r,
                            const std::vector<budget::BudgetStatus>& statuses,
                            const std::string& phase) {
  for (const auto& b : statuses) {
    // Every status passes here (reserve and settle): the latest is what `status` shows.
    auto key = std::make_pair(b.name, b.key);
    if (auto it = budget_states_.find(key); it != budget_states_.end())
      it->second = b;
    else if (budget_states_.size() < kMaxBudgetStates)
      budget_states_.emplace(std::move(key), b);
    for (double level : b.crossed) {
      ++stats_.alerts;
      json j;
      j["type"] = "budget.alert";
      j["time"] = format_rfc3339(unix_now_ns());
      j["budget"] = b.name;
      j["key"] = b.key;
      j["level"] = level;
      j["state"] = b.state;
      j["phase"] = phase;  // reserve (estimate counted) or settle (real usage)
      j["used_tokens"] = b.used_tokens;
      if (b.limit_tokens) j["limit_tokens"] = *b.limit_tokens;
      j["used_usd"] = b.used_usd;
      if (b.limit_usd) j["limit_usd"] = *b.limit_usd;
      j["fraction"] = b.fraction;
      j["window_start"] = b.window_start;
      j["action"] = b.action;
      j["llm"] = call_json(r);
      j["process"] = {{"pid", r.process.key.pid}, {"exe", r.process.exe}};
      emit_(dump(j));
    }
  }
}

std::vector<budget::BudgetStatus> Decider::budget_states() const {
  std::vector<budget::BudgetStatus> out;
  out.reserve(budget_states_.size());
  for (const auto& [key, b] : budget_states_) out.push_back(b);
  return out;
}

void Decider::reserve(const llm::LlmRecord& r, std::string_view body, bool held, policy::Subject& s,
                      enforce::RequestVerdict& v, Pending& p) {
  if (!opt_.ledger) return;
  budget::Principal who{s.user,  s.exe,      s.unit,  s.container, s.api_key_fingerprint,
                        s.model, s.provider, s.cgroup};
  const int64_t tokens = estimate_tokens(r.call, body);
  const double usd = estimate_usd(*opt_.prices, r.call, tokens, body);
  budget::Reservation res = opt_.ledger->reserve(who, {tokens, usd}, unix_now_ns());
  if (!res.error.empty()) {
    ++stats_.ledger_errors;
    json j;
    j["type"] = "budget.error";
    j["time"] = format_rfc3339(unix_now_ns());
    j["error"] = res.error;
    j["allowed"] = res.allowed;
    j["llm"] = call_json(r);
    emit_(dump(j));
  }
  for (const auto& b : res.budgets) s.budget_state[b.name] = b.refused ? "exceeded" : b.state;
  for (const auto& rt : res.rates) s.rate_limit_state[rt.name] = rt.exceeded ? "exceeded" : "ok";
  p.reservation = res.id;
  p.budget_state = s.budget_state;
  p.rate_limit_state = s.rate_limit_state;
  budget_alerts(r, res.budgets, "reserve");
  if (res.allowed) return;
  ++stats_.budget_refusals;
  // The ledger refused: a budget or rate limit whose action is block is spent. That is a
  // block in its own right, enforced when the policy's global mode is.
  std::string what;
  for (const auto& b : res.budgets)
    if (b.refused) what = "budget " + b.name + " (" + b.key + ") spent";
  for (const auto& rt : res.rates)
    if (rt.exceeded && rt.action == "block")
      what = "rate limit " + rt.name + " (" + rt.key + ") exceeded";
  if (what.empty()) what = "ledger refused: " + res.error;
  const bool enforce = opt_.policy->settings().mode == policy::Mode::kEnforce;
  json j;
  j["type"] = "policy.alert";
  j["time"] = format_rfc3339(unix_now_ns());
  j["rule"] = "budget";
  j["severity"] = "high";
  j["action"] = "block";
  j["enforced"] = enforce;
  j["outcome"] = !enforce ? "would block" : held ? "block" : "not held: outside the gate";
  j["direction"] = "request";
  j["message"] = what;
  j["process"] = process_json(s);
  j["llm"] = call_json(r);
  ++stats_.alerts;
  emit_(dump(j));
  if (enforce && v.verdict != enforce::Verdict::kKill) {
    v.verdict = enforce::Verdict::kBlock;
    v.rule = "budget";
    v.reason = what;
  }
}

void Decider::judge_request(const llm::LlmRecord& r, const policy::Subject& s, bool held,
                            std::string_view body, enforce::RequestVerdict& v) {
  const std::vector<policy::Decision> decisions = opt_.policy->evaluate(s);
  const policy::Verdict strongest = policy::Policy::strongest(decisions);
  for (const auto& d : decisions) {
    const bool carried = d.enforce && strongest.action && d.action == *strongest.action;
    const std::string action(policy::to_string(d.action));
    std::string outcome = d.action == policy::Action::kAlert ? "alert"
                          : !d.enforce                       ? "would " + action
                          : !held                            ? "not held: outside the gate"
                          : carried                          ? action
                                                             : "superseded";
    alert(r, s, d, outcome);
  }
  if (!held || !strongest.action || *strongest.action == policy::Action::kAlert) return;
  const enforce::Verdict asked = to_verdict(*strongest.action);
  if (asked > v.verdict || v.verdict == enforce::Verdict::kAllow) {
    const policy::Decision& first = decisions[strongest.decisions.front()];
    v.verdict = asked;
    v.rule = first.rule;
    v.reason = first.message;
    v.fail_closed = first.fail_closed;
  }
  if (v.verdict != enforce::Verdict::kRedact) return;
  const std::vector<size_t> source = source_indexes(s, r.inspection);
  for (size_t di : strongest.decisions) {
    for (size_t fi : decisions[di].findings) {
      if (fi >= source.size() || source[fi] >= r.inspection.findings.size()) continue;
      const auto& lf = r.inspection.findings[source[fi]];
      const std::string_view text = text_at(r.call, lf.where);
      for (const auto& span : lf.finding.spans)
        if (span.end <= text.size() && span.begin < span.end)
          v.secrets.emplace_back(text.substr(span.begin, span.end - span.begin));
    }
  }
  v.body = std::string(body);
}

void Decider::on_llm_request(const llm::LlmRecord& request, std::string_view body) {
  const bool held = !opt_.holding || opt_.holding(request.conn.id);
  Pending& p = pending_[request.exchange_id];
  enforce::RequestVerdict v;
  v.exchange_id = request.exchange_id;
  if (!held) {
    // Nothing can be done to it any more: its budget is reserved now (so that parallel
    // calls count), its rules run when the exchange ends.
    policy::Subject s = policy::subject_from_llm(request, "request");
    reserve(request, body, false, s, v, p);
    return;
  }
  llm::LlmRecord r = request;
  if (opt_.inspector) r.inspection = opt_.inspector->inspect(r.call);
  policy::Subject s = policy::subject_from_llm(r, "request");
  reserve(r, body, true, s, v, p);
  p.judged = true;
  judge_request(r, s, true, body, v);
  if (v.verdict != enforce::Verdict::kAllow) {
    ++stats_.verdicts;
    if (on_verdict_) on_verdict_(r.conn.id, std::move(v));
  }
}

void Decider::on_llm_call(const llm::LlmRecord& r) {
  if (r.has_request) ++stats_.requests;
  Pending p;
  if (auto it = pending_.find(r.exchange_id); it != pending_.end()) {
    p = std::move(it->second);
    pending_.erase(it);
  }
  if (opt_.ledger && p.reservation) {
    const int64_t tokens = r.usage.input_tokens + r.usage.output_tokens;
    const double usd = r.cost ? r.cost->usd : 0;
    // A request that never got an answer (blocked, or the connection died first) cost
    // nothing the provider will bill: give the reservation back.
    if (!r.has_response && tokens == 0) {
      opt_.ledger->release(p.reservation);
    } else {
      budget_alerts(r, opt_.ledger->settle(p.reservation, {tokens, usd}, unix_now_ns()), "settle");
    }
  }
  if (r.has_request && !p.judged) {
    policy::Subject s = policy::subject_from_llm(r, "request");
    s.budget_state = std::move(p.budget_state);
    s.rate_limit_state = std::move(p.rate_limit_state);
    enforce::RequestVerdict unused;
    judge_request(r, s, false, {}, unused);
  }
  if (!r.has_response) return;
  const policy::Subject s = policy::subject_from_llm(r, "response");
  for (const auto& d : opt_.policy->evaluate(s))
    alert(r, s, d,
          d.action == policy::Action::kAlert || !d.enforce
              ? (d.action == policy::Action::kAlert
                     ? "alert"
                     : "would " + std::string(policy::to_string(d.action)))
              : "too late to " + std::string(policy::to_string(d.action)) +
                    ": the response is already delivered");
}

namespace {

nlohmann::ordered_json mcp_call_json(const mcp::McpCall& c) {
  return {{"server", c.server},         {"method", c.method}, {"tool", c.tool},
          {"session_id", c.session_id}, {"url", c.url},       {"transport", c.transport}};
}

std::string mcp_key(const mcp::McpCall& c) {
  return std::to_string(c.process.key.pid) + "|" + c.rpc_id + "|" + std::to_string(c.time_ns);
}

}  // namespace

bool Decider::judged_mcp(const mcp::McpCall& c) const {
  return mcp_judged_.count(mcp_key(c)) != 0;
}

void Decider::on_mcp_request(const mcp::McpCall& c, uint64_t conn_id) {
  if (!wants_mcp_request(conn_id)) return;
  const detect::Engine* engine = opt_.inspector ? &opt_.inspector->engine() : nullptr;
  const policy::Subject s = policy::subject_from_mcp(c, "request", engine);
  const std::vector<policy::Decision> decisions = opt_.policy->evaluate(s);
  if (mcp_judged_.size() >= kMaxMcpJudged) mcp_judged_.clear();  // answers never came
  mcp_judged_.insert(mcp_key(c));
  const policy::Verdict strongest = policy::Policy::strongest(decisions);
  const bool takes = strongest.action && *strongest.action != policy::Action::kAlert;
  for (const policy::Decision& d : decisions) {
    const std::string action(policy::to_string(d.action));
    const bool carried = takes && d.enforce && d.action == *strongest.action;
    emit_alert(s, d,
               d.action == policy::Action::kAlert ? std::string("alert")
               : !d.enforce                       ? "would " + action
               : carried                          ? action
                                                  : "superseded",
               "mcp", mcp_call_json(c));
  }
  if (!takes) return;
  const policy::Decision& first = decisions[strongest.decisions.front()];
  enforce::RequestVerdict v;
  v.verdict = to_verdict(*strongest.action);
  v.rule = first.rule;
  v.reason = first.message;
  v.fail_closed = first.fail_closed;
  if (v.verdict == enforce::Verdict::kRedact) {
    // The values to mask: the spans of the findings that asked for it, in the arguments'
    // text as subject_from_mcp scanned it (the same scan again: it is deterministic, and
    // the subject keeps no spans). On the wire the arguments are that JSON as the client
    // wrote it; a value written otherwise there (escaped) is not found in the held bytes,
    // and the gate blocks instead. The arguments stand for the body in the check that no
    // occurrence left in an earlier write.
    v.body = c.arguments.is_null() ? "" : c.arguments.dump();
    if (engine) {
      const detect::ScanResult r = engine->scan(v.body, detect::Source::kToolArguments);
      for (size_t di : strongest.decisions)
        for (size_t fi : decisions[di].findings) {
          if (fi >= r.findings.size()) continue;
          for (const auto& span : r.findings[fi].spans)
            if (span.begin < span.end && span.end <= v.body.size())
              v.secrets.emplace_back(v.body.substr(span.begin, span.end - span.begin));
        }
    }
  }
  ++stats_.verdicts;
  if (on_verdict_) on_verdict_(conn_id, std::move(v));
}

void Decider::on_mcp_call(const mcp::McpCall& c) {
  const nlohmann::ordered_json call = mcp_call_json(c);
  const detect::Engine* engine = opt_.inspector ? &opt_.inspector->engine() : nullptr;
  ++stats_.requests;
  const bool judged = mcp_judged_.erase(mcp_key(c)) != 0;
  for (const char* direction : {"request", "response"}) {
    const bool request = std::string_view(direction) == "request";
    if (request && judged) continue;
    if (!request && !c.answered) break;
    const policy::Subject s = policy::subject_from_mcp(c, direction, engine);
    for (const policy::Decision& d : opt_.policy->evaluate(s)) {
      const std::string action(policy::to_string(d.action));
      emit_alert(s, d,
                 d.action == policy::Action::kAlert ? std::string("alert")
                 : !d.enforce                       ? "would " + action
                 : request ? (c.transport == "stdio" ? "not held (MCP over stdio): would " + action
                                                     : "not held: outside the gate")
                           : "too late to " + action + ": the response is already delivered",
                 "mcp", call);
    }
  }
}

}  // namespace agentwall::decide
