// The budget ledger on SQLite: windows, warnings, blocking, reserve/settle/release, restart,
// concurrency, expiry of abandoned reservations, rate limits, filters, bad input. Time is
// injected, so windows roll over without waiting.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/budget/backends.h"
#include "agent/budget/ledger.h"
#include "agent/budget/plan.h"
#include "tests/unit/temp_dir.h"

using namespace agentwall::budget;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kS = 1'000'000'000ull;
// 2025-03-14T10:00:00Z: a Friday in the middle of a month.
constexpr uint64_t kT0 = 1741946400ull * kS;

using agentwall::test::TempDir;

BudgetSpec tokens_budget(int64_t limit, Window w = Window::kDay, bool rolling = false) {
  BudgetSpec b;
  b.name = "tokens";
  b.tokens = limit;
  b.window = w;
  b.rolling = rolling;
  return b;
}

std::unique_ptr<Ledger> open_ledger(const TempDir& dir, std::vector<BudgetSpec> budgets,
                                    std::vector<RateLimitSpec> rates = {}) {
  std::string error;
  auto ledger =
      Ledger::open(LedgerSpec{}, std::move(budgets), std::move(rates), dir.path.string(), error);
  INFO(error);
  REQUIRE(ledger);
  return ledger;
}

Principal alice() {
  Principal p;
  p.user = "alice";
  p.model = "gpt-4o";
  p.provider = "openai";
  p.exe = "/usr/bin/python3";
  return p;
}

Usage tokens(int64_t n) {
  return {n, 0};
}

}  // namespace

TEST_CASE("budget: principal keys name the dimensions a budget counts per") {
  Principal p = alice();
  CHECK(principal_key(p, {}) == "*");
  CHECK(principal_key(p, {Dimension::kUser, Dimension::kModel}) == "user=alice,model=gpt-4o");
  p.user = "a,b=c%";
  CHECK(principal_key(p, {Dimension::kUser}) == "user=a%2Cb%3Dc%25");
  CHECK(principal_key(p, {Dimension::kApiKey}) == "api_key=");
}

TEST_CASE("budget: calendar windows start at UTC boundaries") {
  const int64_t t = 1741946400 + 17 * 60 + 42;  // 2025-03-14T10:17:42Z
  CHECK(calendar_start(Window::kMinute, t) == 1741946400 + 17 * 60);
  CHECK(calendar_start(Window::kHour, t) == 1741946400);
  CHECK(calendar_start(Window::kDay, t) == 1741910400);                 // 2025-03-14T00:00:00Z
  CHECK(calendar_start(Window::kMonth, t) == 1740787200);               // 2025-03-01T00:00:00Z
  CHECK(calendar_start(Window::kMonth, 1740787200 - 1) == 1738368000);  // 2025-02-01
}

TEST_CASE("budget: a calendar day refuses past its limit and starts afresh at midnight UTC") {
  TempDir dir;
  auto ledger = open_ledger(dir, {tokens_budget(1000)});
  const Reservation a = ledger->reserve(alice(), tokens(600), kT0);
  CHECK(a.allowed);
  CHECK(a.id != 0);
  REQUIRE(a.budgets.size() == 1);
  CHECK(a.budgets[0].used_tokens == 600);
  CHECK(a.budgets[0].window_start == "2025-03-14T00:00:00.000000000Z");
  CHECK(a.budgets[0].key == "*");

  const Reservation b = ledger->reserve(alice(), tokens(600), kT0 + 60 * kS);
  CHECK_FALSE(b.allowed);
  CHECK(b.id == 0);
  CHECK(b.budgets[0].refused);
  CHECK(b.budgets[0].used_tokens == 600);  // nothing was reserved

  const uint64_t next_day = kT0 + 14 * 3600 * kS;  // 2025-03-15T00:00:00Z
  const Reservation c = ledger->reserve(alice(), tokens(600), next_day);
  CHECK(c.allowed);
  CHECK(c.budgets[0].used_tokens == 600);
  CHECK(c.budgets[0].window_start == "2025-03-15T00:00:00.000000000Z");
}

TEST_CASE("budget: a rolling minute forgets usage one second bucket at a time") {
  TempDir dir;
  auto ledger = open_ledger(dir, {tokens_budget(100, Window::kMinute, /*rolling=*/true)});
  CHECK(ledger->reserve(alice(), tokens(60), kT0).allowed);
  CHECK_FALSE(ledger->reserve(alice(), tokens(60), kT0 + 30 * kS).allowed);
  CHECK_FALSE(ledger->reserve(alice(), tokens(60), kT0 + 59 * kS).allowed);
  const Reservation r = ledger->reserve(alice(), tokens(60), kT0 + 60 * kS);
  CHECK(r.allowed);
  CHECK(r.budgets[0].used_tokens == 60);
  CHECK(r.budgets[0].window_start == "2025-03-14T10:00:01.000000000Z");
}

TEST_CASE("budget: each warn level fires once per window and key") {
  TempDir dir;
  BudgetSpec b = tokens_budget(100);
  b.warn_at = {0.8, 0.5};
  b.per = {Dimension::kUser};
  auto ledger = open_ledger(dir, {b});
  const auto crossed = [&](Principal who, int64_t n, uint64_t now) {
    const Reservation r = ledger->reserve(who, tokens(n), now);
    REQUIRE(r.allowed);
    return r.budgets[0].crossed;
  };
  CHECK(crossed(alice(), 40, kT0).empty());
  CHECK(crossed(alice(), 20, kT0) == std::vector<double>{0.5});
  CHECK(crossed(alice(), 10, kT0).empty());
  CHECK(crossed(alice(), 15, kT0) == std::vector<double>{0.8});
  CHECK(crossed(alice(), 1, kT0).empty());
  Principal bob = alice();
  bob.user = "bob";  // another key: its own alerts
  CHECK(crossed(bob, 90, kT0) == std::vector<double>{0.5, 0.8});
  CHECK(crossed(alice(), 55, kT0 + 86400 * kS) == std::vector<double>{0.5});  // next day
}

TEST_CASE("budget: block stops at 100%; alert lets calls through and says exceeded once") {
  TempDir dir;
  BudgetSpec block = tokens_budget(100);
  BudgetSpec alert = tokens_budget(50);
  alert.name = "soft";
  alert.action = "alert";
  auto ledger = open_ledger(dir, {block, alert});
  const Reservation full = ledger->reserve(alice(), tokens(100), kT0);
  CHECK(full.allowed);  // exactly the limit fits
  CHECK(full.budgets[0].state == "exceeded");
  CHECK(full.budgets[0].crossed == std::vector<double>{1.0});
  CHECK(full.budgets[1].state == "exceeded");
  CHECK(full.budgets[1].crossed == std::vector<double>{1.0});
  const Reservation more = ledger->reserve(alice(), tokens(1), kT0);
  CHECK_FALSE(more.allowed);
  CHECK(more.budgets[0].refused);
  CHECK_FALSE(more.budgets[1].refused);
  CHECK(more.budgets[1].crossed.empty());  // refused: nothing counted, nothing crossed
}

TEST_CASE("budget: dollars: ten calls of $0.10 fit a $1.00 budget") {
  TempDir dir;
  BudgetSpec b;
  b.name = "usd";
  b.usd = 1.0;
  auto ledger = open_ledger(dir, {b});
  for (int i = 0; i < 10; ++i) CHECK(ledger->reserve(alice(), {0, 0.10}, kT0).allowed);
  const Reservation r = ledger->reserve(alice(), {0, 0.01}, kT0);
  CHECK_FALSE(r.allowed);
  CHECK(r.budgets[0].used_usd == doctest::Approx(1.0));
  CHECK(r.budgets[0].limit_usd == 1.0);
  CHECK_FALSE(r.budgets[0].limit_tokens);
}

TEST_CASE("budget: settle replaces the estimate; release gives it back; ids are used once") {
  TempDir dir;
  auto ledger = open_ledger(dir, {tokens_budget(1000)});
  const Reservation a = ledger->reserve(alice(), tokens(800), kT0);
  REQUIRE(a.allowed);
  const auto settled = ledger->settle(a.id, tokens(100), kT0 + kS);
  REQUIRE(settled.size() == 1);
  CHECK(settled[0].used_tokens == 100);
  CHECK(ledger->settle(a.id, tokens(100), kT0 + kS).empty());  // already settled

  const Reservation b = ledger->reserve(alice(), tokens(900), kT0 + 2 * kS);
  REQUIRE(b.allowed);
  CHECK(b.budgets[0].used_tokens == 1000);
  ledger->release(b.id);
  const auto now = ledger->status(kT0 + 3 * kS);
  REQUIRE(now.size() == 1);
  CHECK(now[0].used_tokens == 100);
  CHECK(now[0].state == "ok");
  CHECK(ledger->settle(0, tokens(1), kT0).empty());
}

TEST_CASE("budget: settling more than estimated goes over, and the next call is refused") {
  TempDir dir;
  auto ledger = open_ledger(dir, {tokens_budget(1000)});
  const Reservation a = ledger->reserve(alice(), tokens(100), kT0);
  const auto s = ledger->settle(a.id, tokens(1500), kT0);
  REQUIRE(s.size() == 1);
  CHECK(s[0].state == "exceeded");
  CHECK(s[0].crossed == std::vector<double>{1.0});
  CHECK_FALSE(ledger->reserve(alice(), tokens(1), kT0).allowed);
}

TEST_CASE("budget: the ledger survives a restart and a kill -9") {
  TempDir dir;
  uint64_t pending = 0;
  {
    auto ledger = open_ledger(dir, {tokens_budget(1000)});
    const Reservation a = ledger->reserve(alice(), tokens(300), kT0);
    ledger->settle(a.id, tokens(200), kT0);
    pending = ledger->reserve(alice(), tokens(100), kT0).id;
  }
  // A child process counts 50 more and dies without closing anything.
  fflush(nullptr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::string error;
    auto ledger = Ledger::open(LedgerSpec{}, {tokens_budget(1000)}, {}, dir.path.string(), error);
    if (ledger) ledger->settle(ledger->reserve(alice(), tokens(50), kT0).id, tokens(50), kT0);
    raise(SIGKILL);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));

  auto ledger = open_ledger(dir, {tokens_budget(1000)});
  auto now = ledger->status(kT0 + kS);
  REQUIRE(now.size() == 1);
  CHECK(now[0].used_tokens == 350);  // 200 settled + 100 pending + 50 from the child
  CHECK(ledger->settle(pending, tokens(10), kT0 + kS).at(0).used_tokens == 260);
}

TEST_CASE("budget: reservations never settled are given back after their TTL") {
  TempDir dir;
  auto ledger = open_ledger(dir, {tokens_budget(1000)});
  const Reservation lost = ledger->reserve(alice(), tokens(900), kT0);
  REQUIRE(lost.allowed);
  CHECK_FALSE(ledger->reserve(alice(), tokens(200), kT0 + 9 * 60 * kS).allowed);
  const Reservation later = ledger->reserve(alice(), tokens(200), kT0 + kReservationTtlNs + kS);
  CHECK(later.allowed);
  CHECK(later.budgets[0].used_tokens == 200);
  CHECK(ledger->settle(lost.id, tokens(900), kT0 + kReservationTtlNs + kS).empty());
}

TEST_CASE("budget: parallel callers never overshoot (threads, and ledgers sharing a file)") {
  TempDir dir;
  constexpr int kLedgers = 3, kThreadsEach = 3, kTries = 40;
  std::vector<std::unique_ptr<Ledger>> ledgers;
  for (int i = 0; i < kLedgers; ++i) ledgers.push_back(open_ledger(dir, {tokens_budget(1000)}));
  std::atomic<int> allowed{0}, errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kLedgers * kThreadsEach; ++i)
    threads.emplace_back([&, i] {
      for (int n = 0; n < kTries; ++n) {
        const Reservation r = ledgers[i % kLedgers]->reserve(alice(), tokens(10), kT0);
        allowed += r.allowed;
        errors += !r.error.empty();
      }
    });
  for (auto& t : threads) t.join();
  CHECK(errors == 0);
  CHECK(allowed == 100);
  CHECK(ledgers[0]->status(kT0).at(0).used_tokens == 1000);
}

TEST_CASE("budget: rate limits are token buckets that refill and correct at settle") {
  TempDir dir;
  RateLimitSpec rpm;
  rpm.name = "rpm";
  rpm.per = {Dimension::kUser};
  rpm.requests_per_minute = 2;
  RateLimitSpec tpm;
  tpm.name = "tpm";
  tpm.tokens_per_minute = 1000;
  tpm.burst = 1;
  auto ledger = open_ledger(dir, {}, {rpm, tpm});

  const Reservation a = ledger->reserve(alice(), tokens(600), kT0);
  REQUIRE(a.allowed);
  REQUIRE(a.rates.size() == 2);
  CHECK(a.rates[0].key == "user=alice");
  CHECK_FALSE(a.rates[0].exceeded);
  // 400 tokens left of 1000: 600 more must wait for 200 at 1000/min = 12 s.
  const Reservation b = ledger->reserve(alice(), tokens(600), kT0);
  CHECK_FALSE(b.allowed);
  CHECK(b.rates[1].exceeded);
  CHECK(b.rates[1].retry_after_s == doctest::Approx(12.0));
  // The first call used only 100: 500 go back, and the same call now fits.
  ledger->settle(a.id, tokens(100), kT0);
  const Reservation c = ledger->reserve(alice(), tokens(600), kT0);
  CHECK(c.allowed);
  // Two requests per minute: the third waits 30 s for one to refill.
  const Reservation d = ledger->reserve(alice(), tokens(1), kT0);
  CHECK_FALSE(d.allowed);
  CHECK(d.rates[0].exceeded);
  CHECK(d.rates[0].retry_after_s == doctest::Approx(30.0));
  CHECK(ledger->reserve(alice(), tokens(1), kT0 + 30 * kS).allowed);
  Principal bob = alice();
  bob.user = "bob";  // rpm is per user; tpm is shared
  const Reservation e = ledger->reserve(bob, tokens(1), kT0 + 30 * kS);
  CHECK_FALSE(e.rates[0].exceeded);
}

TEST_CASE("budget: a rate limit with action alert reports but does not refuse") {
  TempDir dir;
  RateLimitSpec rpm;
  rpm.name = "rpm";
  rpm.requests_per_minute = 1;
  rpm.action = "alert";
  auto ledger = open_ledger(dir, {}, {rpm});
  CHECK(ledger->reserve(alice(), tokens(1), kT0).allowed);
  const Reservation r = ledger->reserve(alice(), tokens(1), kT0);
  CHECK(r.allowed);
  CHECK(r.rates[0].exceeded);
}

TEST_CASE("budget: a cgroups filter counts only the processes of those cgroups") {
  // Two agents, each counting its own cgroup's calls into one shared budget: each ledger
  // here is one agent's view; the calls of the other cgroup are not its to count.
  TempDir dir;
  BudgetSpec team = tokens_budget(100);
  team.name = "team";
  team.cgroups = {"/team-a/*"};
  auto ledger = open_ledger(dir, {team});
  Principal in = alice();
  in.cgroup = "/team-a/job-1";
  Principal out = alice();
  out.cgroup = "/team-b/job-1";
  const Reservation other = ledger->reserve(out, tokens(500), kT0);
  CHECK(other.allowed);
  CHECK(other.budgets.empty());
  const Reservation mine = ledger->reserve(in, tokens(60), kT0);
  REQUIRE(mine.budgets.size() == 1);
  CHECK(mine.budgets[0].key == "*");
  CHECK(mine.budgets[0].used_tokens == 60);
}

TEST_CASE("budget: filters choose the calls a budget counts; per splits it by principal") {
  TempDir dir;
  BudgetSpec gpt = tokens_budget(100);
  gpt.name = "gpt";
  gpt.models = {"gpt-4*"};
  gpt.per = {Dimension::kUser, Dimension::kModel};
  BudgetSpec py = tokens_budget(100);
  py.name = "python";
  py.exes = {"/usr/bin/python*"};
  auto ledger = open_ledger(dir, {gpt, py});

  Principal claude = alice();
  claude.model = "claude-3-5-sonnet";
  claude.exe = "/usr/bin/node";
  const Reservation none = ledger->reserve(claude, tokens(500), kT0);
  CHECK(none.allowed);
  CHECK(none.id == 0);
  CHECK(none.budgets.empty());

  const Reservation r = ledger->reserve(alice(), tokens(60), kT0);
  REQUIRE(r.budgets.size() == 2);
  CHECK(r.budgets[0].key == "user=alice,model=gpt-4o");
  Principal mini = alice();
  mini.model = "gpt-4o-mini";
  mini.exe = "/usr/bin/node";
  const Reservation m = ledger->reserve(mini, tokens(60), kT0);
  CHECK(m.allowed);  // its own key in "gpt"; "python" does not apply
  REQUIRE(m.budgets.size() == 1);
  CHECK(m.budgets[0].key == "user=alice,model=gpt-4o-mini");
  CHECK(ledger->status(kT0).size() == 3);
}

TEST_CASE("budget: bad input gets errors that say what and where") {
  TempDir dir;
  std::string error;
  const fs::path file = dir.path / "not-a-dir";
  std::ofstream(file) << "x";
  CHECK_FALSE(Ledger::open(LedgerSpec{}, {tokens_budget(1)}, {}, (file / "state").string(), error));
  CHECK(error.find("cannot create the state directory") != std::string::npos);

  const fs::path corrupt = dir.path / "ledger.db";
  std::ofstream(corrupt) << std::string(4096, 'z');
  CHECK_FALSE(Ledger::open(LedgerSpec{}, {tokens_budget(1)}, {}, dir.path.string(), error));
  CHECK(error.find(corrupt.string()) != std::string::npos);
  CHECK(error.find("move it aside") != std::string::npos);

  LedgerSpec missing;
  missing.sqlite_path = (dir.path / "no" / "such" / "dir" / "ledger.db").string();
  CHECK_FALSE(Ledger::open(missing, {tokens_budget(1)}, {}, dir.path.string(), error));
  CHECK(error.find("writable") != std::string::npos);

  BudgetSpec nolimit;
  nolimit.name = "x";
  CHECK_FALSE(Ledger::open(LedgerSpec{}, {nolimit}, {}, dir.path.string(), error));
  CHECK(error == "budget \"x\": needs a tokens or usd limit");
  CHECK_FALSE(Ledger::open(LedgerSpec{}, {tokens_budget(1), tokens_budget(2)}, {},
                           dir.path.string(), error));
  CHECK(error.find("used twice") != std::string::npos);

  LedgerSpec redis;
  redis.backend = "redis";
  for (const char* url : {"", "http://x", "redis://", "redis://h:0", "redis://h:99999",
                          "redis://h:12/x", "redis://user@h"}) {
    redis.redis_url = url;
    CHECK_FALSE(Ledger::open(redis, {}, {}, dir.path.string(), error));
    CHECK(error.find("bad redis_url") == 0);
  }
}

TEST_CASE("budget: redis URLs") {
  RedisAddress a;
  std::string error;
  REQUIRE(parse_redis_url("redis://10.0.0.5:6390/2", a, error));
  CHECK(a.host == "10.0.0.5");
  CHECK(a.port == 6390);
  CHECK(a.db == 2);
  RedisAddress b;
  REQUIRE(parse_redis_url("redis://:s3cret@[::1]", b, error));
  CHECK(b.host == "::1");
  CHECK(b.port == 6379);
  CHECK(b.password == "s3cret");
  CHECK(b.user.empty());
}
