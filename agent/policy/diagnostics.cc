#include "agent/policy/diagnostics.h"

#include <algorithm>
#include <set>

namespace agentwall::policy {

namespace {

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "\"" + n.Scalar() + "\"";
    default:
      return "nothing";
  }
}

void expected(Diagnostics& d, const Ref& r, const std::string& ctx, std::string_view key,
              std::string_view what) {
  d.error(r.pos(), prefix(ctx) + std::string(key) + ": expected " + std::string(what) + ", found " +
                       describe(r.node));
}

}  // namespace

Pos Ref::pos() const {
  const YAML::Mark m = node.Mark();
  if (m.is_null()) return {file, 0, 0};
  return {file, m.line + 1, m.column + 1};
}

size_t Diagnostics::add_file(std::string name) {
  files_.push_back(std::move(name));
  return files_.size() - 1;
}

void Diagnostics::error(Pos at, std::string message) {
  if (errors_.size() < kMaxErrors) {
    errors_.emplace_back(at, std::move(message));
  } else {
    ++dropped_;
  }
}

void Diagnostics::warning(Pos at, std::string message) {
  if (warnings_.size() < kMaxErrors) warnings_.emplace_back(at, std::move(message));
}

bool Diagnostics::spend(size_t values, Pos at) {
  const bool was_over = values_ > kMaxValues;
  values_ += values;
  if (values_ <= kMaxValues) return true;
  if (!was_over) {
    error(at, "the policy holds more than " + std::to_string(kMaxValues) +
                  " values once its YAML aliases are expanded; write it out instead");
  }
  return false;
}

std::vector<std::string> Diagnostics::format(std::vector<Entry> entries,
                                             std::string_view label) const {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.first.file, a.first.line, a.first.col) <
           std::tie(b.first.file, b.first.line, b.first.col);
  });
  std::vector<std::string> out;
  for (const auto& [pos, message] : entries) {
    std::string line = pos.file < files_.size() ? files_[pos.file] : "?";
    if (pos.line > 0) line += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col);
    out.push_back(line + ": " + std::string(label) + message);
  }
  if (label.empty() && dropped_)
    out.push_back("... and " + std::to_string(dropped_) + " more errors");
  return out;
}

std::string prefix(const std::string& ctx) {
  return ctx.empty() ? std::string() : ctx + ": ";
}

std::string one_of(const std::vector<std::string>& options) {
  std::string out;
  for (size_t i = 0; i < options.size(); ++i) {
    if (i) out += ", ";
    out += options[i];
  }
  return out;
}

Entries map_entries(Diagnostics& d, const Ref& map, const std::string& ctx, const Keys& allowed,
                    std::string_view what, std::string_view noun) {
  Entries out;
  if (!map.node.IsMap()) {
    d.error(map.pos(),
            prefix(ctx) + "expected " + std::string(what) + ", found " + describe(map.node));
    return out;
  }
  const std::vector<std::string> names(allowed.begin(), allowed.end());
  if (!d.spend(map.node.size() + 1, map.pos())) return out;
  std::set<std::string> seen;
  for (auto it = map.node.begin(); it != map.node.end(); ++it) {
    const Ref key = map.child(it->first);
    if (!it->first.IsScalar()) {
      d.error(key.pos(), prefix(ctx) + "expected a name as key, found " + describe(it->first));
      continue;
    }
    const std::string& name = it->first.Scalar();
    if (!names.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
      const std::string near = did_you_mean(name, names);
      d.error(key.pos(), prefix(ctx) + "unknown " + std::string(noun) + " \"" + name + "\"; " +
                             (near.empty() ? "expected one of " + one_of(names)
                                           : "did you mean \"" + near + "\"?"));
      continue;
    }
    if (!seen.insert(name).second) {
      d.error(key.pos(), prefix(ctx) + "duplicate " + std::string(noun) + " \"" + name + "\"");
      continue;
    }
    out.emplace_back(name, map.child(it->second));
  }
  return out;
}

std::optional<std::string> read_string(Diagnostics& d, const Ref& r, const std::string& ctx,
                                       std::string_view key) {
  if (r.node.IsScalar()) return r.node.Scalar();
  expected(d, r, ctx, key, "a string");
  return std::nullopt;
}

std::optional<bool> read_bool(Diagnostics& d, const Ref& r, const std::string& ctx,
                              std::string_view key) {
  bool value = false;
  if (r.node.IsScalar() && YAML::convert<bool>::decode(r.node, value)) return value;
  expected(d, r, ctx, key, "true or false");
  return std::nullopt;
}

std::optional<double> read_number(Diagnostics& d, const Ref& r, const std::string& ctx,
                                  std::string_view key, double min, double max) {
  double value = 0;
  if (r.node.IsScalar() && YAML::convert<double>::decode(r.node, value) && value >= min &&
      value <= max)
    return value;
  char range[96];
  std::snprintf(range, sizeof(range), "a number from %g to %g", min, max);
  expected(d, r, ctx, key, range);
  return std::nullopt;
}

std::optional<int64_t> read_integer(Diagnostics& d, const Ref& r, const std::string& ctx,
                                    std::string_view key, int64_t min, int64_t max) {
  int64_t value = 0;
  if (r.node.IsScalar() && YAML::convert<int64_t>::decode(r.node, value) && value >= min &&
      value <= max)
    return value;
  expected(d, r, ctx, key,
           "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  return std::nullopt;
}

std::optional<size_t> read_enum(Diagnostics& d, const Ref& r, const std::string& ctx,
                                std::string_view key, std::vector<std::string> options) {
  if (!r.node.IsScalar()) {
    expected(d, r, ctx, key, "one of " + one_of(options));
    return std::nullopt;
  }
  const std::string& v = r.node.Scalar();
  const auto it = std::find(options.begin(), options.end(), v);
  if (it != options.end()) return size_t(it - options.begin());
  d.error(r.pos(), prefix(ctx) + "unknown " + std::string(key) + " \"" + v +
                       "\"; expected one of " + one_of(options));
  return std::nullopt;
}

std::optional<std::vector<std::pair<std::string, Pos>>> read_strings(Diagnostics& d, const Ref& r,
                                                                     const std::string& ctx,
                                                                     std::string_view key) {
  std::vector<std::pair<std::string, Pos>> out;
  if (r.node.IsScalar()) {
    out.emplace_back(r.node.Scalar(), r.pos());
    return out;
  }
  if (!r.node.IsSequence()) {
    expected(d, r, ctx, key, "a string or a list of strings");
    return std::nullopt;
  }
  if (!d.spend(r.node.size(), r.pos())) return std::nullopt;
  bool ok = true;
  for (const YAML::Node& item : r.node) {
    const Ref ir = r.child(item);
    if (!item.IsScalar()) {
      expected(d, ir, ctx, key, "a string (an item of the list)");
      ok = false;
      continue;
    }
    out.emplace_back(item.Scalar(), ir.pos());
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace agentwall::policy
