// DNS responses as a resolver receives them (RFC 1035 wire format, built here byte by byte:
// this machine has no outside resolver to record from; integration.test_coverage runs glibc's
// resolver against a test server for the live path).
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <string>

#include "agent/coverage/dns.h"

using namespace agentwall::coverage;

namespace {

std::string u16(uint16_t v) {
  return {char(v >> 8), char(v & 0xff)};
}

std::string name(const std::string& dotted) {
  std::string out;
  size_t start = 0;
  while (start <= dotted.size()) {
    const size_t dot = dotted.find('.', start);
    const std::string label = dotted.substr(start, dot - start);
    out += char(label.size()) + label;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out + '\0';
}

// A response to one question with `answers` already encoded; RCODE `rcode`.
std::string response(const std::string& qname, uint16_t qtype, uint16_t ancount,
                     const std::string& answers, uint8_t rcode = 0) {
  return u16(0xbeef) + std::string{char(0x81), char(0x80 | rcode)} + u16(1) + u16(ancount) +
         u16(0) + u16(0) + name(qname) + u16(qtype) + u16(1) + answers;
}

// A record whose owner is the question's name by a pointer to offset 12.
std::string rr_ptr(uint16_t type, const std::string& rdata) {
  return std::string{char(0xc0), char(12)} + u16(type) + u16(1) + u16(0) + u16(60) +
         u16(uint16_t(rdata.size())) + rdata;
}

std::string ipv4(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

}  // namespace

TEST_CASE("dns: A and AAAA answers are named by the question, through a CNAME chain") {
  // api.openai.com CNAME api.openai.com.cdn.example (written out), which has two A records
  // (owner: a pointer to the CNAME's target), and one AAAA for the question itself.
  const std::string q = "API.OpenAI.com";
  std::string answers = rr_ptr(5, name("api.openai.com.cdn.example"));
  const size_t target = 12 + name(q).size() + 4 + 12;  // where the CNAME's rdata starts
  const std::string owner{char(0xc0 | (target >> 8)), char(target & 0xff)};
  for (const char* ip : {"104.18.6.192", "104.18.7.192"})
    answers += owner + u16(1) + u16(1) + u16(0) + u16(60) + u16(4) + ipv4(ip);
  in6_addr v6{};
  inet_pton(AF_INET6, "2606:4700::6812:6c0", &v6);
  answers += rr_ptr(28, std::string(reinterpret_cast<const char*>(&v6), 16));
  const auto got = parse_dns_answers(response(q, 1, 4, answers));
  REQUIRE(got.size() == 3);
  char text[INET6_ADDRSTRLEN];
  CHECK(got[0].name == "api.openai.com");
  CHECK(got[0].family == AF_INET);
  CHECK(std::string(inet_ntop(AF_INET, got[0].addr.data(), text, sizeof(text))) == "104.18.6.192");
  CHECK(std::string(inet_ntop(AF_INET, got[1].addr.data(), text, sizeof(text))) == "104.18.7.192");
  CHECK(got[2].family == AF_INET6);
  CHECK(std::string(inet_ntop(AF_INET6, got[2].addr.data(), text, sizeof(text))) ==
        "2606:4700::6812:6c0");
}

TEST_CASE("dns: queries, errors and malformed messages give nothing, safely") {
  const std::string good = response("api.anthropic.com", 1, 1, rr_ptr(1, ipv4("10.0.0.9")));
  CHECK(parse_dns_answers(good).size() == 1);
  std::string query = good;
  query[2] = 0x01;  // QR clear: a query
  CHECK(parse_dns_answers(query).empty());
  CHECK(parse_dns_answers(response("x.example", 1, 1, rr_ptr(1, ipv4("10.0.0.9")), 3)).empty());
  // Every truncation of a good message: no crash, never more than the whole gives.
  for (size_t n = 0; n < good.size(); ++n) CHECK(parse_dns_answers(good.substr(0, n)).empty());
  // A pointer loop in the question: the name is given up, nothing read out of bounds.
  std::string loop = u16(1) + std::string{char(0x81), char(0x80)} + u16(1) + u16(1) + u16(0) +
                     u16(0) + std::string{char(0xc0), char(12)} + u16(1) + u16(1) +
                     rr_ptr(1, ipv4("10.0.0.1"));
  CHECK(parse_dns_answers(loop).empty());
  // An A record with a wrong length is skipped, the next one read.
  const std::string odd = rr_ptr(1, "abc") + rr_ptr(1, ipv4("10.0.0.2"));
  const auto got = parse_dns_answers(response("ok.example", 1, 2, odd));
  REQUIRE(got.size() == 1);
  CHECK(got[0].name == "ok.example");
  // Counts that promise more than the message holds.
  CHECK(parse_dns_answers(response("ok.example", 1, 60000, rr_ptr(1, ipv4("10.0.0.3")))).size() ==
        1);
}
