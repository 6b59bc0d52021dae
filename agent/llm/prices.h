// The price table: USD per million tokens per model, read from YAML (policies/prices.yaml is
// built in; users override it with their own file). Lookup by exact model name, then by
// the longest listed name that the model starts with (dated variants: gpt-4o-2024-08-06).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::llm {

struct ModelPrice {
  std::string name;  // the table's key that matched
  double input = 0;  // per million tokens
  double output = 0;
  std::optional<double> cached_input;  // cache reads; the input price when absent
  std::optional<double> cache_write;   // cache writes; the input price when absent
};

struct Cost {
  double usd = 0;
  double input_usd = 0;
  double output_usd = 0;
  double cache_usd = 0;
  std::string priced_as;  // table key, or "local" for free local providers
};

class PriceTable {
 public:
  // The table compiled into the binary (policies/prices.yaml at build time).
  static const PriceTable& builtin();

  // Parses YAML text; on error returns false and sets `error` to "FILE:LINE:COL: what".
  bool load(std::string_view yaml, std::string_view origin, std::string& error);
  bool load_file(const std::string& path, std::string& error);
  // Entries of `other` replace or add to this table's.
  void merge(const PriceTable& other);

  std::optional<ModelPrice> find(std::string_view model) const;
  bool free_provider(std::string_view provider) const;
  const std::string& date() const { return date_; }
  size_t size() const { return models_.size(); }

 private:
  std::map<std::string, ModelPrice, std::less<>> models_;
  std::vector<std::string> free_providers_;
  std::string date_;
};

// Tokens are normalised (input includes cache reads and writes; output includes reasoning).
Cost price_call(const ModelPrice& p, int64_t input_tokens, int64_t output_tokens,
                int64_t cache_read_tokens, int64_t cache_write_tokens);

}  // namespace agentwall::llm
