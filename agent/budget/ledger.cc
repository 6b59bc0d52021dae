#include "agent/budget/ledger.h"

#include <filesystem>
#include <system_error>

#include "agent/budget/backends.h"
#include "agent/budget/plan.h"

namespace agentwall::budget {

std::unique_ptr<Ledger> Ledger::open(const LedgerSpec& ledger, std::vector<BudgetSpec> budgets,
                                     std::vector<RateLimitSpec> rates, const std::string& state_dir,
                                     std::string& error) {
  if (!validate(budgets, rates, error)) return nullptr;
  if (ledger.backend == "redis")
    return open_redis_ledger(ledger, std::move(budgets), std::move(rates), error);
  if (ledger.backend != "sqlite") {
    error = "budget ledger: unknown backend \"" + ledger.backend + "\" (sqlite or redis)";
    return nullptr;
  }
  std::string path = ledger.sqlite_path;
  if (path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) {
      error = "budget ledger: cannot create the state directory " + state_dir + ": " + ec.message();
      return nullptr;
    }
    path = (std::filesystem::path(state_dir) / "ledger.db").string();
  }
  return open_sqlite_ledger(path, ledger.on_unreachable, std::move(budgets), std::move(rates),
                            error);
}

}  // namespace agentwall::budget
