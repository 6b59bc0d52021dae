// The injection rule set as vectorscan compiles it, shared by the detector (agent/detect/
// injection.cc) and the build-time compiler (agent/detect/precompile/), which compiles it once
// when agentwall is built so that no process pays for it at start-up.
#pragma once

#include <hs/hs.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::detect {

// What the two databases are compiled from: every rule's pattern, indexed by the rule's
// position in injection_rules(), and every rule's prefilter (or the pattern when it has none),
// parts left out (the prefilter database only says whether anything may match).
// Throws std::logic_error when a prefilter is not a top-level suffix of its pattern.
struct RulePatterns {
  std::vector<std::string> patterns, prefilters;
};
RulePatterns rule_patterns();

// One vectorscan database of `patterns`, ids their positions, for `platform` (nullptr: this
// machine). Throws std::runtime_error naming the rule that does not compile.
hs_database_t* compile_rule_database(const std::vector<std::string>& patterns,
                                     const hs_platform_info_t* platform);

// `db` as hs_serialize_database writes it; throws std::runtime_error when it cannot.
std::string serialize_rule_database(const hs_database_t* db);

// A digest of everything the databases are compiled from (patterns, prefilters, flags), so
// that databases compiled from other rules are never used for these.
uint64_t rule_set_fingerprint(const RulePatterns& rules);

// The serialized pair the build embeds: "AWHS1\n", the fingerprint, then each database as a
// 64-bit length and its bytes (lengths and fingerprint little-endian).
struct PrecompiledRules {
  uint64_t fingerprint = 0;
  std::string_view rules, prefilters;  // hs_serialize_database output
};
std::string encode_precompiled(const PrecompiledRules& p);
// nullopt when `blob` is not such a pair (empty, cut short, another format).
std::optional<PrecompiledRules> decode_precompiled(std::string_view blob);

// The pair embedded at build time (agent/detect/injection_db.cc); empty when the build has none.
std::string_view embedded_rule_databases();

}  // namespace agentwall::detect
