#include "agent/llm/tokenizer/tokenizer.h"

#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

using namespace agentwall::llm;

namespace {

constexpr Encoding kEncodings[] = {Encoding::kO200kBase, Encoding::kCl100kBase};

// Token ids from js-tiktoken (scripts/tokenizer-data-expected.mjs).
const nlohmann::json& expected() {
  static const nlohmann::json json = [] {
    std::ifstream in(AGENTWALL_FIXTURES "/tokenizer/expected.json");
    REQUIRE(in);
    return nlohmann::json::parse(in);
  }();
  return json;
}

}  // namespace

TEST_CASE("tokenizer: token ids match js-tiktoken on both encodings") {
  const auto& cases = expected().at("cases");
  REQUIRE(cases.size() > 100);
  for (const auto& c : cases) {
    const auto text = c.at("text").get<std::string>();
    for (Encoding enc : kEncodings) {
      CAPTURE(c.at("name").get<std::string>());
      CAPTURE(to_string(enc));
      const auto want = c.at(std::string(to_string(enc))).get<std::vector<uint32_t>>();
      CHECK(encode(text, enc) == want);
      CHECK(count_tokens(text, enc) == want.size());
    }
  }
}

TEST_CASE("tokenizer: known counts") {
  CHECK(count_tokens("", Encoding::kO200kBase) == 0);
  CHECK(count_tokens("hello world", Encoding::kO200kBase) == 2);
  CHECK(encode("1234567", Encoding::kCl100kBase) == std::vector<uint32_t>{4513, 10961, 22});
  // Special tokens are plain text: "<|endoftext|>" is several tokens, not 100257.
  CHECK(count_tokens("<|endoftext|>", Encoding::kCl100kBase) > 1);
}

TEST_CASE("tokenizer: bytes that are not UTF-8 still count, without error") {
  const std::string cases[] = {
      "\xff",
      "abc\xff\xfe def",
      "h\xc3",                 // a two-byte character cut after its first byte
      "\xe6\x97\xa5\xe6\x9c",  // CJK cut mid-character
      "\xc0\x80 overlong \xed\xa0\x80 surrogate \xf4\x90\x80\x80 too high",
      std::string("nul\0byte", 8),
  };
  for (const auto& text : cases) {
    for (Encoding enc : kEncodings) {
      CAPTURE(text);
      const size_t n = count_tokens(text, enc);
      CHECK(n >= 1);
      CHECK(n <= text.size());
      CHECK(encode(text, enc).size() == n);
    }
  }
  // Random binary: every byte lands in some token.
  std::mt19937 rng(11);
  std::string noise(64 * 1024, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  for (Encoding enc : kEncodings) {
    const size_t n = count_tokens(noise, enc);
    CHECK(n > noise.size() / 4);
    CHECK(n <= noise.size());
  }
}

TEST_CASE("tokenizer: long single-class runs are counted in reasonable time") {
  for (char c : {'a', ' ', '7', '!', '\n'}) {
    const std::string run(256 << 10, c);
    for (Encoding enc : kEncodings) {
      CAPTURE(c);
      const size_t n = count_tokens(run, enc);
      CHECK(n >= 1);
      CHECK(n <= run.size() / 2);
    }
  }
}

TEST_CASE("tokenizer: concurrent first use from many threads agrees") {
  const std::string text = "Concurrent tokenization of the same text, pas de probl\xc3\xa8me.";
  std::vector<size_t> counts(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < counts.size(); ++i) {
    threads.emplace_back([&, i] { counts[i] = count_tokens(text, kEncodings[i % 2]); });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < counts.size(); ++i) {
    CHECK(counts[i] == count_tokens(text, kEncodings[i % 2]));
  }
}

TEST_CASE("tokenizer: encoding for model") {
  for (const char* m : {"gpt-4o", "gpt-4o-mini-2024-07-18", "gpt-4.1-nano", "gpt-4.5-preview",
                        "gpt-5", "o1-mini", "o3", "o4-mini", "chatgpt-4o-latest", "GPT-4O",
                        "openai/gpt-4o", "ft:gpt-4o-mini:org::abc"}) {
    CAPTURE(m);
    CHECK(encoding_for_model(m) == Encoding::kO200kBase);
  }
  for (const char* m :
       {"gpt-4", "gpt-4-0613", "gpt-4-turbo", "gpt-4-32k", "gpt-3.5-turbo", "gpt-35-turbo",
        "text-embedding-3-small", "text-embedding-ada-002", "ft:gpt-3.5-turbo-0125:org::x"}) {
    CAPTURE(m);
    CHECK(encoding_for_model(m) == Encoding::kCl100kBase);
  }
  // Not OpenAI: o200k_base as an approximation.
  for (const char* m : {"claude-3-5-sonnet-20241022", "gemini-1.5-pro", "llama-3.1-70b",
                        "mistral-large", "", "unknown"}) {
    CAPTURE(m);
    CHECK(encoding_for_model(m) == Encoding::kO200kBase);
  }
  CHECK(to_string(Encoding::kO200kBase) == "o200k_base");
  CHECK(to_string(Encoding::kCl100kBase) == "cl100k_base");
}
