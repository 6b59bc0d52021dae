#include "agent/stream/event_json.h"

namespace agentwall::stream {

void process_json(JsonWriter& w, const ProcessInfo& p) {
  w.begin_object();
  w.field("pid", p.key.pid).field("start_ns", p.key.start_ns).field("comm", p.comm);
  if (p.complete) {
    w.field("ppid", p.ppid).field("uid", p.uid).field("exe", p.exe).field("cmdline", p.cmdline);
    if (!p.cgroup_path.empty()) w.field("cgroup", p.cgroup_path);
  }
  w.end_object();
}

void connection_json(JsonWriter& w, const stream::Connection& c) {
  w.begin_object();
  w.field("id", c.id);
  if (c.local.is_ip()) w.field("local", c.local.to_string());
  if (c.peer.is_ip()) w.field("peer", c.peer.to_string());
  if (!c.sni.empty()) w.field("sni", c.sni);
  if (c.plain) w.field("tls", false);
  if (c.fd >= 0) w.field("fd", int64_t(c.fd));
  w.end_object();
}

}  // namespace agentwall::stream
