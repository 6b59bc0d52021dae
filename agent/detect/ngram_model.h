// A small learned text classifier that runs in-process: logistic regression over hashed
// word unigrams, word bigrams and character 4-grams, scored over windows of the text so that
// a short injection inside a long document still stands out. Each feature weighs what a
// table shared by all text gives it plus what the table of the text's view gives it: a
// prompt (a user's or system message) or content handed to the model (a tool's result or
// description), since "write a poem about the sea" is a user's request in a prompt and a
// planted one in a fetched page. The weights are data
// (agent/detect/data/injection_model.txt), trained by scripts/train_injection_model.py,
// which computes exactly the same features; tests pin that the two agree.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

// The words of a text as the model reads them: runs of ASCII letters and digits, or of bytes
// outside ASCII (other scripts make words too), "example" left out; with the hash of each
// (FNV-1a of its lowercase bytes) and which kinds of byte it holds. Read once per text: the
// disguise check (disguise.h) looks at the same words.
struct TextWords {
  struct Word {
    size_t begin, end;
  };
  enum Kind : uint8_t { kLetters = 1, kLeetDigits = 2, kOtherDigits = 4, kNonAscii = 8 };
  std::vector<Word> words;
  std::vector<uint32_t> hashes;
  std::vector<uint8_t> kinds;  // Kind bits
  // code_gaps[t]: whether the bytes between word t and word t+1 are code's: a bracket, an
  // operator or a quote mark of code ("(", "=", ";", "<", "`"), or, with no space among
  // them, member access, a scope, a path or a name's underscore ("this.pos", "std::", "a/b",
  // "snake_case"). Prose's are spaces, and punctuation followed by a space.
  std::vector<uint8_t> code_gaps;

  static constexpr uint32_t kHashBasis = 2166136261u;
  static constexpr uint32_t kHashPrime = 16777619u;
  // A word's entry in `hashes`, from its lowercase bytes: FNV-1a, 32 bits.
  static constexpr uint32_t hash(std::string_view lowercase) {
    uint32_t h = kHashBasis;
    for (char c : lowercase) h = (h ^ uint8_t(c)) * kHashPrime;
    return h;
  }
};
// `text`'s words into `out` (cleared first; its buffers are reused).
void read_words(std::string_view text, TextWords& out);

class NgramModel {
 public:
  static constexpr uint32_t kDimBits = 20;  // 1,048,576 hashed features
  static constexpr size_t kWindowTokens = 64;
  static constexpr size_t kStrideTokens = 32;
  // Gaps in a row, none of them code's, that make a window of code a window with a sentence
  // in it, which is read (score()).
  static constexpr size_t kProseRun = 6;
  // Below this probability the model's word is noise (out-of-fold false positives 5%+): no finding.
  static constexpr double kReportFrom = 0.65;

  // Which view's weights score a text.
  enum class View : uint8_t { kPrompt, kContent };

  struct Result {
    double probability = 0;  // of the most suspicious window
    Span window;             // where that window is in the text
  };

  // Parses the text format written by the training script; throws std::runtime_error with
  // the line that is wrong.
  static NgramModel parse(std::string_view data);

  Result score(std::string_view text, View view) const;
  // The same, with the words of `text` already read (read_words).
  Result score(std::string_view text, const TextWords& words, View view) const;
  size_t nonzero_weights() const;

  // The features of `text` taken as one window: sorted, unique hash indices. For tests and
  // for checking the training script's featurisation against this one.
  static std::vector<uint32_t> features(std::string_view text);

 private:
  // Per view: each feature's shared weight plus the view's own, added up once at parse
  // time, so scoring looks up one table as a model without views would.
  std::array<std::vector<float>, 2> weights_;
  size_t nonzero_ = 0;  // weights in the data, all tables
  float bias_ = 0;
  // Which parse() made these weights (0: none): what score() keeps per thread between
  // calls is only reused under the same weights.
  uint64_t id_ = 0;
};

// The model shipped in the binary.
const NgramModel& injection_model();

}  // namespace agentwall::detect
