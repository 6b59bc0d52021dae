// Compiles the injection rule set (agent/detect/injection_rules.h) with vectorscan at build
// time and writes both databases, serialized, to the file named on the command line, which
// agent/detect/injection_db.cc embeds. The build runs it; nobody else needs to.
//
// The databases are compiled for any x86-64 (generic tuning, no AVX2 or AVX-512), so a package
// built on one machine runs them on another; the agent checks that they are of its rules and
// its vectorscan, and compiles them itself when not.
#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>

#include "agent/detect/injection_rules.h"

using namespace agentwall::detect;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT\n", argv[0]);
    return 2;
  }
  try {
    const RulePatterns rules = rule_patterns();
    hs_platform_info_t any{};
    any.tune = HS_TUNE_FAMILY_GENERIC;
    any.cpu_features = 0;
    hs_database_t* db = compile_rule_database(rules.patterns, &any);
    hs_database_t* prefilter = compile_rule_database(rules.prefilters, &any);
    const std::string a = serialize_rule_database(db), b = serialize_rule_database(prefilter);
    hs_free_database(db);
    hs_free_database(prefilter);
    const std::string blob = encode_precompiled({rule_set_fingerprint(rules), a, b});
    const std::string tmp = std::string(argv[1]) + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(blob.data(), std::streamsize(blob.size()));
      if (!out.flush()) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), argv[1]) != 0)
      throw std::runtime_error("cannot rename " + tmp + " to " + argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agentwall_precompile: %s\n", e.what());
    return 1;
  }
  return 0;
}
