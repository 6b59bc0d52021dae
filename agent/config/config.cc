#include "agent/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "agent/policy/diagnostics.h"
#include "agent/sinks/uri.h"

namespace agentwall::config {
namespace {

namespace fs = std::filesystem;
using policy::Diagnostics;
using policy::Ref;

// One configuration key: how it is read (with its checks) and how it is shown.
struct Key {
  const char* name;  // "capture.max_bytes"
  std::function<bool(Diagnostics&, const Ref&, Config&)> read;
  std::function<YAML::Node(const Config&)> show;
};

bool absolute_path(Diagnostics& d, const Ref& r, const char* key, const std::string& v,
                   bool allow_dash) {
  if ((allow_dash && v == "-") || (!v.empty() && v[0] == '/')) return true;
  d.error(r.pos(), std::string(key) + ": expected an absolute path" +
                       (allow_dash ? " or \"-\" (standard output)" : "") + ", found \"" + v + "\"");
  return false;
}

Key string_key(const char* name, std::string Config::*field, bool path, bool allow_empty) {
  return {name,
          [=](Diagnostics& d, const Ref& r, Config& c) {
            std::optional<std::string> v = policy::read_string(d, r, "", name);
            if (!v) return false;
            if (v->empty() && allow_empty) {
              c.*field = "";
              return true;
            }
            if (path && !absolute_path(d, r, name, *v, field == &Config::events)) return false;
            c.*field = *v;
            return true;
          },
          [=](const Config& c) { return YAML::Node(c.*field); }};
}

Key list_key(const char* name, std::vector<std::string> Config::*field,
             std::function<bool(Diagnostics&, policy::Pos, const std::string&)> check) {
  return {name,
          [=](Diagnostics& d, const Ref& r, Config& c) {
            std::vector<std::string> out;
            if (!r.node.IsNull()) {  // `attach:` with nothing after it: an empty list
              auto items = policy::read_strings(d, r, "", name);
              if (!items) return false;
              bool ok = true;
              for (auto& [v, pos] : *items) {
                if (check && !check(d, pos, v)) ok = false;
                out.push_back(v);
              }
              if (!ok) return false;
            }
            c.*field = std::move(out);
            return true;
          },
          [=](const Config& c) {
            YAML::Node n(YAML::NodeType::Sequence);
            for (const auto& v : c.*field) n.push_back(v);
            if (n.size() == 0) n.SetStyle(YAML::EmitterStyle::Flow);  // "[]" on the key's line
            return n;
          }};
}

template <typename T>
Key number_key(const char* name, T Config::*field, double min, double max,
               std::function<const char*(T)> check = nullptr) {
  return {name,
          [=](Diagnostics& d, const Ref& r, Config& c) {
            std::optional<double> v;
            if constexpr (std::is_floating_point_v<T>) {
              v = policy::read_number(d, r, "", name, min, max);
            } else {
              auto i = policy::read_integer(d, r, "", name, int64_t(min), int64_t(max));
              if (i) v = double(*i);
            }
            if (!v) return false;
            if (check) {
              if (const char* why = check(T(*v))) {
                d.error(r.pos(), std::string(name) + ": " + why);
                return false;
              }
            }
            c.*field = T(*v);
            return true;
          },
          [=](const Config& c) { return YAML::Node(c.*field); }};
}

bool absolute_item(Diagnostics& d, policy::Pos at, const std::string& v, const char* key) {
  if (!v.empty() && v[0] == '/') return true;
  d.error(at, std::string(key) + ": expected absolute paths, found \"" + v + "\"");
  return false;
}

const std::vector<Key>& keys() {
  static const std::vector<Key> k = [] {
    std::vector<Key> v;
    v.push_back(list_key("policies", &Config::policies,
                         [](Diagnostics& d, policy::Pos at, const std::string& s) {
                           return absolute_item(d, at, s, "policies");
                         }));
    v.push_back(string_key("events", &Config::events, true, true));
    v.push_back(
        list_key("sinks", &Config::sinks, [](Diagnostics& d, policy::Pos at, const std::string& s) {
          std::string error;
          if (sinks::parse_sink_uri(s, error)) return true;
          d.error(at, "sinks: " + error);
          return false;
        }));
    v.push_back(string_key("state_dir", &Config::state_dir, true, false));
    v.push_back(string_key("control_socket", &Config::control_socket, true, true));
    v.push_back(string_key("metrics", &Config::metrics, false, true));
    v.push_back(number_key<double>("health_interval", &Config::health_interval, 0, 86400));
    v.push_back(number_key<uint32_t>("alert_limit", &Config::alert_limit, 0, 1e6));
    v.push_back(number_key<double>("drain_timeout", &Config::drain_timeout, 0, 3600));
    v.push_back(number_key<uint32_t>("capture.max_bytes", &Config::max_bytes, 1, 1u << 30));
    v.push_back(number_key<uint32_t>("capture.ringbuf_mb", &Config::ringbuf_mb, 1, 1024,
                                     [](uint32_t mb) -> const char* {
                                       return (mb & (mb - 1)) ? "must be a power of two" : nullptr;
                                     }));
    v.push_back(list_key("capture.attach", &Config::attach,
                         [](Diagnostics& d, policy::Pos at, const std::string& s) {
                           return absolute_item(d, at, s, "capture.attach");
                         }));
    v.push_back({"capture.plaintext_ports",
                 [](Diagnostics& d, const Ref& r, Config& c) {
                   std::vector<uint16_t> ports;
                   if (!r.node.IsNull() && !r.node.IsSequence()) {
                     d.error(r.pos(),
                             "capture.plaintext_ports: expected a list of TCP ports, "
                             "e.g. [11434, 8080]");
                     return false;
                   }
                   bool ok = true;
                   for (const YAML::Node& item : r.node) {
                     auto port = policy::read_integer(d, r.child(item), "",
                                                      "capture.plaintext_ports", 1, 65535);
                     if (port)
                       ports.push_back(static_cast<uint16_t>(*port));
                     else
                       ok = false;
                   }
                   if (ok) c.plaintext_ports = std::move(ports);
                   return ok;
                 },
                 [](const Config& c) {
                   YAML::Node n(YAML::NodeType::Sequence);
                   for (const uint16_t p : c.plaintext_ports) n.push_back(p);
                   n.SetStyle(YAML::EmitterStyle::Flow);
                   return n;
                 }});
    v.push_back({"detection.enabled",
                 [](Diagnostics& d, const Ref& r, Config& c) {
                   auto b = policy::read_bool(d, r, "", "detection.enabled");
                   if (b) c.detect = *b;
                   return b.has_value();
                 },
                 [](const Config& c) { return YAML::Node(c.detect); }});
    v.push_back(number_key<int>("detection.threshold", &Config::detect_threshold, 0, 100));
    v.push_back(number_key<uint64_t>("content_cap", &Config::content_cap, 0, 1 << 30));
    v.push_back(number_key<uint64_t>("max_body_mb", &Config::max_body_mb, 1, 1024));
    v.push_back(list_key("prices", &Config::prices,
                         [](Diagnostics& d, policy::Pos at, const std::string& s) {
                           return absolute_item(d, at, s, "prices");
                         }));
    v.push_back(list_key("mcp.stdio_exes", &Config::mcp_stdio_exes,
                         [](Diagnostics&, policy::Pos, const std::string&) { return true; }));
    v.push_back(list_key("coverage.endpoints", &Config::coverage_endpoints,
                         [](Diagnostics& d, policy::Pos at, const std::string& s) {
                           if (!s.empty() && s.find_first_of(" /") == std::string::npos)
                             return true;
                           d.error(at,
                                   "coverage.endpoints: expected a host name or IP[:PORT] "
                                   "(e.g. llm-gateway.internal, 10.0.0.7:8443), found \"" +
                                       s + "\"");
                           return false;
                         }));
    return v;
  }();
  return k;
}

// The names allowed in the map at `group` ("" = top level, "capture", "detection").
std::vector<std::string_view> names_in(std::string_view group) {
  std::vector<std::string_view> out;
  for (const Key& k : keys()) {
    std::string_view n = k.name;
    const size_t dot = n.find('.');
    std::string_view g = dot == std::string_view::npos ? "" : n.substr(0, dot);
    std::string_view leaf = dot == std::string_view::npos ? n : n.substr(dot + 1);
    if (group.empty() && !g.empty()) leaf = g;  // a group is a top-level key itself
    if (g == group || group.empty())
      if (std::find(out.begin(), out.end(), leaf) == out.end()) out.push_back(leaf);
  }
  return out;
}

const Key* find_key(const std::string& name) {
  for (const Key& k : keys())
    if (name == k.name) return &k;
  return nullptr;
}

void read_map(Diagnostics& d, const Ref& map, const std::string& group, Config& c) {
  for (auto& [name, value] :
       policy::map_entries(d, map, group, names_in(group),
                           group.empty() ? "a map" : "a map of settings", "setting")) {
    const std::string full = group.empty() ? name : group + "." + name;
    if (const Key* k = find_key(full)) {
      if (k->read(d, value, c)) c.set_keys.insert(full);
    } else {
      read_map(d, value, full, c);  // a group: capture, detection
    }
  }
}

void read_source(Diagnostics& d, const std::string& name, const std::string& yaml, Config& c) {
  const size_t file = d.add_file(name);
  try {
    const YAML::Node root = YAML::Load(yaml);
    if (root.IsNull()) return;  // empty, or only comments
    read_map(d, Ref{root, file}, "", c);
  } catch (const YAML::Exception& e) {
    const policy::Pos at = e.mark.is_null() ? policy::Pos{file, 0, 0}
                                            : policy::Pos{file, e.mark.line + 1, e.mark.column + 1};
    d.error(at, "YAML syntax: " + e.msg);
  }
}

Loaded finish(Diagnostics& d, Config c) {
  Loaded out;
  out.errors = d.errors();
  out.warnings = d.warnings();
  if (!d.failed()) out.config = std::move(c);
  return out;
}

// 0, or the errno that kept the file from being read.
int read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno ? errno : EIO;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return 0;
}

// The *.yaml (and *.yml) files of a directory, in name order; nothing when it is missing.
std::vector<std::string> yaml_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string ext = e.path().extension().string();
    if ((ext == ".yaml" || ext == ".yml") && !e.path().filename().string().starts_with("."))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Loaded load_strings(const std::vector<std::pair<std::string, std::string>>& sources) {
  Diagnostics d;
  Config c;
  for (const auto& [name, yaml] : sources) {
    read_source(d, name, yaml, c);
    c.files.push_back(name);
  }
  return finish(d, std::move(c));
}

Loaded load(const std::string& file, bool required) {
  Diagnostics d;
  Config c;
  std::string yaml;
  if (const int err = read_file(file, yaml); err == 0) {
    read_source(d, file, yaml, c);
    c.files.push_back(file);
  } else if (required || err != ENOENT) {
    d.error({d.add_file(file), 0, 0},
            std::string("cannot read the configuration file: ") + std::strerror(err));
  }
  const std::string dropins = (fs::path(file).parent_path() / "conf.d").string();
  for (const std::string& f : yaml_files(dropins)) {
    if (const int err = read_file(f, yaml); err == 0) {
      read_source(d, f, yaml, c);
      c.files.push_back(f);
    } else {
      d.error({d.add_file(f), 0, 0}, std::string("cannot read the drop-in: ") + std::strerror(err));
    }
  }
  return finish(d, std::move(c));
}

std::vector<std::string> expand_policy_paths(const std::vector<std::string>& entries,
                                             std::vector<std::string>& errors) {
  std::vector<std::string> out;
  for (const std::string& e : entries) {
    std::error_code ec;
    if (fs::is_directory(e, ec)) {
      for (std::string& f : yaml_files(e)) out.push_back(std::move(f));
    } else if (fs::exists(e, ec)) {
      out.push_back(e);
    } else if (!e.ends_with(".yaml") && !e.ends_with(".yml")) {
      // A directory that does not exist (yet) holds no policy: the built-in one applies.
    } else {
      errors.push_back(e + ": no such policy file");
    }
  }
  return out;
}

std::string to_yaml(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string open_group;
  for (const Key& k : keys()) {
    std::string_view name = k.name;
    const size_t dot = name.find('.');
    const std::string group(dot == std::string_view::npos ? "" : name.substr(0, dot));
    if (group != open_group) {
      if (!open_group.empty()) out << YAML::EndMap;
      if (!group.empty()) out << YAML::Key << group << YAML::Value << YAML::BeginMap;
      open_group = group;
    }
    const std::string leaf(dot == std::string_view::npos ? name : name.substr(dot + 1));
    out << YAML::Key << leaf << YAML::Value << k.show(c);
    out << YAML::Comment(c.is_set(k.name) ? "set" : "default");
  }
  if (!open_group.empty()) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> changed_keys(const Config& a, const Config& b) {
  std::vector<std::string> out;
  for (const Key& k : keys()) {
    YAML::Emitter ea, eb;
    ea << k.show(a);
    eb << k.show(b);
    if (std::string_view(ea.c_str()) != std::string_view(eb.c_str())) out.push_back(k.name);
  }
  return out;
}

}  // namespace agentwall::config
