// DNS responses, read for the addresses they give names to (coverage view): a resolver's
// answer "api.openai.com is 104.18.6.192" names that address for every process that connects
// to it next. Pure and bounds-checked: a malformed or hostile message gives what could be read
// before the fault, never an out-of-bounds read or a loop.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::coverage {

struct DnsAddress {
  std::string name;                // the question's name, lower case, no trailing dot
  uint16_t family = 0;             // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};  // IPv4 in the first 4 bytes
};

// The A and AAAA records of a response (QR set, RCODE 0), each named by the question it
// answers (through any CNAME chain: the question's name, not the CDN's).
std::vector<DnsAddress> parse_dns_answers(std::string_view message);

}  // namespace agentwall::coverage
