// The configuration files: keys, drop-ins that replace what came before, errors with
// FILE:LINE:COL, and the shipped packaging/agentwall.yaml, which must state exactly the
// built-in defaults.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/config/config.h"
#include "temp_dir.h"

using namespace agentwall;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

// A temporary directory with files written into it.
struct TempDir : test::TempDir {
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((path / rel).parent_path());
    std::ofstream(path / rel) << text;
  }
};

}  // namespace

TEST_CASE("the shipped agentwall.yaml states the built-in defaults") {
  const std::string shipped = std::string(AGENTWALL_FIXTURES) + "/../../packaging/agentwall.yaml";
  const config::Loaded l = config::load_strings({{shipped, slurp(shipped)}});
  INFO(joined(l.errors));
  REQUIRE(l.config);
  CHECK(config::changed_keys(config::Config{}, *l.config).empty());
  // Every key is written out in the shipped file, so an operator sees each one.
  const std::string shown = config::to_yaml(*l.config);
  CHECK(shown.find("# default") == std::string::npos);
}

TEST_CASE("drop-ins in conf.d replace keys in name order; the rest stays") {
  TempDir d;
  d.write("agentwall.yaml",
          "events: /var/log/a.json\nhealth_interval: 10\n"
          "capture:\n  max_bytes: 4096\n");
  d.write("conf.d/20-b.yaml", "health_interval: 20\ncapture:\n  ringbuf_mb: 64\n");
  d.write("conf.d/10-a.yaml", "health_interval: 15\nsinks: [\"syslog+tcp://127.0.0.1:514\"]\n");
  d.write("conf.d/README", "not yaml: ignored");
  const config::Loaded l = config::load((d.path / "agentwall.yaml").string(), true);
  INFO(joined(l.errors));
  REQUIRE(l.config);
  const config::Config& c = *l.config;
  CHECK(c.health_interval == 20);
  CHECK(c.events == "/var/log/a.json");
  CHECK(c.max_bytes == 4096);
  CHECK(c.ringbuf_mb == 64);
  CHECK(c.sinks == std::vector<std::string>{"syslog+tcp://127.0.0.1:514"});
  REQUIRE(c.files.size() == 3);
  CHECK(c.files[1].ends_with("10-a.yaml"));
  CHECK(c.files[2].ends_with("20-b.yaml"));
  CHECK(c.is_set("capture.ringbuf_mb"));
  CHECK_FALSE(c.is_set("state_dir"));
  CHECK(c.state_dir == "/var/lib/agentwall");
}

TEST_CASE("a missing file is the built-in defaults unless it was asked for") {
  TempDir d;
  const std::string missing = (d.path / "agentwall.yaml").string();
  const config::Loaded quiet = config::load(missing, false);
  REQUIRE(quiet.config);
  CHECK(quiet.config->files.empty());
  const config::Loaded asked = config::load(missing, true);
  CHECK_FALSE(asked.config);
  REQUIRE(asked.errors.size() == 1);
  CHECK(asked.errors[0] ==
        missing + ": cannot read the configuration file: No such file or directory");
}

TEST_CASE("every mistake is reported with FILE:LINE:COL and what was expected") {
  const config::Loaded l = config::load_strings(
      {{"a.yaml", "capture:\n  ringbuf_mb: 3\n  atach: []\nevents: relative.json\n"},
       {"b.yaml", "sinks: [\"syslog+tcp://\"]\ndetection: {threshold: 101}\npolicys: []\n"},
       {"c.yaml", "content_cap: [1\n"}});
  CHECK_FALSE(l.config);
  const std::string all = joined(l.errors);
  INFO(all);
  CHECK(all.find("a.yaml:2:15: capture.ringbuf_mb: must be a power of two") != std::string::npos);
  CHECK(all.find("a.yaml:3:3: capture: unknown setting \"atach\"; did you mean \"attach\"?") !=
        std::string::npos);
  CHECK(all.find("a.yaml:4:9: events: expected an absolute path or \"-\"") != std::string::npos);
  CHECK(all.find("b.yaml:1:9: sinks: ") != std::string::npos);
  CHECK(all.find("needs a host") != std::string::npos);
  CHECK(all.find("b.yaml:2:24: detection.threshold") != std::string::npos);
  CHECK(all.find("b.yaml:3:1: unknown setting \"policys\"; did you mean \"policies\"?") !=
        std::string::npos);
  CHECK(all.find("c.yaml:") != std::string::npos);
  CHECK(all.find("YAML syntax") != std::string::npos);
}

TEST_CASE("capture.plaintext_ports: TCP ports, an empty list turns the capture off") {
  const config::Loaded ok =
      config::load_strings({{"a.yaml", "capture:\n  plaintext_ports: [11434, 3001]\n"},
                            {"b.yaml", "capture:\n  plaintext_ports:\n    - 9000\n"}});
  REQUIRE(ok.config);
  CHECK(ok.config->plaintext_ports == std::vector<uint16_t>{9000});  // b.yaml replaces a.yaml
  const config::Loaded off =
      config::load_strings({{"a.yaml", "capture:\n  plaintext_ports: []\n"}});
  REQUIRE(off.config);
  CHECK(off.config->plaintext_ports.empty());
  CHECK(config::Config{}.plaintext_ports == config::kDefaultPlaintextPorts);

  const config::Loaded bad =
      config::load_strings({{"a.yaml", "capture:\n  plaintext_ports: [80, 0, http]\n"},
                            {"b.yaml", "capture:\n  plaintext_ports: 8080\n"}});
  CHECK_FALSE(bad.config);
  const std::string all = joined(bad.errors);
  INFO(all);
  CHECK(all.find("a.yaml:2:25: capture.plaintext_ports: expected a whole number from 1 to "
                 "65535, found \"0\"") != std::string::npos);
  CHECK(all.find("a.yaml:2:28: capture.plaintext_ports") != std::string::npos);
  CHECK(all.find("b.yaml:2:20: capture.plaintext_ports: expected a list of TCP ports") !=
        std::string::npos);
}

TEST_CASE("policy paths: directories give their *.yaml in name order") {
  TempDir d;
  d.write("p/50-site.yaml", "rules: []\n");
  d.write("p/00-default.yaml", "rules: []\n");
  d.write("p/notes.txt", "");
  std::vector<std::string> errors;
  const auto files =
      config::expand_policy_paths({(d.path / "p").string(), (d.path / "none.d").string()}, errors);
  CHECK(errors.empty());
  REQUIRE(files.size() == 2);
  CHECK(files[0].ends_with("00-default.yaml"));
  CHECK(files[1].ends_with("50-site.yaml"));
  config::expand_policy_paths({(d.path / "missing.yaml").string()}, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].ends_with("missing.yaml: no such policy file"));
}

TEST_CASE("changed_keys names what a reload cannot apply") {
  config::Config a, b;
  b.sinks.push_back("syslog+udp://127.0.0.1:514");
  b.policies = {"/srv/p"};
  const auto changed = config::changed_keys(a, b);
  CHECK(changed == std::vector<std::string>{"policies", "sinks"});
}
