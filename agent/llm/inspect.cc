#include "agent/llm/inspect.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "agent/detect/pii.h"
#include "agent/detect/schema.h"
#include "agent/detect/secrets.h"
#include "agent/llm/stage.h"

namespace agentwall::llm {
namespace {

std::vector<std::unique_ptr<detect::Detector>> masking_detectors() {
  std::vector<std::unique_ptr<detect::Detector>> d;
  d.push_back(detect::make_secrets_detector());
  d.push_back(detect::make_pii_detector());
  return d;
}

bool masked_category(detect::Category c) {
  return c == detect::Category::kSecret || c == detect::Category::kPii;
}

void add_redactions(Inspection& out, const std::string& where, const detect::ScanResult& r,
                    size_t text_size) {
  std::vector<Redaction>* list = nullptr;
  for (const detect::Finding& f : r.findings) {
    if (!masked_category(f.category)) continue;
    if (!list) list = &out.redactions[where];
    for (const detect::Span& s : f.spans) {
      if (s.begin < s.end && s.end <= text_size) list->push_back({s.begin, s.end, f.detector});
    }
  }
  if (!list) return;
  // Sorted and merged, so the writer can replace them left to right.
  std::sort(list->begin(), list->end(),
            [](const Redaction& a, const Redaction& b) { return a.begin < b.begin; });
  std::vector<Redaction> merged;
  for (Redaction& x : *list) {
    if (!merged.empty() && x.begin < merged.back().end) {
      merged.back().end = std::max(merged.back().end, x.end);
    } else {
      merged.push_back(std::move(x));
    }
  }
  *list = std::move(merged);
}

bool is_model_turn(const std::string& role) {
  return role == "assistant" || role == "model";
}

}  // namespace

std::string message_where(size_t index) {
  return "messages[" + std::to_string(index) + "]";
}

std::string arguments_where(size_t index) {
  return "tool_calls[" + std::to_string(index) + "].arguments";
}

Inspector::Inspector() : masking_(masking_detectors()) {}

Inspection Inspector::inspect(const LlmCall& c, const StreamedAnswer* streamed) const {
  Inspection out;
  out.ran = true;
  detect::ScanResult all;
  auto report = [&](const std::string& where, std::string_view text, detect::Source source) {
    if (text.empty()) return;
    detect::ScanResult r = full_.scan(text, source);
    add_redactions(out, where, r, text.size());
    for (detect::Finding& f : r.findings) {
      all.findings.push_back(f);
      out.findings.push_back({where, std::move(f)});
    }
  };
  auto mask_only = [&](const std::string& where, std::string_view text) {
    if (text.empty()) return;
    add_redactions(out, where, masking_.scan(text, detect::Source::kUnknown), text.size());
  };

  mask_only("system", c.system);
  // The new turn: everything after the model's last answer (all of it on a first call).
  size_t first_new = 0;
  for (size_t i = c.messages.size(); i-- > 0;) {
    if (is_model_turn(c.messages[i].role)) {
      first_new = i + 1;
      break;
    }
  }
  for (size_t i = 0; i < c.messages.size(); ++i) {
    const std::string where = message_where(i);
    const ChatMessage& m = c.messages[i];
    if (i >= first_new) {
      report(where, m.text, detect::source_from_role(m.role));
    } else {
      mask_only(where, m.text);
    }
  }
  if (streamed != nullptr && streamed->bytes > 0) {
    // Scanned as it streamed in. What is masked in the event is looked for in the text the
    // event carries, so that a mask can never land beside what it should hide.
    out.answer_streamed_bytes = streamed->bytes;
    out.answer_findings_dropped = streamed->dropped;
    mask_only("output_text", c.output_text);
    for (const detect::Finding& f : streamed->findings) {
      all.findings.push_back(f);
      out.findings.push_back({"output_text", f});
    }
  } else {
    report("output_text", c.output_text, detect::Source::kModelOutput);
  }
  for (size_t i = 0; i < c.tool_calls.size(); ++i) {
    report(arguments_where(i), c.tool_calls[i].arguments, detect::Source::kToolArguments);
  }
  // Answers checked against the schemas the request declared.
  auto verify = [&](const std::string& where, const std::string& text, const std::string& schema,
                    std::string_view what) {
    if (schema.empty() || text.empty()) return;
    const auto parsed = nlohmann::json::parse(schema, nullptr, false);
    if (parsed.is_discarded()) return;
    const auto violations = detect::validate_json_text(text, parsed);
    if (violations.empty()) return;
    detect::Finding f = detect::schema_finding(violations, what);
    all.findings.push_back(f);
    out.findings.push_back({where, std::move(f)});
  };
  verify("output_text", c.output_text, c.output_schema, "the answer");
  for (size_t i = 0; i < c.tool_calls.size(); ++i) {
    const ToolCall& t = c.tool_calls[i];
    const auto it = c.tool_schemas.find(t.name);
    if (it == c.tool_schemas.end()) continue;
    verify(arguments_where(i), t.arguments, it->second, "tool " + t.name + " arguments");
  }
  // One score for the call; the findings keep where they were found.
  detect::score_findings(all);
  out.score = all.score;
  out.reasons = std::move(all.reasons);
  std::stable_sort(out.findings.begin(), out.findings.end(),
                   [](const LocatedFinding& a, const LocatedFinding& b) {
                     return detect::finding_weight(a.finding) > detect::finding_weight(b.finding);
                   });
  return out;
}

std::string apply_redactions(std::string_view text, const std::vector<Redaction>& redactions) {
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  for (const Redaction& r : redactions) {
    if (r.begin < at || r.end > text.size()) continue;
    out.append(text.substr(at, r.begin - at));
    out += "[REDACTED ";
    out += r.detector;
    out += ' ';
    out += key_fingerprint(text.substr(r.begin, r.end - r.begin));
    out += ']';
    at = r.end;
  }
  out.append(text.substr(at));
  return out;
}

}  // namespace agentwall::llm
