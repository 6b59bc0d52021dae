// A small learned text classifier that runs in-process: logistic regression over hashed
// word unigrams, word bigrams and character 4-grams, scored over windows of the text so that
// a short injection inside a long document still stands out. The weights are data
// (agent/detect/data/injection_model.txt), trained by scripts/train_injection_model.py,
// which computes exactly the same features; tests pin that the two agree.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

class NgramModel {
 public:
  static constexpr uint32_t kDimBits = 18;  // 262,144 hashed features
  static constexpr size_t kWindowTokens = 64;
  static constexpr size_t kStrideTokens = 32;
  // Below this probability the model's word is noise (out-of-fold false positives 5%+): no finding.
  static constexpr double kReportFrom = 0.65;

  struct Result {
    double probability = 0;  // of the most suspicious window
    Span window;             // where that window is in the text
  };

  // Parses the text format written by the training script; throws std::runtime_error with
  // the line that is wrong.
  static NgramModel parse(std::string_view data);

  Result score(std::string_view text) const;
  size_t nonzero_weights() const;

  // The features of `text` taken as one window: sorted, unique hash indices. For tests and
  // for checking the training script's featurisation against this one.
  static std::vector<uint32_t> features(std::string_view text);

 private:
  std::vector<float> weights_;
  float bias_ = 0;
  // Which parse() made these weights (0: none): what score() keeps per thread between
  // calls is only reused under the same weights.
  uint64_t id_ = 0;
};

// The model shipped in the binary.
const NgramModel& injection_model();

}  // namespace agentwall::detect
