// Pass one: reads one policy document and merges it into what earlier files gave.
// Within one file a name is defined once; a later file may redefine it (see docs/POLICY.md).
#include <algorithm>
#include <set>

#include "agent/policy/loader.h"

namespace agentwall::policy {

namespace {

const Keys kTopKeys = {"mode",  "settings", "lists",       "macros",
                       "rules", "budgets",  "rate_limits", "ledger"};
const Keys kSettingsKeys = {"verdict_timeout_ms", "fail", "state_dir"};
const Keys kLedgerKeys = {"backend", "sqlite_path", "redis_url", "key_prefix", "on_unreachable"};
const Keys kRuleKeys = {"rule",   "description", "enabled", "mode",       "match",   "when",
                        "action", "severity",    "tags",    "exceptions", "message", "fail"};

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

void merge_keys(Diagnostics& d, const Ref& map, const std::string& ctx, Keys allowed,
                std::map<std::string, Ref>& into) {
  for (auto& [key, value] : map_entries(d, map, ctx, allowed)) into[key] = value;
}

void merge_lists(Diagnostics& d, const Ref& map, RawPolicy& raw) {
  for (auto& [name, value] : map_entries(d, map, "lists", {})) {
    const std::string ctx = "list " + quoted(name);
    Ref items = value;
    bool append = false;
    if (value.node.IsMap()) {
      std::optional<Ref> given;
      for (auto& [key, v] : map_entries(d, value, ctx, {"items", "append"})) {
        if (key == "items") given = v;
        if (key == "append") append = read_bool(d, v, ctx, "append").value_or(false);
      }
      if (!given) {
        d.error(value.pos(), ctx + ": expected \"items\" (the list's values)");
        continue;
      }
      items = *given;
    }
    if (!items.node.IsSequence()) {
      d.error(items.pos(), ctx + ": expected a list of strings, or {items: [...], append: true}");
      continue;
    }
    auto values = read_strings(d, items, ctx, "items");
    if (!values) continue;
    for (const auto& [v, at] : *values) {
      if (v.starts_with("list:"))
        d.error(at, ctx + ": an item cannot refer to another list (" + quoted(v) +
                        "); write its values here");
    }
    RawList& list = raw.lists[name];
    if (!append) list = RawList{{}, value.pos()};
    list.items.insert(list.items.end(), values->begin(), values->end());
  }
}

void merge_macros(Diagnostics& d, const Ref& map, RawPolicy& raw) {
  for (auto& [name, value] : map_entries(d, map, "macros", {})) raw.macros[name] = value;
}

void merge_rules(Diagnostics& d, const Ref& seq, RawPolicy& raw) {
  if (!seq.node.IsSequence()) {
    d.error(seq.pos(), "rules: expected a list of rules (each a map starting with `- rule: NAME`)");
    return;
  }
  std::map<std::string, Pos> in_this_file;
  for (const YAML::Node& n : seq.node) {
    const Ref def = seq.child(n);
    if (!n.IsMap()) {
      d.error(def.pos(), "rules: expected a rule (a map starting with `rule: NAME`)");
      continue;
    }
    const YAML::Node name_node = n["rule"];
    const std::string ctx_guess =
        name_node && name_node.IsScalar() ? "rule " + quoted(name_node.Scalar()) : "rules";
    Entries entries = map_entries(d, def, ctx_guess, kRuleKeys);
    const auto named = std::find_if(entries.begin(), entries.end(),
                                    [](const auto& e) { return e.first == "rule"; });
    if (named == entries.end()) {
      d.error(def.pos(), "rules: a rule needs a name: `rule: NAME`");
      continue;
    }
    const auto name = read_string(d, named->second, "rules", "rule");
    if (!name) continue;
    if (name->empty()) {
      d.error(named->second.pos(), "rules: a rule's name cannot be empty");
      continue;
    }
    const auto [first, fresh] = in_this_file.emplace(*name, def.pos());
    if (!fresh) {
      d.error(def.pos(), "rule " + quoted(*name) + ": defined twice in this file (first at line " +
                             std::to_string(first->second.line) +
                             "); a later file may override it");
      continue;
    }
    auto existing = std::find_if(raw.rules.begin(), raw.rules.end(),
                                 [&](const RawRule& r) { return r.name == *name; });
    if (existing == raw.rules.end()) {
      raw.rules.push_back({*name, def.pos(), {}});
      existing = raw.rules.end() - 1;
    }
    // Override key by key: `- rule: x` + `enabled: false` in a later file turns x off.
    for (auto& [key, value] : entries) existing->keys[key] = value;
  }
}

void merge_named(Diagnostics& d, const Ref& seq, std::string_view section,
                 std::vector<RawNamed>& into) {
  const std::string what(section == "budgets" ? "budget" : "rate limit");
  if (!seq.node.IsSequence()) {
    d.error(seq.pos(), std::string(section) + ": expected a list (each item `- name: NAME`)");
    return;
  }
  std::map<std::string, Pos> in_this_file;
  for (const YAML::Node& n : seq.node) {
    const Ref def = seq.child(n);
    const YAML::Node name_node = n.IsMap() ? n["name"] : YAML::Node();
    if (!name_node || !name_node.IsScalar() || name_node.Scalar().empty()) {
      d.error(def.pos(), std::string(section) + ": each " + what + " needs a `name: NAME`");
      continue;
    }
    const std::string name = name_node.Scalar();
    const auto [first, fresh] = in_this_file.emplace(name, def.pos());
    if (!fresh) {
      d.error(def.pos(), what + " " + quoted(name) +
                             ": defined twice in this file (first at line " +
                             std::to_string(first->second.line) + ")");
      continue;
    }
    auto existing =
        std::find_if(into.begin(), into.end(), [&](const RawNamed& r) { return r.name == name; });
    if (existing != into.end()) {
      existing->def = def;  // a later file replaces it whole
    } else {
      into.push_back({name, def});
    }
  }
}

}  // namespace

void merge_document(Diagnostics& d, const Ref& root, RawPolicy& raw) {
  if (root.node.IsNull()) return;  // an empty file adds nothing
  for (auto& [key, value] : map_entries(d, root, "", kTopKeys, "a map of policy sections")) {
    if (key == "mode") {
      raw.mode = value;
    } else if (value.node.IsNull()) {
      continue;  // a section whose entries are all commented out
    } else if (key == "settings") {
      merge_keys(d, value, "settings", kSettingsKeys, raw.settings);
    } else if (key == "ledger") {
      merge_keys(d, value, "ledger", kLedgerKeys, raw.ledger);
    } else if (key == "lists") {
      merge_lists(d, value, raw);
    } else if (key == "macros") {
      merge_macros(d, value, raw);
    } else if (key == "rules") {
      merge_rules(d, value, raw);
    } else if (key == "budgets") {
      merge_named(d, value, key, raw.budgets);
    } else if (key == "rate_limits") {
      merge_named(d, value, key, raw.rate_limits);
    }
  }
}

}  // namespace agentwall::policy
