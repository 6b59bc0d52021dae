#include "agent/enforce/gate.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/common/time.h"

namespace agentwall::enforce {
namespace {

size_t count_in(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string_view::npos;
       at = hay.find(needle, at + needle.size()))
    ++n;
  return n;
}

}  // namespace

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kAllow:
      return "allow";
    case Verdict::kBlock:
      return "block";
    case Verdict::kRedact:
      return "redact";
    case Verdict::kKill:
      return "kill";
  }
  return "allow";
}

std::vector<Mask> find_masks(std::string_view held, std::string_view body,
                             const std::vector<std::string>& secrets, std::string& why) {
  std::vector<Mask> masks;
  for (const std::string& s : secrets) {
    if (s.empty()) continue;
    const size_t here = count_in(held, s);
    if (here == 0) {
      why = "the value is not in the bytes being written (sent earlier, or encoded)";
      return {};
    }
    if (count_in(body, s) > here) {
      why = "part of the request was already sent: what it carried cannot be masked";
      return {};
    }
    for (size_t at = held.find(s); at != std::string_view::npos; at = held.find(s, at + s.size()))
      masks.push_back({static_cast<uint32_t>(at), static_cast<uint32_t>(s.size())});
  }
  if (masks.empty()) why = "no value to mask";
  return masks;
}

Gate::Gate(Actuator& act, Emit emit, GateOptions options)
    : act_(act), emit_(std::move(emit)), opt_(options) {}

GateStats Gate::stats() const {
  GateStats s = stats_;
  if (!latencies_.empty()) {
    std::vector<double> sorted = latencies_;
    std::sort(sorted.begin(), sorted.end());
    s.latency_p50_us = sorted[sorted.size() / 2];
    s.latency_p99_us = sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)];
  }
  return s;
}

void Gate::note_request(uint64_t conn_id, RequestVerdict v) {
  // Only a request completed by a held write can still be acted on.
  if (!held_.count(conn_id)) return;
  verdicts_[conn_id] = std::move(v);
}

void Gate::on_chunk(const TlsChunk& c) {
  if (!(c.flags & kChunkHeld)) return;
  Held& h = held_[c.conn_id];
  if (c.call_off == 0) {
    h.stream_off = c.stream_off;
    h.bytes.clear();
  }
  h.bytes.append(c.data);
}

Outcome Gate::carry_out(const TlsHold& h, const RequestVerdict& v, std::string_view held) {
  switch (v.verdict) {
    case Verdict::kAllow:
      return act_.allow(h);
    case Verdict::kKill:
      return act_.kill(h);
    case Verdict::kBlock:
      return act_.block(h);
    case Verdict::kRedact: {
      std::string why;
      const std::vector<Mask> masks = find_masks(held, v.body, v.secrets, why);
      if (masks.empty()) {
        Outcome out = act_.block(h);
        out.how = "redaction impossible (" + why + "), blocked instead: " + out.how;
        return out;
      }
      return act_.redact(h, masks, opt_.fill);
    }
  }
  return act_.allow(h);
}

void Gate::remember_refusal(const TlsHold& h, const RequestVerdict& v, const Outcome& out) {
  if (out.done != Verdict::kBlock || !out.ok) {
    refused_.erase(h.conn_id);  // sent (or the process is gone): the stream moves on
    return;
  }
  if (refused_.size() >= kRefusedMax && !refused_.count(h.conn_id)) refused_.clear();
  Refused& r = refused_[h.conn_id];
  r.stream_off = h.stream_off;
  r.verdict = v;
  r.verdict.verdict = Verdict::kBlock;
  r.verdict.secrets.clear();
  r.verdict.body.clear();
}

void Gate::on_close(const TlsClose& c) {
  refused_.erase(c.conn_id);
}

void Gate::on_hold(const TlsHold& h) {
  ++stats_.holds;
  std::string held;
  if (auto it = held_.find(h.conn_id); it != held_.end()) {
    if (it->second.stream_off == h.stream_off) held = std::move(it->second.bytes);
    held_.erase(it);
  }
  RequestVerdict v;
  bool judged = false;
  std::string note;
  if (auto it = verdicts_.find(h.conn_id); it != verdicts_.end()) {
    v = std::move(it->second);
    verdicts_.erase(it);
    judged = true;
  } else if (auto r = refused_.find(h.conn_id);
             r != refused_.end() && r->second.stream_off == h.stream_off) {
    v = r->second.verdict;
    judged = true;
    note = "written again where a blocked write was refused (stream offset " +
           std::to_string(h.stream_off) + "): blocked again";
  }
  const double waited_ms = double(unix_now_ns() - h.time_ns) / 1e6;
  if (waited_ms > opt_.deadline_ms && v.verdict != Verdict::kAllow) {
    // Too late to act as asked: the policy's fail mode decides.
    ++stats_.deadline_missed;
    note = "verdict after the deadline (" + std::to_string(waited_ms) + " ms)";
    v.verdict = v.fail_closed ? Verdict::kBlock : Verdict::kAllow;
  }
  const Outcome out = carry_out(h, v, held);
  remember_refusal(h, v, out);
  if (!out.ok) ++stats_.failures;
  stats_.latency_max_us = std::max(stats_.latency_max_us, out.latency_us);
  stats_.latency_sum_us += out.latency_us;
  for (size_t b = 0; b < GateStats::kBucketsUs.size(); ++b)
    if (out.latency_us <= GateStats::kBucketsUs[b]) ++stats_.latency_buckets[b];
  if (latencies_.size() < kLatencies) {
    latencies_.push_back(out.latency_us);
  } else {
    latencies_[next_latency_] = out.latency_us;
    next_latency_ = (next_latency_ + 1) % kLatencies;
  }
  switch (out.done) {
    case Verdict::kAllow:
      ++stats_.allowed;
      break;
    case Verdict::kBlock:
      ++stats_.blocked;
      break;
    case Verdict::kRedact:
      ++stats_.redacted;
      break;
    case Verdict::kKill:
      ++stats_.killed;
      break;
  }
  if (!judged && out.ok && note.empty()) return;  // nothing was asked: a plain resume
  nlohmann::ordered_json j;
  j["type"] = "enforce.action";
  j["time"] = format_rfc3339(unix_now_ns());
  j["action"] = std::string(to_string(out.done));
  j["requested"] = std::string(to_string(v.verdict));
  j["ok"] = out.ok;
  j["how"] = out.how;
  if (!out.error.empty()) j["error"] = out.error;
  if (!note.empty()) j["note"] = note;
  j["rule"] = v.rule;
  if (!v.reason.empty()) j["reason"] = v.reason;
  j["latency_us"] = out.latency_us;
  j["exchange_id"] = v.exchange_id;
  j["process"] = {{"pid", h.process.pid}, {"tid", h.tid}};
  j["connection"] = {{"id", h.conn_id}, {"fd", h.fd}};
  j["write"] = {{"function", std::string(to_string(h.func))},
                {"bytes", h.len},
                {"stream_offset", h.stream_off}};
  if (emit_) emit_(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace agentwall::enforce
