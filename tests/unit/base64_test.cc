#include <doctest/doctest.h>

#include <random>

#include "agent/common/base64.h"

using namespace agentwall;

TEST_CASE("base64: RFC 4648 test vectors") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    CHECK(base64_encode(plain) == encoded);
    CHECK(base64_decode(encoded) == std::optional<std::string>(plain));
  }
}

TEST_CASE("base64: every byte value round-trips") {
  std::mt19937 rng(7);
  for (size_t len = 0; len < 300; ++len) {
    std::string bytes(len, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    CHECK(base64_decode(base64_encode(bytes)) == std::optional<std::string>(bytes));
  }
}

TEST_CASE("base64: malformed input is refused, not guessed") {
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zm9v!A==", "=Zm9", "Zg==Zg==", "Zm=v"}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
}
