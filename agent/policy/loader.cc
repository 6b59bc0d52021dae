// Policy::load: reads every file (pass one, merge.cc), then compiles the merged whole
// (pass two: settings and rules here, conditions.cc, limits.cc).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/policy/loader.h"

namespace agentwall::policy {

namespace {

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

const std::vector<std::pair<std::string, MessagePart::Kind>> kPlaceholders = {
    {"model", MessagePart::Kind::kModel},
    {"provider", MessagePart::Kind::kProvider},
    {"exe", MessagePart::Kind::kExe},
    {"rule", MessagePart::Kind::kRule},
    {"detectors", MessagePart::Kind::kDetectors},
    {"user", MessagePart::Kind::kUser},
    {"host", MessagePart::Kind::kHost},
    {"severity", MessagePart::Kind::kSeverity},
    {"action", MessagePart::Kind::kAction},
    {"score", MessagePart::Kind::kScore},
    {"tool", MessagePart::Kind::kTool},
};

// "Secret sent to {model} by {exe}" → text, placeholder, text, placeholder.
std::optional<std::vector<MessagePart>> parse_message(Diagnostics& d, const Ref& value,
                                                      const std::string& ctx) {
  const auto text = read_string(d, value, ctx, "message");
  if (!text) return std::nullopt;
  std::vector<MessagePart> parts;
  size_t at = 0;
  while (at < text->size()) {
    const size_t open = text->find('{', at);
    if (open == std::string::npos) {
      parts.push_back({MessagePart::Kind::kText, text->substr(at)});
      break;
    }
    if (open > at) parts.push_back({MessagePart::Kind::kText, text->substr(at, open - at)});
    const size_t close = text->find('}', open);
    const std::string name =
        close == std::string::npos ? std::string() : text->substr(open + 1, close - open - 1);
    const auto p = std::find_if(kPlaceholders.begin(), kPlaceholders.end(),
                                [&](const auto& kv) { return kv.first == name; });
    if (p == kPlaceholders.end()) {
      std::string names;
      for (const auto& [n, k] : kPlaceholders) names += (names.empty() ? "{" : ", {") + n + "}";
      d.error(value.pos(), ctx + ": message: " +
                               (close == std::string::npos ? std::string("a { without its }")
                                                           : "unknown placeholder {" + name + "}") +
                               "; expected one of " + names);
      return std::nullopt;
    }
    parts.push_back({p->second, {}});
    at = close + 1;
  }
  return parts;
}

bool mentions_findings(const Condition& c) {
  if (c.kind == Condition::Kind::kFindings) return true;
  for (const ConditionPtr& child : c.children) {
    if (child && mentions_findings(*child)) return true;
  }
  return false;
}

ConditionPtr conjunction(std::vector<ConditionPtr> parts) {
  auto c = std::make_shared<Condition>();
  c->kind = Condition::Kind::kAll;
  for (ConditionPtr& p : parts) {
    if (p) c->children.push_back(std::move(p));
  }
  return c;
}

std::vector<Exception> compile_exceptions(Diagnostics& d, const Ref& value, const std::string& ctx,
                                          ConditionCompiler& cc) {
  std::vector<Exception> out;
  if (!value.node.IsSequence()) {
    d.error(value.pos(), ctx + ": exceptions: expected a list of `- name: NAME` and conditions");
    return out;
  }
  for (const YAML::Node& n : value.node) {
    const Ref e = value.child(n);
    const YAML::Node name = n.IsMap() ? n["name"] : YAML::Node();
    if (!name || !name.IsScalar() || name.Scalar().empty()) {
      d.error(e.pos(), ctx + ": each exception needs a `name: NAME` and its conditions");
      continue;
    }
    const std::string ectx = ctx + ": exception " + quoted(name.Scalar());
    for (const Exception& earlier : out) {
      if (earlier.name == name.Scalar()) d.error(e.pos(), ectx + ": defined twice in this rule");
    }
    ConditionPtr when = cc.compile(e, ectx, {"name"});
    if (n.size() < 2) d.error(e.pos(), ectx + ": has no condition (it would match every call)");
    out.push_back({name.Scalar(), std::move(when)});
  }
  return out;
}

Rule compile_rule(Diagnostics& d, const RawRule& raw, ConditionCompiler& cc) {
  const std::string ctx = "rule " + quoted(raw.name);
  Rule r;
  r.name = raw.name;
  ConditionPtr match, when;
  for (const auto& [key, value] : raw.keys) {
    if (key == "description") {
      r.description = read_string(d, value, ctx, key).value_or("");
    } else if (key == "enabled") {
      r.enabled = read_bool(d, value, ctx, key).value_or(true);
    } else if (key == "mode") {
      if (auto m = read_enum(d, value, ctx, key, {"monitor", "enforce"})) r.mode = Mode(*m);
    } else if (key == "match" || key == "when") {
      (key == "match" ? match : when) = cc.compile(value, ctx + ": " + key);
    } else if (key == "action") {
      if (auto a = read_enum(d, value, ctx, key, {"alert", "block", "redact", "kill"})) {
        constexpr Action kActions[] = {Action::kAlert, Action::kBlock, Action::kRedact,
                                       Action::kKill};
        r.action = kActions[*a];
      }
    } else if (key == "severity") {
      const std::vector<std::string> levels = {"info", "low", "medium", "high", "critical"};
      if (auto s = read_enum(d, value, ctx, key, levels)) r.severity = levels[*s];
    } else if (key == "tags") {
      if (auto tags = read_strings(d, value, ctx, key)) {
        for (auto& [t, at] : *tags) r.tags.push_back(t);
      }
    } else if (key == "exceptions") {
      r.exceptions = compile_exceptions(d, value, ctx, cc);
    } else if (key == "message") {
      if (auto m = parse_message(d, value, ctx)) r.message = std::move(*m);
    } else if (key == "fail") {
      if (auto f = read_enum(d, value, ctx, key, {"open", "closed"})) r.fail_closed = *f == 1;
    }
  }
  r.match = conjunction({match, when});
  if (r.message.empty()) {
    r.message.push_back({MessagePart::Kind::kText, r.description.empty() ? r.name : r.description});
  }
  return r;
}

void warn_about(Diagnostics& d, const RawRule& raw, const Rule& r, const Settings& settings) {
  const std::string ctx = "rule " + quoted(r.name);
  if (!r.enabled) return;
  if (r.match->children.empty()) {
    d.warning(raw.pos, ctx + ": has no `match` or `when`: it fires on every call");
  }
  if (r.action == Action::kRedact && !mentions_findings(*r.match)) {
    d.warning(raw.pos, ctx +
                           ": action redact without a `findings` condition: nothing to mask, "
                           "the enforcer can only report it");
  }
  if (r.mode == Mode::kEnforce && settings.mode == Mode::kMonitor) {
    d.warning(raw.pos, ctx +
                           ": mode enforce has no effect while the global mode is monitor "
                           "(set `mode: enforce` at the top level)");
  }
}

Settings compile_settings(Diagnostics& d, const RawPolicy& raw) {
  Settings s;
  if (raw.mode) {
    if (auto m = read_enum(d, *raw.mode, "", "mode", {"monitor", "enforce"})) s.mode = Mode(*m);
  }
  for (const auto& [key, value] : raw.settings) {
    if (key == "verdict_timeout_ms") {
      s.verdict_timeout_ms = int(read_integer(d, value, "settings", key, 1, 10000).value_or(5));
    } else if (key == "fail") {
      if (auto f = read_enum(d, value, "settings", key, {"open", "closed"})) s.fail_closed = *f;
    } else if (key == "state_dir") {
      const auto dir = read_string(d, value, "settings", key);
      if (dir && !dir->starts_with("/")) {
        d.error(value.pos(),
                "settings: state_dir: expected an absolute path, found " + quoted(*dir));
      } else if (dir) {
        s.state_dir = *dir;
      }
    }
  }
  return s;
}

std::set<std::string> names_of(const std::vector<RawNamed>& v) {
  std::set<std::string> out;
  for (const RawNamed& n : v) out.insert(n.name);
  return out;
}

std::shared_ptr<Policy::Compiled> compile(Diagnostics& d, const RawPolicy& raw) {
  auto c = std::make_shared<Policy::Compiled>();
  c->settings = compile_settings(d, raw);
  ConditionCompiler cc(d, raw, names_of(raw.budgets), names_of(raw.rate_limits));
  for (const RawRule& rr : raw.rules) {
    c->rules.push_back(compile_rule(d, rr, cc));
    warn_about(d, rr, c->rules.back(), c->settings);
  }
  cc.compile_all_macros();
  c->budgets = compile_budgets(d, raw, cc);
  c->rate_limits = compile_rate_limits(d, raw, cc);
  c->ledger = compile_ledger(d, raw);
  c->gate = compute_gate_scope(*c);
  Summary& s = c->summary;
  s.rules = c->rules.size();
  s.enabled_rules = size_t(
      std::count_if(c->rules.begin(), c->rules.end(), [](const Rule& r) { return r.enabled; }));
  s.lists = raw.lists.size();
  s.macros = raw.macros.size();
  s.budgets = c->budgets.size();
  s.rate_limits = c->rate_limits.size();
  return c;
}

// YAML text holds no control characters but tab and line ends, and yaml-cpp 0.7 loops
// without end, allocating, on some that follow a NUL: they are refused before it sees them.
bool control_free(Diagnostics& d, size_t file, std::string_view yaml) {
  int line = 1, col = 1;
  for (const char c : yaml) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", u);
      d.error({file, line, col},
              std::string("YAML syntax: control character ") + hex + "; expected text");
      return false;
    }
    if (c == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return true;
}

// One policy is one YAML document: a `---` after content would start a second one, which
// YAML::Load would silently ignore.
bool single_document(Diagnostics& d, size_t file, std::string_view yaml) {
  bool content = false;
  int line = 0;
  for (size_t at = 0; at < yaml.size();) {
    size_t end = yaml.find('\n', at);
    if (end == std::string_view::npos) end = yaml.size();
    const std::string_view text = yaml.substr(at, end - at);
    ++line;
    at = end + 1;
    const bool separator = text.starts_with("---") && (text.size() == 3 || text[3] == ' ' ||
                                                       text[3] == '\t' || text[3] == '\r');
    if (separator && content) {
      d.error({file, line, 1}, "expected one YAML document per file; a second starts here");
      return false;
    }
    const size_t first = text.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && text[first] != '#' && !separator) content = true;
  }
  return true;
}

// Parses one document; YAML syntax errors are reported with their line and column.
// False on a syntax error.
bool read_source(Diagnostics& d, size_t file, const std::string& yaml, RawPolicy& raw) {
  if (!control_free(d, file, yaml)) return false;
  try {
    // YAML::Load, not LoadAll: yaml-cpp 0.7's LoadAll never ends on a stray `,`.
    if (!single_document(d, file, yaml)) return false;
    merge_document(d, Ref{YAML::Load(yaml), file}, raw);
    return true;
  } catch (const YAML::Exception& e) {
    const Pos at =
        e.mark.is_null() ? Pos{file, 0, 0} : Pos{file, e.mark.line + 1, e.mark.column + 1};
    d.error(at, "YAML syntax: " + e.msg);
    return false;
  }
}

}  // namespace

std::optional<Policy> Policy::load_sources(const std::vector<PolicySource>& sources,
                                           std::vector<std::string>& errors) {
  Diagnostics d;
  RawPolicy raw;
  bool parsed = true;
  for (const PolicySource& src : sources) {
    parsed = read_source(d, d.add_file(src.name), src.yaml, raw) && parsed;
  }
  // Compiled even after errors, to report every error at once; but not without a file that
  // did not parse: what it defines would be reported missing everywhere else.
  std::shared_ptr<Compiled> c;
  if (parsed) c = compile(d, raw);
  if (d.failed()) {
    const std::vector<std::string> all = d.errors();
    errors.insert(errors.end(), all.begin(), all.end());
    return std::nullopt;
  }
  c->warnings = d.warnings();
  return Policy(std::move(c));
}

std::optional<Policy> Policy::load_string(std::string_view yaml, std::string_view name,
                                          std::vector<std::string>& errors) {
  return load_sources({{std::string(name), std::string(yaml)}}, errors);
}

std::optional<Policy> Policy::load(const std::vector<std::string>& files,
                                   std::vector<std::string>& errors) {
  std::vector<PolicySource> sources;
  bool ok = true;
  for (const std::string& f : files) {
    std::error_code ec;
    if (std::filesystem::is_directory(f, ec)) {
      errors.push_back(f + ": is a directory; expected a policy file");
      ok = false;
      continue;
    }
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      errors.push_back(f + ": cannot read: " + std::strerror(errno));
      ok = false;
      continue;
    }
    std::ostringstream text;
    text << in.rdbuf();
    sources.push_back({f, text.str()});
  }
  if (!ok) return std::nullopt;
  return load_sources(sources, errors);
}

}  // namespace agentwall::policy
