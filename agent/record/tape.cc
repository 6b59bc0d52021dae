#include "agent/record/tape.h"

namespace agentwall::record {

bool Tape::load(const std::string& path, std::string& error) {
  const ReadResult r = replay_file(path, *this);
  error = r.error;
  return r.ok();
}

void Tape::on_chunk(const TlsChunk& c) {
  OwnedChunk o{c, std::string(c.data), std::string(c.comm)};
  o.chunk.data = {};
  o.chunk.comm = {};
  bytes += o.data.size();
  records.emplace_back(std::move(o));
}

void Tape::play(CaptureSink& sink, uint64_t conn_base, size_t begin, size_t end) const {
  end = std::min(end, records.size());
  for (size_t i = begin; i < end; ++i) {
    const TapeRecord& r = records[i];
    if (const auto* p = std::get_if<ProcessInfo>(&r)) {
      sink.on_process(*p);
    } else if (const auto* o = std::get_if<OwnedChunk>(&r)) {
      TlsChunk c = o->chunk;
      c.data = o->data;
      c.comm = o->comm;
      c.conn_id += conn_base;
      sink.on_chunk(c);
    } else if (const auto* s = std::get_if<TlsSni>(&r)) {
      TlsSni x = *s;
      x.conn_id += conn_base;
      sink.on_sni(x);
    } else if (const auto* cl = std::get_if<TlsClose>(&r)) {
      TlsClose x = *cl;
      x.conn_id += conn_base;
      sink.on_close(x);
    }
  }
}

}  // namespace agentwall::record
