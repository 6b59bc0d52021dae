#include "agent/detect/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "agent/common/json_writer.h"
#include "agent/detect/hidden.h"
#include "agent/detect/pii.h"
#include "agent/detect/secrets.h"

namespace agentwall::detect {
namespace {

// Severity per detector: how bad the thing is when it is certainly there. A credential
// sent to a model is as bad as it gets; an e-mail address usually is not.
double severity(std::string_view detector) {
  if (detector.starts_with("secret.")) return 0.95;
  if (detector == "pii.payment_card" || detector == "pii.us_ssn") return 0.8;
  if (detector == "pii.iban") return 0.7;
  if (detector == "pii.email") return 0.35;
  if (detector == "pii.phone") return 0.3;
  if (detector == "hidden.tag_characters") return 0.85;
  if (detector == "hidden.bidi_control") return 0.5;
  if (detector == "hidden.zero_width") return 0.35;
  return 0.5;
}

// The text with invisible characters removed, and for each of its bytes the offset in
// the original, so that findings in it point at the original text. Empty when nothing was
// removed (no second pass needed).
struct Stripped {
  std::string text;
  std::vector<size_t> origin;
};

Stripped strip_with_offsets(std::string_view text) {
  Stripped s;
  s.text = strip_invisible(text, &s.origin);
  if (s.text.size() == text.size()) s = {};
  return s;
}

}  // namespace

Engine::Engine() {
  detectors_.push_back(make_secrets_detector());
  detectors_.push_back(make_pii_detector());
  detectors_.push_back(make_hidden_text_detector());
}

Engine::Engine(std::vector<std::unique_ptr<Detector>> detectors)
    : detectors_(std::move(detectors)) {}

double finding_weight(const Finding& f) {
  return std::clamp(f.confidence, 0.0, 1.0) * severity(f.detector);
}

ScanResult Engine::scan(std::string_view text, Source source) const {
  ScanResult r;
  for (const auto& d : detectors_) d->scan(text, source, r.findings);
  // Again on the text without invisible characters: "sk-\u200Bproj…" is still a key.
  const Stripped s = strip_with_offsets(text);
  if (!s.text.empty()) {
    std::vector<Finding> more;
    for (const auto& d : detectors_) {
      if (d->name() != "hidden_text") d->scan(s.text, source, more);
    }
    for (Finding& f : more) {
      for (Span& sp : f.spans) {
        sp.begin = s.origin[std::min(sp.begin, s.origin.size() - 1)];
        sp.end = sp.end == 0 ? 0 : s.origin[std::min(sp.end - 1, s.origin.size() - 1)] + 1;
      }
      const bool dup = std::any_of(r.findings.begin(), r.findings.end(), [&](const Finding& g) {
        return g.detector == f.detector && !g.spans.empty() && !f.spans.empty() &&
               g.spans[0].begin == f.spans[0].begin;
      });
      if (dup) continue;
      f.explanation += " (hidden by invisible characters)";
      r.findings.push_back(std::move(f));
    }
  }
  // Independent evidence adds up: score = 1 - product of (1 - weight).
  std::stable_sort(r.findings.begin(), r.findings.end(), [](const Finding& a, const Finding& b) {
    return finding_weight(a) > finding_weight(b);
  });
  double clean = 1.0;
  for (const Finding& f : r.findings) {
    const double w = finding_weight(f);
    clean *= 1.0 - w;
    char buf[64];
    std::snprintf(buf, sizeof(buf), " (weight %.2f)", w);
    r.reasons.push_back(f.detector + buf);
  }
  r.score = static_cast<int>(std::lround(100.0 * (1.0 - clean)));
  return r;
}

std::string scan_result_json(const ScanResult& r, int threshold) {
  JsonWriter w;
  w.begin_object();
  w.field("score", int64_t(r.score)).field("flagged", r.score >= threshold);
  w.key("findings").begin_array();
  for (const Finding& f : r.findings) {
    w.begin_object();
    w.field("detector", f.detector).field("category", to_string(f.category));
    w.field("confidence", f.confidence);
    w.key("spans").begin_array();
    for (const Span& s : f.spans) {
      w.begin_array().value(uint64_t(s.begin)).value(uint64_t(s.end)).end_array();
    }
    w.end_array();
    w.field("explanation", f.explanation);
    w.end_object();
  }
  w.end_array();
  w.key("reasons").begin_array();
  for (const auto& reason : r.reasons) w.value(reason);
  w.end_array();
  w.end_object();
  return w.take();
}

}  // namespace agentwall::detect
