// The event writer's JSON must parse back to what was written, whatever the text holds.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "agent/common/json_writer.h"

using agentwall::JsonWriter;

TEST_CASE("json writer: strings round-trip through a JSON parser, escapes at every offset") {
  const std::string specials[] = {"\"",   "\\",   "\n", "\r", "\t", std::string(1, '\0'),
                                  "\x1f", "\x7f", "é",  "€",  "😀"};
  for (const auto& sp : specials) {
    for (size_t at = 0; at < 20; ++at) {
      const std::string text = std::string(at, 'a') + sp + std::string(19 - at, 'b');
      std::string out;
      JsonWriter::escape(out, text);
      CHECK(nlohmann::json::parse(out).get<std::string>() == text);
    }
  }
}

TEST_CASE("json writer: invalid UTF-8 becomes U+FFFD and the output stays valid JSON") {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng() % 64, '\0');
    for (char& c : text) c = static_cast<char>(rng());
    std::string out;
    JsonWriter::escape(out, text);
    const auto j = nlohmann::json::parse(out, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
  }
  std::string out;
  JsonWriter::escape(out, "a\xC3(b\xED\xA0\x80");  // bad continuation, surrogate
  CHECK(nlohmann::json::parse(out).get<std::string>() ==
        "a\xEF\xBF\xBD(b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("json writer: objects, arrays, numbers") {
  JsonWriter w;
  w.begin_object().field("a", int64_t(-3)).field("b", uint64_t(18446744073709551615ull));
  w.field("c", 0.125).field("d", true).key("e").null();
  w.key("f").begin_array().value("x").begin_object().end_object().begin_array().end_array();
  w.end_array().end_object();
  const auto j = nlohmann::json::parse(w.str());
  CHECK(j["a"] == -3);
  CHECK(j["b"] == 18446744073709551615ull);
  CHECK(j["c"] == 0.125);
  CHECK(j["d"] == true);
  CHECK(j["e"].is_null());
  CHECK(j["f"].size() == 3);
}
