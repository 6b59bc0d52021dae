#include "agent/output/sniff_printer.h"

#include <nlohmann/json.hpp>

#include "agent/common/base64.h"
#include "agent/common/time.h"

namespace agentwall::output {
namespace {

using json = nlohmann::ordered_json;

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string tls_data_json(const stream::Connection& conn, const ProcessInfo* process,
                          const TlsChunk& c) {
  json j;
  j["type"] = "tls.data";
  j["time"] = format_rfc3339(c.time_ns);
  j["pid"] = c.process.pid;
  j["tid"] = c.tid;
  j["uid"] = c.uid;
  j["comm"] = std::string(c.comm);
  if (process && !process->exe.empty()) j["exe"] = process->exe;
  if (process && !process->cmdline.empty()) j["cmdline"] = process->cmdline;
  j["cgroup_id"] = c.cgroup_id;
  if (process && !process->cgroup_path.empty()) j["cgroup"] = process->cgroup_path;
  j["conn"] = conn.id;
  j["ssl"] = hex(c.ssl);
  j["fd"] = c.fd;
  j["func"] = std::string(to_string(c.func));
  j["dir"] = std::string(to_string(c.dir));
  j["len"] = c.data.size();
  j["offset"] = c.stream_off;
  j["call_len"] = c.call_len;
  j["call_off"] = c.call_off;
  j["truncated"] = c.truncated();
  if (c.flags & kChunkReadFault) j["read_fault"] = true;
  if (c.local.is_ip()) j["local"] = c.local.to_string();
  if (c.peer.is_ip()) j["peer"] = c.peer.to_string();
  if (!conn.sni.empty()) j["sni"] = conn.sni;
  if (c.flags & kChunkPlain) j["tls"] = false;  // plaintext loopback TCP, not TLS
  if (c.flags & kChunkPipe) j["stdio"] = true;  // stdin/stdout of a watched process
  j["data_b64"] = base64_encode(c.data);
  return dump(j);
}

bool SniffPrinter::selected(const ProcessKey& key, std::string_view comm) const {
  if (filter_.pid && key.pid != *filter_.pid) return false;
  if (filter_.comm && comm != *filter_.comm) return false;
  return true;
}

void SniffPrinter::emit(const std::string& line) {
  if (std::fputs(line.c_str(), out_) < 0 || std::fputc('\n', out_) < 0 || std::fflush(out_) != 0)
    write_failed_ = true;
  ++lines_;
}

void SniffPrinter::on_data(const stream::Connection& conn, const ProcessInfo* process,
                           const TlsChunk& chunk) {
  if (!selected(chunk.process, chunk.comm)) return;
  emit(tls_data_json(conn, process, chunk));
}

void SniffPrinter::on_gap(const stream::Connection& conn, Direction dir, uint64_t offset,
                          uint64_t len, stream::GapReason reason) {
  if (!selected(conn.process, conn.comm)) return;
  json j;
  j["type"] = "tls.gap";
  j["time"] = format_rfc3339(conn.last_ns);
  j["pid"] = conn.process.pid;
  j["conn"] = conn.id;
  j["dir"] = std::string(to_string(dir));
  j["offset"] = offset;
  j["len"] = len;
  j["reason"] = std::string(stream::to_string(reason));
  emit(dump(j));
}

void SniffPrinter::on_close(const stream::Connection& conn, const TlsClose& close) {
  if (!selected(conn.process, conn.comm)) return;
  json j;
  j["type"] = "tls.close";
  j["time"] = format_rfc3339(close.time_ns);
  j["pid"] = conn.process.pid;
  j["conn"] = conn.id;
  j["bytes_out"] = close.bytes_out;
  j["bytes_in"] = close.bytes_in;
  if (!conn.sni.empty()) j["sni"] = conn.sni;
  if (conn.peer.is_ip()) j["peer"] = conn.peer.to_string();
  emit(dump(j));
}

}  // namespace agentwall::output
