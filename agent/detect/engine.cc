#include "agent/detect/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "agent/common/json_writer.h"
#include "agent/detect/hidden.h"
#include "agent/detect/injection.h"
#include "agent/detect/normalize.h"
#include "agent/detect/pii.h"
#include "agent/detect/secrets.h"
#include "agent/detect/unsafe.h"

namespace agentwall::detect {
namespace {

// Severity per detector: how bad the thing is when it is certainly there. A credential
// sent to a model is as bad as it gets; an e-mail address usually is not.
double severity(std::string_view detector) {
  if (detector.starts_with("secret.")) return 0.95;
  // The learned model alone flags (weight >= 0.5) from p = 0.8, where its cross-validated
  // false positives fall under 2% (scripts/train_injection_model.py --cv 5); below that it
  // only adds to what the rules found.
  if (detector == "injection.model") return 0.625;
  if (detector.starts_with("injection.")) return 0.9;
  // Output that would leak data or harm the host if rendered or run.
  if (detector == "unsafe.markdown_exfiltration" || detector == "unsafe.shell_command") return 0.9;
  if (detector == "unsafe.agent_directive") return 0.8;
  // Output that breaks the declared schema: a reliability problem, or a sign the model was
  // steered; reported, but not enough alone to flag.
  if (detector == "schema.violation") return 0.4;
  if (detector == "pii.payment_card" || detector == "pii.us_ssn") return 0.8;
  if (detector == "pii.iban") return 0.7;
  if (detector == "pii.email") return 0.35;
  if (detector == "pii.phone") return 0.3;
  if (detector == "hidden.tag_characters") return 0.85;
  if (detector == "hidden.bidi_control") return 0.5;
  if (detector == "hidden.zero_width") return 0.35;
  return 0.5;
}

constexpr std::string_view kModel = "injection.model";

bool is_hidden_text(const Detector& d) {
  return d.name() == "hidden_text";
}

// Keeps `f` unless the same detector already reported the same place, then the stronger.
void add_unique(std::vector<Finding>& out, Finding&& f) {
  const auto dup = std::find_if(out.begin(), out.end(), [&](const Finding& g) {
    return g.detector == f.detector && !g.spans.empty() && !f.spans.empty() &&
           g.spans[0].begin == f.spans[0].begin;
  });
  if (dup == out.end())
    out.push_back(std::move(f));
  else if (f.confidence > dup->confidence)
    *dup = std::move(f);
}

// The learned model's reading of `seen` with every encoded stretch decoded in place, as the
// reading model sees it once it decodes: "Decode this base64: V2hh..." asks what the base64
// says, and the model, to which the base64 is one unknown word, had judged the request alone
// ("Decode this base64 for me" p 0.85; ordinary prompts so encoded were 95% flagged,
// tests/eval/evasion.py). It replaces the model's reading of the text as written; what the
// decoded text holds on its own is still scanned below. `at`: the encoded stretches' span.
//
// A short decoded text (a Chinese sentence is a few "words" to the model) still leaves the
// request most of the words: "Decode this base64: <a Chinese question>" read in place was p
// 0.83-0.90. So the request is also read alone, without the encoded text, and the weaker of
// the two readings counts: a request of fewer than four words is not scored at all, and a
// longer one that says more than "decode this" is an order either way.
void read_decoded_in_place(const Detector& injection, std::string_view seen,
                           const std::vector<EncodedSegment>& segments, Source source, Span at,
                           std::vector<Finding>& findings) {
  std::string decoded, request;
  size_t from = 0;
  for (const EncodedSegment& seg : segments) {
    if (seg.span.begin < from) continue;
    decoded.append(seen.substr(from, seg.span.begin - from)).append(seg.decoded);
    request.append(seen.substr(from, seg.span.begin - from)).push_back(' ');
    from = seg.span.end;
  }
  decoded.append(seen.substr(from));
  request.append(seen.substr(from));
  const auto model_reading = [&](const std::string& text) -> std::optional<Finding> {
    std::vector<Finding> found;
    injection.scan(text, source, found);
    for (Finding& f : found)
      if (f.detector == kModel) return std::move(f);
    return std::nullopt;
  };
  std::erase_if(findings, [](const Finding& f) { return f.detector == kModel; });
  std::optional<Finding> in_place = model_reading(decoded);
  if (!in_place) return;
  std::optional<Finding> alone = model_reading(request);
  if (!alone) return;
  const bool request_weaker = alone->confidence < in_place->confidence;
  Finding& f = request_weaker ? *alone : *in_place;
  f.spans.assign(1, at);
  f.explanation += request_weaker ? " (the request read without what it encodes)"
                                  : " (with what it encodes decoded in place)";
  findings.push_back(std::move(f));
}

}  // namespace

Engine::Engine() {
  detectors_.push_back(make_secrets_detector());
  detectors_.push_back(make_pii_detector());
  detectors_.push_back(make_hidden_text_detector());
  detectors_.push_back(make_injection_detector());
  detectors_.push_back(make_unsafe_output_detector());
}

Engine::Engine(std::vector<std::unique_ptr<Detector>> detectors)
    : detectors_(std::move(detectors)) {}

double finding_weight(const Finding& f) {
  return std::clamp(f.confidence, 0.0, 1.0) * severity(f.detector);
}

ScanResult Engine::scan(std::string_view text, Source source) const {
  ScanResult r;
  // Hidden-text detection reads the text as sent; every other detector reads the normalised
  // view (NFKC, look-alikes folded, invisible characters gone), so "ｉgnоrе" is "ignore" and
  // "sk-\u200Bproj…" is still a key. Spans are mapped back to the text as sent.
  const Normalized norm = normalize(text);
  const std::string_view seen = view(norm, text);
  for (const auto& d : detectors_) {
    if (is_hidden_text(*d)) {
      d->scan(text, source, r.findings);
      continue;
    }
    std::vector<Finding> found;
    d->scan(seen, source, found);
    for (Finding& f : found) {
      if (norm.changed) {
        // Disguised: the words needed an invisible character removed, a look-alike or a
        // compatibility form folded. Dropped accents alone are how German or French is
        // written ("Schlüssel" read as "Schlussel"), not a disguise.
        bool disguised = false;
        for (Span& sp : f.spans) {
          const Span orig = input_span(norm, text, sp);
          const Normalized piece = normalize(text.substr(orig.begin, orig.end - orig.begin));
          disguised |=
              piece.removed_invisible + piece.folded_compatibility + piece.folded_confusables > 0;
          sp = orig;
        }
        if (disguised) f.explanation += " (disguised with look-alike or invisible characters)";
      }
      r.findings.push_back(std::move(f));
    }
  }
  // Text hidden in base64, hex, %-escapes or rot13 is decoded (once, bounded) and scanned
  // again; what it holds is reported at the encoded run.
  std::vector<EncodedSegment> segments = find_encoded_segments(seen);
  // Only where the model flagged the text as written: its reading decoded in place is there
  // to correct that; what the decoded text says alone is scanned below anyway.
  const bool model_read = std::any_of(r.findings.begin(), r.findings.end(),
                                      [](const Finding& f) { return f.detector == kModel; });
  if (!segments.empty() && model_read) {
    const Span at{segments.front().span.begin, segments.back().span.end};
    for (const auto& d : detectors_)
      if (d->name() == "injection")
        read_decoded_in_place(*d, seen, segments, source,
                              norm.changed ? input_span(norm, text, at) : at, r.findings);
  }
  if (std::string tags = decode_tag_text(text); !tags.empty()) {
    // Tag characters spell ASCII nobody sees: what they spell is scanned like decoded text.
    // U+E0000..U+E007F are F3 A0 80 80..F3 A0 81 BF in UTF-8.
    const size_t first = text.find("\xF3\xA0");
    const size_t last = text.rfind("\xF3\xA0");
    segments.push_back(
        {{first, std::min(text.size(), last + 4)}, "tag characters", std::move(tags)});
  }
  for (const EncodedSegment& seg : segments) {
    const Normalized inner = normalize(seg.decoded);
    const std::string_view decoded = view(inner, seg.decoded);
    const bool in_view = seg.kind != "tag characters";  // tags were found in `text` itself
    const Span at = norm.changed && in_view ? input_span(norm, text, seg.span) : seg.span;
    for (const auto& d : detectors_) {
      if (is_hidden_text(*d)) continue;
      std::vector<Finding> found;
      d->scan(decoded, source, found);
      for (Finding& f : found) {
        f.spans.assign(1, at);
        f.explanation += " (hidden in " + std::string(seg.kind) + ")";
        add_unique(r.findings, std::move(f));
      }
    }
  }
  score_findings(r);
  return r;
}

bool ListedFindings::take(std::string_view where, std::string_view detector) {
  // A text has a handful of detectors with findings: a linear search is the quickest.
  auto it = std::find_if(counts_.begin(), counts_.end(), [&](const Count& c) {
    return c.detector == detector && c.where == where;
  });
  if (it == counts_.end())
    it = counts_.insert(counts_.end(), {std::string(where), std::string(detector)});
  if (it->n >= kListed) {
    ++dropped_;
    return false;
  }
  ++it->n;
  return true;
}

void score_findings(ScanResult& r) {
  r.reasons.clear();
  // Independent evidence adds up: score = 1 - product of (1 - weight), over detectors. More
  // findings of one detector are more of the same evidence, not independent of it: a
  // commit's author and committer e-mail are one piece of personal data found, not two
  // that make an alarm. A detector counts with its strongest finding; the reason says how
  // many it made.
  std::stable_sort(r.findings.begin(), r.findings.end(), [](const Finding& a, const Finding& b) {
    return finding_weight(a) > finding_weight(b);
  });
  double clean = 1.0;
  for (size_t i = 0; i < r.findings.size(); ++i) {
    const Finding& f = r.findings[i];
    const auto same = [&](size_t j) { return r.findings[j].detector == f.detector; };
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = same(j);
    if (seen) continue;
    size_t n = 1;
    for (size_t j = i + 1; j < r.findings.size(); ++j) n += same(j);
    const double w = finding_weight(f);
    clean *= 1.0 - w;
    char buf[96];
    if (n == 1)
      std::snprintf(buf, sizeof(buf), " (weight %.2f)", w);
    else
      std::snprintf(buf, sizeof(buf), " (weight %.2f; %zu findings, counted once)", w, n);
    r.reasons.push_back(f.detector + buf);
  }
  r.score = static_cast<int>(std::lround(100.0 * (1.0 - clean)));
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
