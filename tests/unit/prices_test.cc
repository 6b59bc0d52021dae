// The price table: the built-in file parses, lookups find dated variants, errors say where.
#include <doctest/doctest.h>

#include "agent/llm/prices.h"

using namespace agentwall::llm;

TEST_CASE("prices: the built-in table loads and prices dated and prefixed model names") {
  const PriceTable& t = PriceTable::builtin();
  CHECK(t.size() > 30);
  CHECK_FALSE(t.date().empty());
  REQUIRE(t.find("gpt-4o-mini-2024-07-18"));
  CHECK(t.find("gpt-4o-mini-2024-07-18")->name == "gpt-4o-mini");
  CHECK(t.find("gpt-4o-2024-08-06")->name == "gpt-4o");  // not gpt-4o-mini, not gpt-4
  CHECK(t.find("models/gemini-2.0-flash")->name == "gemini-2.0-flash");
  CHECK(t.find("claude-3-5-haiku-20241022")->name == "claude-3-5-haiku");
  CHECK(t.find("GPT-4O-MINI")->name == "gpt-4o-mini");
  CHECK_FALSE(t.find("gpt-4omni"));  // a prefix must end at a separator
  CHECK_FALSE(t.find("llama3.2"));
  CHECK(t.free_provider("ollama"));
  CHECK_FALSE(t.free_provider("openai"));
}

TEST_CASE("prices: cost from normalised usage, cache reads and writes at their own prices") {
  const ModelPrice p{"m", 3.0, 15.0, 0.30, 3.75};
  // 1,000 input of which 600 cache reads and 100 cache writes; 200 output.
  const Cost c = price_call(p, 1000, 200, 600, 100);
  CHECK(c.input_usd == doctest::Approx(300 * 3.0 / 1e6));
  CHECK(c.cache_usd == doctest::Approx((600 * 0.30 + 100 * 3.75) / 1e6));
  CHECK(c.output_usd == doctest::Approx(200 * 15.0 / 1e6));
  CHECK(c.usd == doctest::Approx(c.input_usd + c.cache_usd + c.output_usd));
}

TEST_CASE("prices: an override file replaces and adds; bad files say file, line, column") {
  PriceTable t = PriceTable::builtin();
  PriceTable extra;
  std::string error;
  REQUIRE(
      extra.load("date: '2030-01-01'\nmodels:\n  gpt-4o-mini: {input: 1, output: 2}\n"
                 "  my-model: {input: 0.5}\n",
                 "override.yaml", error));
  t.merge(extra);
  CHECK(t.find("gpt-4o-mini")->input == 1);
  CHECK(t.find("my-model")->output == 0);
  CHECK(t.date() == "2030-01-01");
  CHECK_FALSE(extra.load("models:\n  x: {input: cheap}\n", "bad.yaml", error));
  CHECK(error.starts_with("bad.yaml:2:"));
  CHECK_FALSE(extra.load("models:\n  x: {output: 1}\n", "bad.yaml", error));
  CHECK(error.find("no 'input' price") != std::string::npos);
  CHECK_FALSE(extra.load("models: [\n", "bad.yaml", error));
  CHECK(error.find("not valid YAML") != std::string::npos);
}
