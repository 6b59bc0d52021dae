// Errors and warnings of a policy load, each tied to FILE:LINE:COL, and the typed YAML reads
// that produce them. Every read reports what was expected and returns nothing on failure,
// so the loader goes on and collects every error of every file in one pass.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/common/suggest.h"

namespace agentwall::policy {

struct Pos {
  size_t file = 0;  // index into the loaded files
  int line = 0;     // 1-based; 0: the file as a whole
  int col = 0;
};

// A YAML value and the file it came from.
struct Ref {
  YAML::Node node;
  size_t file = 0;
  Pos pos() const;
  Ref child(const YAML::Node& n) const { return {n, file}; }
};

class Diagnostics {
 public:
  // YAML aliases can make one mistake appear a million times: enough is enough.
  static constexpr size_t kMaxErrors = 200;
  static constexpr size_t kMaxValues = 1000 * 1000;

  size_t add_file(std::string name);
  void error(Pos at, std::string message);
  void warning(Pos at, std::string message);
  bool failed() const { return !errors_.empty(); }
  // Counts values read. YAML aliases let a few kilobytes name the same wide map or long list
  // millions of times; past kMaxValues the load stops reading and fails with one error.
  bool spend(size_t values, Pos at);
  bool exhausted() const { return values_ > kMaxValues; }
  // "FILE:LINE:COL: message" ("FILE:LINE:COL: warning: message"), by file (load order),
  // then line and column.
  std::vector<std::string> errors() const { return format(errors_, ""); }
  std::vector<std::string> warnings() const { return format(warnings_, "warning: "); }

 private:
  using Entry = std::pair<Pos, std::string>;
  std::vector<std::string> format(std::vector<Entry> entries, std::string_view label) const;
  std::vector<std::string> files_;
  std::vector<Entry> errors_, warnings_;
  size_t dropped_ = 0;  // errors past kMaxErrors: counted, not kept
  size_t values_ = 0;
};

using Keys = std::vector<std::string_view>;
using Entries = std::vector<std::pair<std::string, Ref>>;

// "ctx: " or nothing, to start a message.
std::string prefix(const std::string& ctx);
// "a, b or c".
std::string one_of(const std::vector<std::string>& options);

// The entries of a map, in order. Keys that are not in `allowed` (unless it is empty) or
// appear twice are reported ("unknown <noun>") and left out. Not a map: reported, empty.
Entries map_entries(Diagnostics& d, const Ref& map, const std::string& ctx, const Keys& allowed,
                    std::string_view what = "a map", std::string_view noun = "key");

std::optional<std::string> read_string(Diagnostics& d, const Ref& r, const std::string& ctx,
                                       std::string_view key);
std::optional<bool> read_bool(Diagnostics& d, const Ref& r, const std::string& ctx,
                              std::string_view key);
std::optional<double> read_number(Diagnostics& d, const Ref& r, const std::string& ctx,
                                  std::string_view key, double min, double max);
std::optional<int64_t> read_integer(Diagnostics& d, const Ref& r, const std::string& ctx,
                                    std::string_view key, int64_t min, int64_t max);
// One of `options`, as its index: `unknown KEY "v"; expected one of a, b, c`.
std::optional<size_t> read_enum(Diagnostics& d, const Ref& r, const std::string& ctx,
                                std::string_view key, std::vector<std::string> options);
// A string or a list of strings, each with where it was written.
std::optional<std::vector<std::pair<std::string, Pos>>> read_strings(Diagnostics& d, const Ref& r,
                                                                     const std::string& ctx,
                                                                     std::string_view key);

}  // namespace agentwall::policy
