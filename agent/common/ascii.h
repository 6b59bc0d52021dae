// ASCII character classes for byte-wise scanners: locale-free, never true for bytes of
// UTF-8 sequences, and cheap enough to inline in hot loops (<cctype> is none of these).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace agentwall::ascii {

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
constexpr bool is_lower(char c) {
  return c >= 'a' && c <= 'z';
}
constexpr bool is_alpha(char c) {
  return is_upper(c) || is_lower(c);
}
constexpr bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}
constexpr bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr char lower(char c) {
  return is_upper(c) ? char(c - 'A' + 'a') : c;
}

// Length of the ASCII prefix of p[0, n). Sixteen bytes a step: ASCII is most of what the
// scanners that look for multi-byte characters see, and the whole of it is skipped here.
inline size_t ascii_prefix(const char* p, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint64_t a, b;
    std::memcpy(&a, p + i, 8);
    std::memcpy(&b, p + i + 8, 8);
    if ((a | b) & 0x8080808080808080ull) break;
  }
  while (i < n && static_cast<unsigned char>(p[i]) < 0x80) ++i;
  return i;
}

}  // namespace agentwall::ascii
