// Cuts a capture stream down to one process or command name (`agentwall replay --pid/--comm
// --record`): recordings of real traffic become small test fixtures this way.
#pragma once

#include <set>
#include <vector>

#include "agent/capture/chunk.h"

namespace agentwall::record {

// Passes on only what the selected processes did.
class ProcessFilter final : public CaptureSink {
 public:
  ProcessFilter(CaptureSink& next, const ProcessSelector& f) : next_(next), f_(f) {}
  void on_process(const ProcessInfo& p) override {
    if (keep(p.key.pid, p.comm)) next_.on_process(p);
  }
  void on_chunk(const TlsChunk& c) override {
    if (keep(c.process.pid, c.comm)) next_.on_chunk(c);
  }
  void on_sni(const TlsSni& s) override {
    if (f_.pid && s.process.pid != *f_.pid) return;
    // SNI comes before the process's first chunk, which tells its comm: hold it till then.
    if (f_.comm && !kept_pids_.count(s.process.pid)) {
      pending_sni_.push_back(s);
      return;
    }
    next_.on_sni(s);
  }
  void on_close(const TlsClose& c) override {
    if (kept_pids_.count(c.process.pid)) next_.on_close(c);
  }

 private:
  bool keep(uint32_t pid, std::string_view comm) {
    if (f_.pid && pid != *f_.pid) return false;
    if (f_.comm && comm != *f_.comm) return false;
    if (kept_pids_.insert(pid).second) {
      std::erase_if(pending_sni_, [&](const TlsSni& s) {
        if (s.process.pid != pid) return false;
        next_.on_sni(s);
        return true;
      });
    }
    return true;
  }
  std::vector<TlsSni> pending_sni_;
  CaptureSink& next_;
  ProcessSelector f_;
  std::set<uint32_t> kept_pids_;
};

}  // namespace agentwall::record
