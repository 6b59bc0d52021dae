// The server name in a TLS ClientHello (agent/coverage/client_hello.h), on the first bytes real
// clients wrote to a TCP listener on 127.0.0.1 (tests/fixtures/tls/*.hex, recorded with each
// client's own TLS stack: curl and Python with OpenSSL 3, gnutls-cli, Go's crypto/tls), and on
// every cut and corruption of them.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "agent/coverage/client_hello.h"

using namespace agentwall::coverage;

namespace {

std::string hello(const std::string& name) {
  std::ifstream f(std::string(AGENTWALL_FIXTURES) + "/tls/" + name + ".hex");
  REQUIRE(f.good());
  std::string hex;
  f >> hex;
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    bytes.push_back(char(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return bytes;
}

}  // namespace

TEST_CASE("client hello: the server name each real client sent") {
  const struct {
    const char* fixture;
    const char* sni;
  } cases[] = {
      {"curl-api.openai.com", "api.openai.com"},
      {"python-api.anthropic.com", "api.anthropic.com"},
      {"gnutls-cli-generativelanguage.googleapis.com", "generativelanguage.googleapis.com"},
      {"go-api.openai.com", "api.openai.com"},
      {"curl-ip-literal", ""},  // an address: no server_name extension
  };
  for (const auto& c : cases) {
    CAPTURE(c.fixture);
    const std::string h = hello(c.fixture);
    CHECK(looks_like_client_hello(h));
    CHECK(client_hello_sni(h) == c.sni);
  }
}

TEST_CASE("client hello: cut anywhere, or any byte changed, it never reads out of bounds") {
  const std::string h = hello("curl-api.openai.com");
  // Cut: nothing until the name is whole, then the name.
  size_t first_whole = 0;
  for (size_t n = 0; n <= h.size(); ++n) {
    const std::string sni = client_hello_sni(std::string_view(h).substr(0, n));
    CHECK((sni.empty() || sni == "api.openai.com"));
    if (!sni.empty() && !first_whole) first_whole = n;
  }
  CHECK(first_whole > 0);
  CHECK(first_whole < h.size());
  // Each byte set to 0x00 and 0xff in turn: a name, or nothing, and only plausible names.
  for (size_t i = 0; i < h.size(); ++i) {
    for (const char v : {'\x00', '\xff'}) {
      std::string bad = h;
      bad[i] = v;
      const std::string sni = client_hello_sni(bad);
      for (const char ch : sni)
        CHECK(((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
               ch == '_'));
    }
  }
}

TEST_CASE("client hello: other first bytes are not taken for one") {
  CHECK_FALSE(looks_like_client_hello("GET / HTTP/1.1\r\n"));
  CHECK_FALSE(looks_like_client_hello("\x16\x03\x01"));
  CHECK(client_hello_sni("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").empty());
  CHECK(client_hello_sni("").empty());
  // A ServerHello (handshake type 2) is not a ClientHello.
  std::string h = hello("curl-api.openai.com");
  h[5] = 2;
  CHECK(client_hello_sni(h).empty());
}
