// The SQLite ledger: one file, WAL mode, one BEGIN IMMEDIATE transaction per operation, so
// threads of this process (serialised by a mutex) and other processes opening the same file
// (serialised by SQLite's write lock) never count against a stale total.
#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "agent/budget/backends.h"
#include "agent/budget/plan.h"

namespace agentwall::budget {
namespace {

constexpr int kBusyTimeoutMs = 2000;
constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Usage per budget, principal key and bucket (bucket = start, Unix seconds). Counts include
-- the estimates of reservations not yet settled.
CREATE TABLE IF NOT EXISTS usage(
  budget TEXT NOT NULL, key TEXT NOT NULL, bucket INTEGER NOT NULL,
  tokens INTEGER NOT NULL, usd REAL NOT NULL,
  PRIMARY KEY(budget, key, bucket)) WITHOUT ROWID;
-- Warn levels already alerted (bit i = level i) in the calendar window that starts at `win`.
CREATE TABLE IF NOT EXISTS alerts(
  budget TEXT NOT NULL, key TEXT NOT NULL, win INTEGER NOT NULL, mask INTEGER NOT NULL,
  PRIMARY KEY(budget, key)) WITHOUT ROWID;
-- Token buckets: levels at updated_us (Unix microseconds).
CREATE TABLE IF NOT EXISTS rates(
  name TEXT NOT NULL, key TEXT NOT NULL, requests REAL NOT NULL, tokens REAL NOT NULL,
  updated_us INTEGER NOT NULL,
  PRIMARY KEY(name, key)) WITHOUT ROWID;
-- AUTOINCREMENT: an id is never reused, even after the newest reservation is deleted.
CREATE TABLE IF NOT EXISTS reservations(
  id INTEGER PRIMARY KEY AUTOINCREMENT, expires_ns INTEGER NOT NULL, held TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reservations_by_expiry ON reservations(expires_ns);
)sql";

// Raised by the helpers below; every public method catches it and reports a value.
struct DbError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw DbError(sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  template <typename... Args>
  Stmt& bind(const Args&... args) {
    int i = 0;
    (bind_one(++i, args), ...);
    return *this;
  }
  // True while there is a row to read.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw DbError(sqlite3_errmsg(db_));
  }
  int64_t int64(int col) { return sqlite3_column_int64(stmt_, col); }
  double real(int col) { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }

 private:
  void bind_one(int i, int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }
  void bind_one(int i, uint64_t v) { check(sqlite3_bind_int64(stmt_, i, static_cast<int64_t>(v))); }
  void bind_one(int i, double v) { check(sqlite3_bind_double(stmt_, i, v)); }
  void bind_one(int i, const std::string& v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void check(int rc) {
    if (rc != SQLITE_OK) throw DbError(sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    const std::string what = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    throw DbError(what);
  }
}

// BEGIN IMMEDIATE takes the write lock up front: two writers cannot both read a total and
// then both add to it. Rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, "COMMIT");
    done_ = true;
  }

 private:
  sqlite3* db_;
  bool done_ = false;
};

struct Totals {
  int64_t tokens = 0;
  double usd = 0;
};

struct RateRow {
  BucketLevel requests, tokens;
  int64_t updated_us = 0;
};

int64_t to_us(uint64_t ns) {
  return static_cast<int64_t>(ns / 1000);
}

class SqliteLedger final : public Ledger {
 public:
  SqliteLedger(sqlite3* db, std::string path, OnUnreachable on_error,
               std::vector<BudgetSpec> budgets, std::vector<RateLimitSpec> rates)
      : db_(db),
        path_(std::move(path)),
        on_error_(on_error),
        budgets_(std::move(budgets)),
        rates_(std::move(rates)) {}
  ~SqliteLedger() override { sqlite3_close_v2(db_); }

  Reservation reserve(const Principal& who, Usage estimate, uint64_t now_ns) override {
    const Plan plan = make_plan(budgets_, rates_, who, now_ns);
    if (plan.empty()) return {};
    std::lock_guard lock(mu_);
    try {
      return reserve_locked(plan, estimate, now_ns);
    } catch (const DbError& e) {
      Reservation r;
      r.allowed = on_error_ == OnUnreachable::kAllow;
      r.error = "budget ledger " + path_ + ": " + e.what();
      return r;
    }
  }

  std::vector<BudgetStatus> settle(uint64_t id, Usage actual, uint64_t now_ns) override {
    if (id == 0) return {};
    std::lock_guard lock(mu_);
    try {
      return settle_locked(id, actual, now_ns);
    } catch (const DbError&) {
      return {};  // the reservation stays and expires: its estimate stands in for the actual
    }
  }

  void release(uint64_t id) override {
    if (id == 0) return;
    std::lock_guard lock(mu_);
    try {
      Transaction tx(db_);
      Held held;
      if (take_reservation(id, held)) {
        give_back(held);
        for (const RateEntry& r : plan_for(budgets_, rates_, held, 0).rates)
          refund_rate(r, 1, double(held_tokens(held, r)));
      }
      tx.commit();
    } catch (const DbError&) {
      // Left to expire.
    }
  }

  std::vector<BudgetStatus> status(uint64_t now_ns) override {
    std::lock_guard lock(mu_);
    try {
      return status_locked(now_ns);
    } catch (const DbError&) {
      return {};
    }
  }

 private:
  Reservation reserve_locked(const Plan& plan, Usage estimate, uint64_t now_ns) {
    Transaction tx(db_);
    expire_reservations(now_ns);
    Reservation out;
    std::vector<Totals> before;
    for (const BudgetEntry& e : plan.budgets) {
      prune(e);
      const Totals t = totals(e);
      before.push_back(t);
      BudgetStatus s = make_status(e, t.tokens, t.usd);
      s.refused = would_refuse(*e.spec, t.tokens, t.usd, estimate);
      out.allowed = out.allowed && !s.refused;
      out.budgets.push_back(std::move(s));
    }
    std::vector<RateRow> rows;
    for (const RateEntry& r : plan.rates) {
      rows.push_back(load_rate(r, to_us(now_ns)));
      RateStatus s = check_rate(r, rows.back(), estimate);
      out.allowed = out.allowed && !(s.exceeded && r.spec->action == "block");
      out.rates.push_back(std::move(s));
    }
    if (out.allowed) {
      for (size_t i = 0; i < plan.budgets.size(); ++i) {
        const BudgetEntry& e = plan.budgets[i];
        add_usage(e, e.pos.bucket_start, estimate);
        out.budgets[i] =
            counted_status(e, before[i].tokens + estimate.tokens, before[i].usd + estimate.usd);
      }
      for (size_t i = 0; i < plan.rates.size(); ++i)
        store_rate(plan.rates[i], take_rate(plan.rates[i], rows[i], estimate));
      out.id = insert_reservation(held_for(plan, estimate), now_ns + kReservationTtlNs);
    }
    tx.commit();
    return out;
  }

  std::vector<BudgetStatus> settle_locked(uint64_t id, Usage actual, uint64_t now_ns) {
    Transaction tx(db_);
    expire_reservations(now_ns);
    Held held;
    std::vector<BudgetStatus> out;
    if (take_reservation(id, held)) {
      for (const HeldBudget& h : held.budgets)
        adjust_usage(h, {actual.tokens - h.estimate.tokens, actual.usd - h.estimate.usd});
      const Plan plan = plan_for(budgets_, rates_, held, now_ns);
      // Tokens per minute were taken at the estimate: the difference goes back (or is owed).
      for (const RateEntry& r : plan.rates)
        refund_rate(r, 0, double(held_tokens(held, r) - actual.tokens));
      for (const BudgetEntry& e : plan.budgets) {
        const Totals t = totals(e);
        out.push_back(counted_status(e, t.tokens, t.usd));
      }
    }
    tx.commit();
    return out;
  }

  std::vector<BudgetStatus> status_locked(uint64_t now_ns) {
    Transaction tx(db_);
    expire_reservations(now_ns);
    std::vector<std::pair<std::string, std::string>> keys;
    Stmt q(db_, "SELECT DISTINCT budget, key FROM usage ORDER BY budget, key");
    while (q.step()) keys.emplace_back(q.text(0), q.text(1));
    std::vector<BudgetStatus> out;
    for (const auto& [budget_name, key] : keys) {
      const std::string& name = budget_name;  // clang 14 cannot capture a structured binding
      const auto spec = std::find_if(budgets_.begin(), budgets_.end(),
                                     [&](const BudgetSpec& b) { return b.name == name; });
      if (spec == budgets_.end()) continue;
      const BudgetEntry e = make_budget_entry(*spec, key, now_ns);
      prune(e);
      if (!has_usage(e)) continue;  // the key's usage all aged out of the window
      const Totals t = totals(e);
      out.push_back(make_status(e, t.tokens, t.usd));
    }
    tx.commit();
    return out;
  }

  // The status after usage changed, with the warn levels this change crossed.
  BudgetStatus counted_status(const BudgetEntry& e, int64_t tokens, double usd) {
    BudgetStatus s = make_status(e, tokens, usd);
    Stmt q(db_, "SELECT win, mask FROM alerts WHERE budget = ? AND key = ?");
    q.bind(e.spec->name, e.key);
    uint64_t mask = 0;
    // A calendar window starts with nothing alerted; a rolling one re-arms level by level.
    if (q.step() && (e.spec->rolling || q.int64(0) == e.pos.window_start))
      mask = static_cast<uint64_t>(q.int64(1));
    s.crossed = cross_levels(e, s.fraction, mask);
    Stmt w(db_,
           "INSERT INTO alerts(budget, key, win, mask) VALUES(?, ?, ?, ?) "
           "ON CONFLICT(budget, key) DO UPDATE SET win = excluded.win, mask = excluded.mask");
    w.bind(e.spec->name, e.key, e.pos.window_start, static_cast<int64_t>(mask)).step();
    return s;
  }

  Totals totals(const BudgetEntry& e) {
    Stmt q(db_,
           "SELECT COALESCE(SUM(tokens), 0), COALESCE(SUM(usd), 0) FROM usage "
           "WHERE budget = ? AND key = ? AND bucket >= ?");
    q.bind(e.spec->name, e.key, e.pos.window_start).step();
    return {q.int64(0), q.real(1)};
  }

  bool has_usage(const BudgetEntry& e) {
    Stmt q(db_, "SELECT 1 FROM usage WHERE budget = ? AND key = ? AND bucket >= ? LIMIT 1");
    return q.bind(e.spec->name, e.key, e.pos.window_start).step();
  }

  // Buckets older than the window are of no further use.
  void prune(const BudgetEntry& e) {
    Stmt q(db_, "DELETE FROM usage WHERE budget = ? AND key = ? AND bucket < ?");
    q.bind(e.spec->name, e.key, e.pos.window_start).step();
  }

  void add_usage(const BudgetEntry& e, int64_t bucket, Usage u) {
    Stmt q(db_,
           "INSERT INTO usage(budget, key, bucket, tokens, usd) VALUES(?, ?, ?, ?, ?) "
           "ON CONFLICT(budget, key, bucket) DO UPDATE SET "
           "tokens = tokens + excluded.tokens, usd = usd + excluded.usd");
    q.bind(e.spec->name, e.key, bucket, u.tokens, u.usd).step();
  }

  // Corrects a reservation's bucket; a bucket already pruned is outside every window.
  void adjust_usage(const HeldBudget& h, Usage delta) {
    Stmt q(db_,
           "UPDATE usage SET tokens = tokens + ?, usd = usd + ? "
           "WHERE budget = ? AND key = ? AND bucket = ?");
    q.bind(delta.tokens, delta.usd, h.name, h.key, h.bucket).step();
  }

  void give_back(const Held& held) {
    for (const HeldBudget& h : held.budgets) adjust_usage(h, {-h.estimate.tokens, -h.estimate.usd});
  }

  uint64_t insert_reservation(const Held& held, uint64_t expires_ns) {
    Stmt q(db_, "INSERT INTO reservations(expires_ns, held) VALUES(?, ?)");
    q.bind(expires_ns, held_to_json(held)).step();
    return static_cast<uint64_t>(sqlite3_last_insert_rowid(db_));
  }

  // Reads and deletes a reservation; false when there is none by that id.
  bool take_reservation(uint64_t id, Held& held) {
    Stmt q(db_, "SELECT held FROM reservations WHERE id = ?");
    if (!q.bind(id).step()) return false;
    const std::string json = q.text(0);
    Stmt d(db_, "DELETE FROM reservations WHERE id = ?");
    d.bind(id).step();
    return held_from_json(json, held);
  }

  // Reservations nobody settled (their caller crashed or lost track) give their estimate
  // back, so that a dead process cannot hold a budget forever.
  void expire_reservations(uint64_t now_ns) {
    std::vector<std::pair<int64_t, std::string>> stale;
    Stmt q(db_, "SELECT id, held FROM reservations WHERE expires_ns <= ?");
    q.bind(now_ns);
    while (q.step()) stale.emplace_back(q.int64(0), q.text(1));
    for (const auto& [id, json] : stale) {
      Held held;
      if (held_from_json(json, held)) give_back(held);
      Stmt d(db_, "DELETE FROM reservations WHERE id = ?");
      d.bind(id).step();
    }
  }

  RateRow load_rate(const RateEntry& r, int64_t now_us) {
    Stmt q(db_, "SELECT requests, tokens, updated_us FROM rates WHERE name = ? AND key = ?");
    RateRow row;
    const bool exists = q.bind(r.spec->name, r.key).step();
    if (exists) {
      row.requests = {q.real(0), true};
      row.tokens = {q.real(1), true};
    }
    const double elapsed_s = exists ? static_cast<double>(now_us - q.int64(2)) / 1e6 : 0;
    if (r.spec->requests_per_minute) {
      const double rate = *r.spec->requests_per_minute;
      row.requests.level = refill(row.requests, rate, bucket_capacity(rate, *r.spec), elapsed_s);
    }
    if (r.spec->tokens_per_minute) {
      const double rate = *r.spec->tokens_per_minute;
      row.tokens.level = refill(row.tokens, rate, bucket_capacity(rate, *r.spec), elapsed_s);
    }
    row.updated_us = now_us;
    return row;
  }

  void store_rate(const RateEntry& r, const RateRow& row) {
    Stmt q(db_,
           "INSERT INTO rates(name, key, requests, tokens, updated_us) VALUES(?, ?, ?, ?, ?) "
           "ON CONFLICT(name, key) DO UPDATE SET requests = excluded.requests, "
           "tokens = excluded.tokens, updated_us = excluded.updated_us");
    q.bind(r.spec->name, r.key, row.requests.level, row.tokens.level, row.updated_us).step();
  }

  static RateStatus check_rate(const RateEntry& r, const RateRow& row, Usage estimate) {
    RateStatus s{r.spec->name, r.key, false, 0, r.spec->action};
    if (const auto rate = r.spec->requests_per_minute)
      s.retry_after_s = wait_for(row.requests.level, 1, *rate, bucket_capacity(*rate, *r.spec));
    if (const auto rate = r.spec->tokens_per_minute)
      s.retry_after_s =
          std::max(s.retry_after_s, wait_for(row.tokens.level, double(estimate.tokens), *rate,
                                             bucket_capacity(*rate, *r.spec)));
    s.exceeded = s.retry_after_s > 0;
    return s;
  }

  static RateRow take_rate(const RateEntry& r, RateRow row, Usage estimate) {
    if (const auto rate = r.spec->requests_per_minute)
      row.requests.level = take(row.requests.level, 1, bucket_capacity(*rate, *r.spec));
    if (const auto rate = r.spec->tokens_per_minute)
      row.tokens.level =
          take(row.tokens.level, double(estimate.tokens), bucket_capacity(*rate, *r.spec));
    return row;
  }

  static int64_t held_tokens(const Held& held, const RateEntry& r) {
    for (const HeldRate& h : held.rates)
      if (h.name == r.spec->name && h.key == r.key) return h.tokens;
    return 0;
  }

  // Puts requests and tokens back into a bucket (negative: takes them), within its bounds.
  // The refill owed since updated_us is left for the next reserve to add.
  void refund_rate(const RateEntry& r, double requests, double tokens) {
    Stmt q(db_, "SELECT requests, tokens, updated_us FROM rates WHERE name = ? AND key = ?");
    if (!q.bind(r.spec->name, r.key).step()) return;
    RateRow row{{q.real(0), true}, {q.real(1), true}, q.int64(2)};
    if (const auto rate = r.spec->requests_per_minute) {
      const double cap = bucket_capacity(*rate, *r.spec);
      row.requests.level = std::clamp(row.requests.level + requests, -cap, cap);
    }
    if (const auto rate = r.spec->tokens_per_minute) {
      const double cap = bucket_capacity(*rate, *r.spec);
      row.tokens.level = std::clamp(row.tokens.level + tokens, -cap, cap);
    }
    store_rate(r, row);
  }

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
  OnUnreachable on_error_;
  std::vector<BudgetSpec> budgets_;
  std::vector<RateLimitSpec> rates_;
};

// Turns SQLite's view of a bad file into what the operator should do about it.
std::string explain_open_failure(const std::string& path, int code, const std::string& what) {
  const std::string head = "budget ledger " + path + ": ";
  switch (code & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return head + "the file is damaged or not a SQLite database (" + what +
             "); move it aside (budgets then start from zero) or restore it from a backup";
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return head + "cannot open it for writing (" + what +
             "); its directory must exist and be writable by the agent";
    default:
      return head + what;
  }
}

void prepare_schema(sqlite3* db) {
  exec(db, kSchema);
  Stmt q(db, "SELECT value FROM meta WHERE name = 'schema'");
  if (!q.step()) {
    Stmt w(db, "INSERT INTO meta(name, value) VALUES('schema', ?)");
    w.bind(std::to_string(kSchemaVersion)).step();
  } else if (q.text(0) != std::to_string(kSchemaVersion)) {
    throw DbError("schema version " + q.text(0) + " is not the version this agent knows (" +
                  std::to_string(kSchemaVersion) + "): the file is from another agent version");
  }
}

}  // namespace

std::unique_ptr<Ledger> open_sqlite_ledger(const std::string& path, OnUnreachable on_error,
                                           std::vector<BudgetSpec> budgets,
                                           std::vector<RateLimitSpec> rates, std::string& error) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    error = explain_open_failure(path, rc, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return nullptr;
  }
  try {
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    sqlite3_extended_result_codes(db, 0);
    // WAL: readers do not block the writer; NORMAL sync: a committed transaction survives a
    // crash or kill -9 of the agent (a power cut may lose the last moments).
    exec(db, "PRAGMA journal_mode = WAL");
    exec(db, "PRAGMA synchronous = NORMAL");
    Stmt check(db, "PRAGMA quick_check");
    if (check.step() && check.text(0) != "ok") {
      error = explain_open_failure(path, SQLITE_CORRUPT, "integrity check: " + check.text(0));
      sqlite3_close_v2(db);
      return nullptr;
    }
    prepare_schema(db);
  } catch (const DbError& e) {
    error = explain_open_failure(path, sqlite3_errcode(db), e.what());
    sqlite3_close_v2(db);
    return nullptr;
  }
  return std::make_unique<SqliteLedger>(db, path, on_error, std::move(budgets), std::move(rates));
}

}  // namespace agentwall::budget
