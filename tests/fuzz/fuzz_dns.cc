// DNS responses on hostile bytes (agent/coverage/dns.cc): whatever the message — pointer
// loops, counts beyond its end, labels past its end — the parser must not crash, read out of
// bounds (ASan) or loop, and what it returns is well-formed: names of at most 255 bytes in
// lower case, A records of family AF_INET, AAAA of AF_INET6.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/coverage/dns.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view message(reinterpret_cast<const char*>(data), size);
  for (const agentwall::coverage::DnsAddress& a : agentwall::coverage::parse_dns_answers(message)) {
    if (a.name.empty() || a.name.size() > 255) __builtin_trap();
    for (const char c : a.name)
      if (c >= 'A' && c <= 'Z') __builtin_trap();
    if (a.family != AF_INET && a.family != AF_INET6) __builtin_trap();
  }
  return 0;
}
