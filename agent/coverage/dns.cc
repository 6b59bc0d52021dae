#include "agent/coverage/dns.h"

#include <sys/socket.h>

#include <cstring>

namespace agentwall::coverage {
namespace {

constexpr size_t kHeader = 12;
constexpr int kMaxPointers = 16;       // compression pointers followed per name
constexpr uint16_t kMaxRecords = 256;  // questions or answers read per message

struct Reader {
  std::string_view m;
  size_t pos = kHeader;
  bool ok = true;

  uint16_t u16() {
    if (pos + 2 > m.size()) {
      ok = false;
      return 0;
    }
    const uint16_t v = uint16_t(uint8_t(m[pos]) << 8 | uint8_t(m[pos + 1]));
    pos += 2;
    return v;
  }

  // A (possibly compressed) name at `pos`; `pos` moves past it in the message.
  std::string name() {
    std::string out;
    size_t at = pos;
    bool jumped = false;
    for (int pointers = 0;;) {
      if (at >= m.size()) {
        ok = false;
        return out;
      }
      const uint8_t len = uint8_t(m[at]);
      if (len == 0) {
        if (!jumped) pos = at + 1;
        return out;
      }
      if ((len & 0xc0) == 0xc0) {
        if (at + 1 >= m.size() || ++pointers > kMaxPointers) {
          ok = false;
          return out;
        }
        if (!jumped) pos = at + 2;
        jumped = true;
        at = size_t(len & 0x3f) << 8 | uint8_t(m[at + 1]);
        continue;
      }
      if ((len & 0xc0) != 0 || at + 1 + len > m.size() || out.size() + len + 1 > 255) {
        ok = false;
        return out;
      }
      if (!out.empty()) out.push_back('.');
      for (size_t i = 0; i < len; ++i) {
        char c = m[at + 1 + i];
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
        out.push_back(c);
      }
      at += 1 + len;
    }
  }
};

}  // namespace

std::vector<DnsAddress> parse_dns_answers(std::string_view message) {
  std::vector<DnsAddress> out;
  if (message.size() < kHeader) return out;
  const uint8_t flags_hi = uint8_t(message[2]), flags_lo = uint8_t(message[3]);
  if (!(flags_hi & 0x80) || (flags_lo & 0x0f) != 0) return out;  // not a response, or an error
  Reader r{message};
  r.pos = 4;
  const uint16_t qd = r.u16(), an = r.u16();
  r.pos = kHeader;
  std::string question;
  for (uint16_t i = 0; i < qd && i < kMaxRecords && r.ok; ++i) {
    std::string q = r.name();
    r.u16();  // type
    r.u16();  // class
    if (i == 0) question = std::move(q);
  }
  if (!r.ok || question.empty()) return out;
  for (uint16_t i = 0; i < an && i < kMaxRecords && r.ok; ++i) {
    r.name();  // the owner: the question's name or a CNAME target on its chain
    const uint16_t type = r.u16();
    const uint16_t klass = r.u16();
    r.u16();  // TTL, two halves
    r.u16();
    const uint16_t rdlen = r.u16();
    if (!r.ok || r.pos + rdlen > message.size()) break;
    const bool a = type == 1 && rdlen == 4, aaaa = type == 28 && rdlen == 16;
    if (klass == 1 && (a || aaaa)) {
      DnsAddress d;
      d.name = question;
      d.family = a ? AF_INET : AF_INET6;
      std::memcpy(d.addr.data(), message.data() + r.pos, rdlen);
      out.push_back(std::move(d));
    }
    r.pos += rdlen;
  }
  return out;
}

}  // namespace agentwall::coverage
