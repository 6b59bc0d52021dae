// The detection engine: runs every detector over a text and scores the result. One engine
// is built once and shared (scan() is const and thread-safe).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

struct ScanResult {
  int score = 0;  // 0..100
  std::vector<Finding> findings;
  std::vector<std::string> reasons;  // what made the score, strongest first
};

class Engine {
 public:
  Engine();  // every built-in detector
  explicit Engine(std::vector<std::unique_ptr<Detector>> detectors);

  ScanResult scan(std::string_view text, Source source) const;

 private:
  std::vector<std::unique_ptr<Detector>> detectors_;
};

// How much one finding weighs (0..1): its confidence times its detector's severity.
double finding_weight(const Finding& f);

// Sorts `r.findings` strongest first and sets `r.score` and `r.reasons` from them: what
// scan() does last, for callers that gather findings from several texts into one result.
void score_findings(ScanResult& r);

// `agentwall scan`'s output line: {"score":N,"flagged":bool,"findings":[…]}.
std::string scan_result_json(const ScanResult& r, int threshold);

}  // namespace agentwall::detect
