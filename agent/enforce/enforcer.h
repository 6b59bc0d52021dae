// The enforcement stage: carries out a verdict on a write the kernel gate holds (the process
// stopped at the entry of SSL_write, see bpf/tls.bpf.c). Not pure: it signals, traces and
// writes into other processes. Only ever called for holds, which only gated processes make.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/capture/chunk.h"

namespace agentwall::enforce {

enum class Verdict : uint8_t { kAllow, kBlock, kRedact, kKill };
std::string_view to_string(Verdict v);

// Bytes of the held buffer to overwrite, relative to its start.
struct Mask {
  uint32_t offset = 0;
  uint32_t len = 0;
};

struct Outcome {
  bool ok = false;
  Verdict done = Verdict::kAllow;  // what was really done (a block may end as a kill, …)
  std::string how;                 // one sentence: what was done to the process
  std::string error;               // why the verdict could not be carried out as asked
  double latency_us = 0;           // from the kernel's hold to the process resumed
};

// Carries verdicts out on held processes. Each call resumes (or kills) the held process
// exactly once.
class Actuator {
 public:
  virtual ~Actuator() = default;
  virtual Outcome allow(const TlsHold&) = 0;
  virtual Outcome block(const TlsHold&) = 0;
  virtual Outcome redact(const TlsHold&, const std::vector<Mask>&, char fill) = 0;
  virtual Outcome kill(const TlsHold&) = 0;
};

// The real one (enforcer.cc, linked with the kernel-facing stages).
class Enforcer final : public Actuator {
 public:
  // `issued(pid)`: how many holds the kernel has issued for the process so far. A process is
  // resumed only when every one of them is decided (SIGCONT resumes all its threads).
  explicit Enforcer(std::function<uint64_t(uint32_t)> issued = nullptr)
      : issued_(std::move(issued)) {}
  ~Enforcer() override;  // resumes every process it still holds
  Enforcer(const Enforcer&) = delete;
  Enforcer& operator=(const Enforcer&) = delete;

  Outcome allow(const TlsHold& h) override;
  // The write never runs: the call returns failure (-1, or 0 for SSL_write_ex) to its caller
  // without sending a byte; the process lives on. Falls back to shutting the socket down
  // (pidfd_getfd) when the registers cannot be set.
  Outcome block(const TlsHold& h) override;
  // Overwrites `masks` in the buffer with `fill` (same length), then resumes.
  Outcome redact(const TlsHold& h, const std::vector<Mask>& masks, char fill) override;
  Outcome kill(const TlsHold& h) override;

  // Resumes every process still held (agent stopping).
  void release_all();
  // Resumes processes whose other holds never came (lost) after `max_wait_ms`.
  void tick(double max_wait_ms = 100);
  size_t held() const;

 private:
  int pidfd_for(const TlsHold& h, std::string& error);
  void resume(const TlsHold& h, Outcome& out);
  bool fail_length(const TlsHold& h, std::string& error);
  bool return_early(const TlsHold& h, std::string& error);
  // Shuts the connection's socket down through a duplicate (pidfd_getfd); `fd` is the
  // process's descriptor that was used.
  bool shutdown_socket(const TlsHold& h, int& fd, std::string& error);

  struct Held {
    int pidfd = -1;
    uint64_t waiting_since = 0;  // unix ns: decided, but a later hold is still coming; 0 = not
  };
  std::function<uint64_t(uint32_t)> issued_;
  std::unordered_map<uint32_t, Held> held_;  // by pid
};

}  // namespace agentwall::enforce
