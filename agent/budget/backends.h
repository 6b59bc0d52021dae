// The ledger backends, each behind Ledger. Ledger::open picks one from LedgerSpec::backend.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/budget/ledger.h"

namespace agentwall::budget {

// `on_error`: what reserve answers when the database fails (disk full, locked too long).
std::unique_ptr<Ledger> open_sqlite_ledger(const std::string& path, OnUnreachable on_error,
                                           std::vector<BudgetSpec> budgets,
                                           std::vector<RateLimitSpec> rates, std::string& error);

struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user, password;  // AUTH when the password is set
};
// redis://[[user]:password@]host[:port][/db]; IPv6 hosts in brackets.
bool parse_redis_url(const std::string& url, RedisAddress& out, std::string& error);

std::unique_ptr<Ledger> open_redis_ledger(const LedgerSpec& spec, std::vector<BudgetSpec> budgets,
                                          std::vector<RateLimitSpec> rates, std::string& error);

}  // namespace agentwall::budget
