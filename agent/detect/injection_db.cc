// The injection rule set's vectorscan databases, compiled when agentwall was built
// (agent/detect/precompile/, agent/detect/injection_rules.h) and embedded here: the build
// passes the generated file's path.
#include "agent/common/embed.h"
#include "agent/detect/injection_rules.h"

AGENTWALL_EMBED(agentwall_injection_db, AGENTWALL_INJECTION_DB_PATH);

namespace agentwall::detect {

std::string_view embedded_rule_databases() {
  return embedded_bytes(agentwall_injection_db_begin, agentwall_injection_db_end);
}

}  // namespace agentwall::detect
