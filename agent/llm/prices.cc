#include "agent/llm/prices.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace agentwall::llm {

// Generated at build time from policies/prices.yaml (cmake/prices.cmake).
extern const char kBuiltinPricesYaml[];

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string where(std::string_view origin, const YAML::Mark& m) {
  return std::string(origin) + ":" + std::to_string(m.line + 1) + ":" +
         std::to_string(m.column + 1);
}

bool read_price(const YAML::Node& node, const char* key, std::optional<double>& out,
                std::string_view origin, std::string& error) {
  const YAML::Node v = node[key];
  if (!v) return true;
  try {
    const double d = v.as<double>();
    if (d < 0) throw YAML::Exception(v.Mark(), "negative");
    out = d;
    return true;
  } catch (const YAML::Exception&) {
    error = where(origin, v.Mark()) + ": '" + key +
            "' must be a non-negative number of USD per million tokens";
    return false;
  }
}

}  // namespace

const PriceTable& PriceTable::builtin() {
  static const PriceTable table = [] {
    PriceTable t;
    std::string error;
    // The build checks the file (a unit test loads it too); a failure here is a build bug.
    if (!t.load(kBuiltinPricesYaml, "policies/prices.yaml (built in)", error)) {
      std::fprintf(stderr, "agentwall: %s\n", error.c_str());
      std::abort();
    }
    return t;
  }();
  return table;
}

bool PriceTable::load(std::string_view yaml, std::string_view origin, std::string& error) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::ParserException& e) {
    error = where(origin, e.mark) + ": not valid YAML: " + e.msg;
    return false;
  }
  if (!root.IsMap()) {
    error = std::string(origin) + ": expected a mapping with 'date' and 'models'";
    return false;
  }
  PriceTable t;
  if (const YAML::Node d = root["date"]) t.date_ = d.as<std::string>("");
  if (const YAML::Node fp = root["free_providers"]) {
    if (!fp.IsSequence()) {
      error = where(origin, fp.Mark()) + ": 'free_providers' must be a list of provider names";
      return false;
    }
    for (const auto& p : fp) t.free_providers_.push_back(lower(p.as<std::string>("")));
  }
  const YAML::Node models = root["models"];
  if (!models || !models.IsMap()) {
    error = std::string(origin) + ": expected 'models:' mapping model names to prices";
    return false;
  }
  for (const auto& kv : models) {
    ModelPrice p;
    p.name = lower(kv.first.as<std::string>(""));
    const YAML::Node v = kv.second;
    if (!v.IsMap()) {
      error = where(origin, v.Mark()) + ": model '" + p.name +
              "' needs a mapping like {input: 0.15, output: 0.60}";
      return false;
    }
    std::optional<double> in, out;
    if (!read_price(v, "input", in, origin, error) ||
        !read_price(v, "output", out, origin, error) ||
        !read_price(v, "cached_input", p.cached_input, origin, error) ||
        !read_price(v, "cache_write", p.cache_write, origin, error))
      return false;
    if (!in) {
      error = where(origin, v.Mark()) + ": model '" + p.name + "' has no 'input' price";
      return false;
    }
    p.input = *in;
    p.output = out.value_or(0);
    t.models_[p.name] = p;
  }
  *this = std::move(t);
  return true;
}

bool PriceTable::load_file(const std::string& path, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = path + ": cannot read the price file";
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load(ss.str(), path, error);
}

void PriceTable::merge(const PriceTable& other) {
  for (const auto& [k, v] : other.models_) models_[k] = v;
  for (const auto& p : other.free_providers_) {
    if (std::find(free_providers_.begin(), free_providers_.end(), p) == free_providers_.end())
      free_providers_.push_back(p);
  }
  if (!other.date_.empty()) date_ = other.date_;
}

std::optional<ModelPrice> PriceTable::find(std::string_view model_in) const {
  std::string model = lower(model_in);
  // Gemini names models "models/gemini-…"; Vertex and gateways prefix a publisher.
  if (const size_t slash = model.rfind('/'); slash != std::string::npos) model.erase(0, slash + 1);
  if (model.empty()) return std::nullopt;
  if (const auto it = models_.find(model); it != models_.end()) return it->second;
  // Longest key that is a prefix ending at a '-', '@', ':' or '.' boundary.
  const ModelPrice* best = nullptr;
  for (const auto& [k, v] : models_) {
    if (k.size() >= model.size() || !model.starts_with(k)) continue;
    const char next = model[k.size()];
    if (next != '-' && next != '@' && next != ':' && next != '.') continue;
    if (!best || k.size() > best->name.size()) best = &v;
  }
  if (best) return *best;
  return std::nullopt;
}

bool PriceTable::free_provider(std::string_view provider) const {
  const std::string p = lower(provider);
  return std::find(free_providers_.begin(), free_providers_.end(), p) != free_providers_.end();
}

Cost price_call(const ModelPrice& p, int64_t input, int64_t output, int64_t cache_read,
                int64_t cache_write) {
  Cost c;
  c.priced_as = p.name;
  const int64_t plain = std::max<int64_t>(0, input - cache_read - cache_write);
  c.input_usd = double(plain) * p.input / 1e6;
  c.cache_usd = (double(cache_read) * p.cached_input.value_or(p.input) +
                 double(cache_write) * p.cache_write.value_or(p.input)) /
                1e6;
  c.output_usd = double(output) * p.output / 1e6;
  c.usd = c.input_usd + c.cache_usd + c.output_usd;
  return c;
}

}  // namespace agentwall::llm
