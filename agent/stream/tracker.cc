#include "agent/stream/tracker.h"

#include <algorithm>
#include <vector>

namespace agentwall::stream {

std::string_view to_string(GapReason r) {
  return r == GapReason::kTruncated ? "truncated" : "ringbuf_full";
}

Connection& Tracker::connection(uint64_t id, const ProcessKey& process, uint64_t ssl,
                                uint64_t now) {
  auto [it, inserted] = conns_.try_emplace(id);
  Connection& c = it->second;
  if (inserted) {
    c.id = id;
    c.process = process;
    c.ssl = ssl;
    c.first_ns = now;
    ++stats_.connections_total;
    stats_.connections_open = conns_.size();
  }
  c.last_ns = now;
  return c;
}

void Tracker::on_process(const ProcessInfo& p) {
  processes_[p.key] = p;
  stats_.processes = processes_.size();
  out_.on_process(p);
}

void Tracker::on_chunk(const TlsChunk& chunk) {
  Connection& c = connection(chunk.conn_id, chunk.process, chunk.ssl, chunk.time_ns);
  if (c.comm.empty()) c.comm = chunk.comm;
  if (chunk.fd >= 0) c.fd = chunk.fd;
  if (chunk.flags & kChunkPipe) c.pipe = true;
  if (chunk.flags & kChunkPlain) c.plain = true;
  if (chunk.local.family) c.local = chunk.local;
  if (chunk.peer.family) c.peer = chunk.peer;
  const int d = static_cast<int>(chunk.dir);
  // A held write (copied at its entry) that wrote less than asked, or failed and was retried,
  // comes again from where it really stopped: what was delivered already is skipped.
  if (chunk.stream_off < c.next_off[d]) {
    const uint64_t seen = c.next_off[d] - chunk.stream_off;
    if (seen >= chunk.data.size()) {
      stats_.duplicate_bytes += chunk.data.size();
      return;
    }
    TlsChunk rest = chunk;
    rest.stream_off += seen;
    rest.call_off += static_cast<uint32_t>(seen);
    rest.data.remove_prefix(seen);
    stats_.duplicate_bytes += seen;
    on_chunk(rest);
    return;
  }
  if (chunk.stream_off > c.next_off[d]) {
    const uint64_t missing = chunk.stream_off - c.next_off[d];
    c.gap_bytes[d] += missing;
    ++stats_.gaps;
    stats_.gap_bytes += missing;
    out_.on_gap(c, chunk.dir, c.next_off[d], missing, GapReason::kRingbufFull);
  }
  c.next_off[d] = std::max(c.next_off[d], chunk.stream_off + chunk.data.size());
  const auto it = processes_.find(chunk.process);
  out_.on_data(c, it == processes_.end() ? nullptr : &it->second, chunk);
  if (const uint64_t cut = chunk.truncated_bytes()) {
    c.gap_bytes[d] += cut;
    stats_.truncated_bytes += cut;
    out_.on_gap(c, chunk.dir, c.next_off[d], cut, GapReason::kTruncated);
    c.next_off[d] += cut;
  }
}

void Tracker::on_sni(const TlsSni& s) {
  connection(s.conn_id, s.process, s.ssl, s.time_ns).sni = s.sni;
}

void Tracker::on_close(const TlsClose& close) {
  const auto it = conns_.find(close.conn_id);
  if (it == conns_.end()) return;
  Connection& c = it->second;
  // Bytes that the kernel counted past the last chunk we saw were lost at the end.
  const uint64_t total[2] = {close.bytes_out, close.bytes_in};
  for (int d = 0; d < 2; ++d) {
    if (total[d] > c.next_off[d]) {
      const uint64_t missing = total[d] - c.next_off[d];
      c.gap_bytes[d] += missing;
      ++stats_.gaps;
      stats_.gap_bytes += missing;
      out_.on_gap(c, static_cast<Direction>(d), c.next_off[d], missing, GapReason::kRingbufFull);
      c.next_off[d] = total[d];
    }
  }
  out_.on_close(c, close);
  conns_.erase(it);
  stats_.connections_open = conns_.size();
}

void Tracker::on_exit(const ProcessKey& key) {
  processes_.erase(key);
  std::erase_if(conns_, [&](const auto& kv) {
    if (kv.second.process != key) return false;
    out_.on_forget(kv.second);
    return true;
  });
  stats_.processes = processes_.size();
  stats_.connections_open = conns_.size();
}

}  // namespace agentwall::stream
