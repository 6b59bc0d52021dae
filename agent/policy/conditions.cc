// Pass two for conditions: `match`, `when`, exceptions and macros become Condition trees
// with their patterns compiled, lists expanded and macros shared.
#include <algorithm>

#include "agent/policy/loader.h"

namespace agentwall::policy {

namespace {

constexpr int kMaxDepth = 32;            // nesting of any/all/not/macro
constexpr size_t kMaxNodes = 50 * 1000;  // conditions in one policy (YAML aliases multiply)

const Keys kConditionKeys = {"process",        "traffic", "mcp",        "findings",
                             "score_at_least", "budget",  "rate_limit", "model_not_in",
                             "macro",          "any",     "all",        "not"};

struct FieldName {
  std::string_view section, key;
  Field field;
  bool fold_case;                   // hosts, providers and models are case-insensitive
  std::vector<std::string> values;  // non-empty: the only values allowed (no globs)
};

const std::vector<FieldName>& field_names() {
  static const std::vector<FieldName> kFields = {
      {"process", "exe", Field::kExe, false, {}},
      {"process", "name", Field::kName, false, {}},
      {"process", "user", Field::kUser, false, {}},
      {"process", "uid", Field::kUid, false, {}},
      {"process", "unit", Field::kUnit, false, {}},
      {"process", "container", Field::kContainer, false, {}},
      {"process", "cgroup", Field::kCgroup, false, {}},
      {"process", "parent", Field::kParent, false, {}},
      {"traffic", "kind", Field::kKind, false, {"llm", "mcp"}},
      {"traffic", "provider", Field::kProvider, true, {}},
      {"traffic", "host", Field::kHost, true, {}},
      {"traffic", "model", Field::kModel, true, {}},
      {"traffic", "operation", Field::kOperation, false, {}},
      {"traffic", "direction", Field::kDirection, false, {"request", "response"}},
      {"traffic", "api_key", Field::kApiKey, false, {}},
      {"mcp", "server", Field::kMcpServer, false, {}},
      {"mcp", "tool", Field::kMcpTool, false, {}},
      {"mcp", "method", Field::kMcpMethod, false, {}},
  };
  return kFields;
}

const FieldName& field_name(Field f) {
  for (const FieldName& n : field_names()) {
    if (n.field == f) return n;
  }
  return field_names().front();
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

ConditionPtr all_of(std::vector<ConditionPtr> children) {
  if (children.size() == 1) return std::move(children.front());
  auto c = std::make_shared<Condition>();
  c->kind = Condition::Kind::kAll;
  c->children = std::move(children);
  return c;
}

const std::vector<std::string> kCategories = {"secret",      "pii",           "injection",
                                              "hidden_text", "unsafe_output", "schema"};
const std::vector<std::string> kWhere = {"new_turn", "output_text", "tool_arguments", "response",
                                         "any"};
constexpr uint8_t kWhereBits[] = {kWhereNewTurn, kWhereOutputText, kWhereToolArguments,
                                  kWhereOutputText | kWhereToolArguments, kWhereAny};

}  // namespace

ConditionCompiler::ConditionCompiler(Diagnostics& d, const RawPolicy& raw,
                                     std::set<std::string> budgets,
                                     std::set<std::string> rate_limits)
    : d_(d), raw_(raw), budgets_(std::move(budgets)), rate_limits_(std::move(rate_limits)) {}

ConditionPtr ConditionCompiler::compile(const Ref& map, const std::string& ctx,
                                        const Keys& extra_keys) {
  return compile_map(map, ctx, extra_keys, 0);
}

bool ConditionCompiler::too_big(const Ref& at, const std::string& ctx, int depth) {
  // Every key counts: YAML aliases can bring one wide map back many times.
  nodes_ += 1 + (at.node.IsMap() ? at.node.size() : 0);
  if (depth <= kMaxDepth && nodes_ <= kMaxNodes) return false;
  if (!reported_too_big_) {
    d_.error(at.pos(), prefix(ctx) + (depth > kMaxDepth ? "conditions nested more than " +
                                                              std::to_string(kMaxDepth) + " deep"
                                                        : "more than " + std::to_string(kMaxNodes) +
                                                              " conditions in the policy"));
    reported_too_big_ = true;
  }
  return true;
}

ConditionPtr ConditionCompiler::compile_map(const Ref& map, const std::string& ctx,
                                            const Keys& extra_keys, int depth) {
  std::vector<ConditionPtr> children;
  if (d_.exhausted() || too_big(map, ctx, depth)) return all_of({});
  std::vector<std::string_view> keys(kConditionKeys);
  keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
  for (auto& [key, value] : map_entries(d_, map, ctx, keys, "a map of conditions", "condition")) {
    if (std::find(extra_keys.begin(), extra_keys.end(), key) != extra_keys.end()) continue;
    if (ConditionPtr c = compile_key(key, value, ctx, depth)) children.push_back(std::move(c));
  }
  return all_of(std::move(children));
}

ConditionPtr ConditionCompiler::compile_key(const std::string& key, const Ref& value,
                                            const std::string& ctx, int depth) {
  if (key == "process" || key == "traffic" || key == "mcp") {
    std::vector<ConditionPtr> fields;
    compile_fields(value, ctx, key, fields);
    return fields.empty() ? nullptr : all_of(std::move(fields));
  }
  if (key == "findings") return compile_findings(value, ctx);
  if (key == "budget") return compile_state(Condition::Kind::kBudget, value, ctx);
  if (key == "rate_limit") return compile_state(Condition::Kind::kRateLimit, value, ctx);
  if (key == "score_at_least") {
    const auto n = read_integer(d_, value, ctx, key, 0, 100);
    if (!n) return nullptr;
    auto c = std::make_shared<Condition>();
    c->kind = Condition::Kind::kScore;
    c->score = int(*n);
    return c;
  }
  if (key == "model_not_in") {
    if (value.node.IsMap()) {
      d_.error(value.pos(), prefix(ctx) + "model_not_in: expected a list of models or list:NAME");
      return nullptr;
    }
    ConditionPtr in = compile_field(Field::kModel, value, ctx, key);
    if (!in) return nullptr;
    auto c = std::make_shared<Condition>(*in);
    c->negated = true;
    return c;
  }
  if (key == "macro") {
    const auto names = read_strings(d_, value, ctx, key);
    if (!names) return nullptr;
    std::vector<ConditionPtr> parts;
    for (const auto& [name, at] : *names) {
      if (ConditionPtr m = macro(name, at, ctx, depth)) parts.push_back(std::move(m));
    }
    return parts.empty() ? nullptr : all_of(std::move(parts));
  }
  return compile_combinator(key, value, ctx, depth);
}

ConditionPtr ConditionCompiler::compile_combinator(const std::string& key, const Ref& value,
                                                   const std::string& ctx, int depth) {
  auto c = std::make_shared<Condition>();
  if (key == "not") {
    c->kind = Condition::Kind::kNot;
    c->children.push_back(compile_map(value, prefix(ctx) + "not", {}, depth + 1));
    return c;
  }
  c->kind = key == "any" ? Condition::Kind::kAny : Condition::Kind::kAll;
  if (!value.node.IsSequence() || value.node.size() == 0) {
    d_.error(value.pos(), prefix(ctx) + key + ": expected a list of conditions (`- process: ...`)");
    return nullptr;
  }
  for (const YAML::Node& n : value.node) {
    c->children.push_back(compile_map(value.child(n), prefix(ctx) + key, {}, depth + 1));
  }
  return c;
}

void ConditionCompiler::compile_fields(const Ref& map, const std::string& ctx,
                                       std::string_view section, std::vector<ConditionPtr>& out) {
  std::vector<std::string_view> keys;
  for (const FieldName& f : field_names()) {
    if (f.section == section) keys.push_back(f.key);
  }
  const std::string sctx = prefix(ctx) + std::string(section);
  for (const auto& entry : map_entries(d_, map, sctx, keys, "a map of fields", "field")) {
    const std::string& key = entry.first;
    const Ref& value = entry.second;
    const auto f =
        std::find_if(field_names().begin(), field_names().end(),
                     [&](const FieldName& n) { return n.section == section && n.key == key; });
    if (ConditionPtr c = compile_field(f->field, value, sctx, key)) out.push_back(std::move(c));
  }
}

ConditionPtr ConditionCompiler::compile_field(Field field, const Ref& value, const std::string& ctx,
                                              std::string_view key) {
  const FieldName& info = field_name(field);
  bool negated = false;
  Ref values = value;
  if (value.node.IsMap()) {
    const Entries e = map_entries(d_, value, prefix(ctx) + std::string(key), {"not"});
    if (e.size() != 1) return nullptr;
    if (e.front().second.node.IsMap()) {
      d_.error(e.front().second.pos(),
               prefix(ctx) + std::string(key) + ": not: expected a string, a list or list:NAME");
      return nullptr;
    }
    negated = true;
    values = e.front().second;
  }
  const auto list = patterns(values, ctx, key);
  if (!list) return nullptr;
  if (!info.values.empty()) {
    for (const std::string& v : *list) {
      if (std::find(info.values.begin(), info.values.end(), v) == info.values.end()) {
        d_.error(values.pos(), prefix(ctx) + "unknown " + std::string(key) + " " + quoted(v) +
                                   "; expected one of " + one_of(info.values));
        return nullptr;
      }
    }
  }
  auto c = std::make_shared<Condition>();
  c->kind = Condition::Kind::kField;
  c->field = field;
  c->negated = negated;
  c->values = PatternSet(*list, info.fold_case);
  return c;
}

std::optional<std::vector<std::string>> ConditionCompiler::patterns(const Ref& value,
                                                                    const std::string& ctx,
                                                                    std::string_view key) {
  if (d_.exhausted()) return std::nullopt;
  if (!value.node.IsScalar() && !value.node.IsSequence()) {
    d_.error(value.pos(), prefix(ctx) + std::string(key) +
                              ": expected a string, a list of strings, list:NAME or {not: ...}");
    return std::nullopt;
  }
  const auto items = read_strings(d_, value, ctx, key);
  if (!items) return std::nullopt;
  if (items->empty()) {
    d_.error(value.pos(), prefix(ctx) + std::string(key) + ": expected at least one value");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const auto& [v, at] : *items) ok = expand(v, at, ctx, out) && ok;
  if (!ok || !d_.spend(out.size(), value.pos())) return std::nullopt;
  return out;
}

bool ConditionCompiler::expand(const std::string& value, Pos at, const std::string& ctx,
                               std::vector<std::string>& out) {
  if (!value.starts_with("list:")) {
    out.push_back(value);
    return true;
  }
  const std::string name = value.substr(5);
  const auto it = raw_.lists.find(name);
  if (it == raw_.lists.end()) {
    std::vector<std::string> names;
    for (const auto& [n, l] : raw_.lists) names.push_back(n);
    const std::string near = did_you_mean(name, names);
    d_.error(at, prefix(ctx) + "unknown list " + quoted(name) +
                     (near.empty() ? " (define it under `lists:`)"
                                   : "; did you mean \"list:" + near + "\"?"));
    return false;
  }
  for (const auto& [item, item_at] : it->second.items) out.push_back(item);
  return true;
}

ConditionPtr ConditionCompiler::compile_findings(const Ref& map, const std::string& ctx) {
  const std::string fctx = prefix(ctx) + "findings";
  auto c = std::make_shared<Condition>();
  c->kind = Condition::Kind::kFindings;
  FindingsTest& t = c->findings;
  bool ok = map.node.IsMap();
  for (auto& [key, value] :
       map_entries(d_, map, fctx, {"category", "detector", "min_confidence", "where"})) {
    if (key == "category" || key == "where") {
      const bool category = key == "category";
      const auto names = read_strings(d_, value, fctx, key);
      if (!names) {
        ok = false;
        continue;
      }
      uint8_t bits = 0;
      for (const auto& [name, at] : *names) {
        const std::vector<std::string>& options = category ? kCategories : kWhere;
        const auto found = std::find(options.begin(), options.end(), name);
        if (found == options.end()) {
          d_.error(at, fctx + ": unknown " + key + " " + quoted(name) + "; expected one of " +
                           one_of(options));
          ok = false;
          continue;
        }
        const size_t i = size_t(found - options.begin());
        bits |= category ? uint8_t(1u << i) : kWhereBits[i];
      }
      (category ? t.categories : t.where) = bits;
    } else if (key == "detector") {
      const auto list = patterns(value, fctx, key);
      if (list) t.detectors = PatternSet(*list, false);
      ok = ok && list.has_value();
    } else if (key == "min_confidence") {
      const auto v = read_number(d_, value, fctx, key, 0, 1);
      if (v) t.min_confidence = *v;
      ok = ok && v.has_value();
    }
  }
  return ok ? c : nullptr;
}

ConditionPtr ConditionCompiler::compile_state(Condition::Kind kind, const Ref& map,
                                              const std::string& ctx) {
  const bool is_budget = kind == Condition::Kind::kBudget;
  const std::string sctx = prefix(ctx) + (is_budget ? "budget" : "rate_limit");
  auto c = std::make_shared<Condition>();
  c->kind = kind;
  bool ok = map.node.IsMap();
  for (auto& [key, value] : map_entries(d_, map, sctx, {"name", "state"})) {
    if (key == "name") {
      const auto name = read_string(d_, value, sctx, key);
      const std::set<std::string>& known = is_budget ? budgets_ : rate_limits_;
      if (name && !known.count(*name)) {
        const std::string near = did_you_mean(*name, {known.begin(), known.end()});
        d_.error(value.pos(),
                 sctx + ": unknown " + (is_budget ? "budget " : "rate limit ") + quoted(*name) +
                     (near.empty() ? std::string(is_budget ? " (define it under `budgets:`)"
                                                           : " (define it under `rate_limits:`)")
                                   : "; did you mean " + quoted(near) + "?"));
        ok = false;
      } else if (name) {
        c->name = *name;
      } else {
        ok = false;
      }
    } else {
      const auto state = is_budget ? read_enum(d_, value, sctx, "state", {"warning", "exceeded"})
                                   : read_enum(d_, value, sctx, "state", {"exceeded"});
      if (state) {
        c->level = is_budget && *state == 0 ? StateLevel::kWarning : StateLevel::kExceeded;
      }
      ok = ok && state.has_value();
    }
  }
  return ok ? c : nullptr;
}

ConditionPtr ConditionCompiler::macro(const std::string& name, Pos at, const std::string& ctx,
                                      int depth) {
  if (const auto done = macros_done_.find(name); done != macros_done_.end()) return done->second;
  const auto it = raw_.macros.find(name);
  if (it == raw_.macros.end()) {
    std::vector<std::string> names;
    for (const auto& [n, m] : raw_.macros) names.push_back(n);
    const std::string near = did_you_mean(name, names);
    d_.error(at, prefix(ctx) + "unknown macro " + quoted(name) +
                     (near.empty() ? " (define it under `macros:`)"
                                   : "; did you mean " + quoted(near) + "?"));
    return nullptr;
  }
  if (std::find(macros_active_.begin(), macros_active_.end(), name) != macros_active_.end()) {
    std::string cycle;
    for (auto m = std::find(macros_active_.begin(), macros_active_.end(), name);
         m != macros_active_.end(); ++m)
      cycle += *m + " -> ";
    d_.error(at,
             prefix(ctx) + "macro " + quoted(name) + " refers to itself (" + cycle + name + ")");
    return nullptr;
  }
  macros_active_.push_back(name);
  ConditionPtr c = compile_map(it->second, "macro " + quoted(name), {}, depth + 1);
  macros_active_.pop_back();
  macros_done_[name] = c;
  return c;
}

void ConditionCompiler::compile_all_macros() {
  for (const auto& [name, def] : raw_.macros) macro(name, def.pos(), "", 0);
}

}  // namespace agentwall::policy
