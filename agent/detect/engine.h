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

// What an event lists of one text's findings: at most kListed of each detector (a customer
// list of 40 000 e-mail addresses made 40 000 findings, a 6 MB event), the rest counted.
// The score and the masks are made from all of them; only the listing is bounded.
class ListedFindings {
 public:
  static constexpr size_t kListed = 32;
  // Whether the next finding of `detector` in the text `where` is listed; counts it if not.
  // Findings come strongest first, so the listed ones are the most confident.
  bool take(std::string_view where, std::string_view detector);
  size_t dropped() const { return dropped_; }

 private:
  struct Count {
    std::string where, detector;
    size_t n = 0;
  };
  std::vector<Count> counts_;
  size_t dropped_ = 0;
};

// `agentwall scan`'s output line: {"score":N,"flagged":bool,"findings":[…]}: every finding.
std::string scan_result_json(const ScanResult& r, int threshold);

}  // namespace agentwall::detect
