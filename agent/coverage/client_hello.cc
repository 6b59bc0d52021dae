#include "agent/coverage/client_hello.h"

#include <algorithm>
#include <cstdint>

namespace agentwall::coverage {
namespace {

// Reads big-endian fields from a bounded view; any read past the end fails for good.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool ok() const { return ok_; }
  size_t left() const { return ok_ ? b_.size() - at_ : 0; }
  uint32_t u(size_t n) {  // an n-byte (1..3) unsigned integer
    if (!ok_ || left() < n) return fail();
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | uint8_t(b_[at_ + i]);
    at_ += n;
    return v;
  }
  void skip(size_t n) {
    if (!ok_ || left() < n) {
      fail();
      return;
    }
    at_ += n;
  }
  // The next n bytes as a reader of their own (and skipped here).
  Reader sub(size_t n) {
    if (!ok_ || left() < n) {
      fail();
      return Reader({});
    }
    Reader r(b_.substr(at_, n));
    at_ += n;
    return r;
  }
  std::string_view take(size_t n) {
    if (!ok_ || left() < n) {
      fail();
      return {};
    }
    std::string_view v = b_.substr(at_, n);
    at_ += n;
    return v;
  }

 private:
  uint32_t fail() {
    ok_ = false;
    return 0;
  }
  std::string_view b_;
  size_t at_ = 0;
  bool ok_ = true;
};

constexpr uint8_t kHandshake = 22;
constexpr uint8_t kClientHello = 1;
constexpr uint16_t kServerName = 0;
constexpr uint8_t kHostName = 0;

std::string dns_name(std::string_view raw) {
  if (raw.empty() || raw.size() > 253) return {};
  std::string name;
  name.reserve(raw.size());
  for (char c : raw) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) return {};
    name.push_back(c);
  }
  return name;
}

}  // namespace

bool looks_like_client_hello(std::string_view b) {
  return b.size() >= 6 && uint8_t(b[0]) == kHandshake && uint8_t(b[1]) == 3 &&
         uint8_t(b[5]) == kClientHello;
}

std::string client_hello_sni(std::string_view record) {
  if (!looks_like_client_hello(record)) return {};
  Reader rec(record);
  rec.skip(3);  // content type, legacy version
  // A ClientHello larger than the bytes at hand (or split over records) is read as far as it
  // goes: the name is usually early, and a cut read simply finds nothing.
  const size_t record_len = rec.u(2);
  Reader hs = rec.sub(std::min(record_len, rec.left()));
  hs.skip(1);  // handshake type
  const size_t body_len = hs.u(3);
  Reader hello = hs.sub(std::min(body_len, hs.left()));
  hello.skip(2 + 32);      // legacy version, random
  hello.skip(hello.u(1));  // legacy session id
  hello.skip(hello.u(2));  // cipher suites
  hello.skip(hello.u(1));  // compression methods
  const size_t ext_len = hello.u(2);
  Reader exts = hello.sub(std::min(ext_len, hello.left()));
  while (exts.ok() && exts.left() >= 4) {
    const uint32_t type = exts.u(2);
    const uint32_t len = exts.u(2);
    Reader ext = exts.sub(len);
    if (!exts.ok()) return {};
    if (type != kServerName) continue;
    Reader list = ext.sub(ext.u(2));
    while (list.ok() && list.left() >= 3) {
      const uint32_t kind = list.u(1);
      const std::string_view name = list.take(list.u(2));
      if (list.ok() && kind == kHostName) return dns_name(name);
    }
    return {};
  }
  return {};
}

}  // namespace agentwall::coverage
