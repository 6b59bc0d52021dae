// The Redis budget ledger against a real redis-server, which the test starts on 127.0.0.1 on
// a free port (no persistence) and stops at the end, also when a check fails or the test
// dies (the server gets SIGKILL when its parent goes). Needs /usr/bin/redis-server (or
// REDIS_SERVER in the environment); no root.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "agent/budget/ledger.h"

using namespace agentwall::budget;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kS = 1'000'000'000ull;
constexpr uint64_t kT0 = 1741946400ull * kS;  // 2025-03-14T10:00:00Z

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool ping(int port) {
  const timeval tv{0, 200'000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  bool ok = false;
  if (c && !c->err) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
  }
  if (c) redisFree(c);
  return ok;
}

void command(int port, const char* cmd) {
  redisContext* c = redisConnect("127.0.0.1", port);
  REQUIRE((c && !c->err));
  freeReplyObject(redisCommand(c, cmd));
  redisFree(c);
}

// A redis-server child process: no snapshots, no append-only file, loopback only.
class RedisServer {
 public:
  explicit RedisServer(int port) : port_(port) { start(); }
  ~RedisServer() { stop(); }

  void start() {
    const char* bin =
        std::getenv("REDIS_SERVER") ? std::getenv("REDIS_SERVER") : "/usr/bin/redis-server";
    const std::string port = std::to_string(port_);
    fflush(nullptr);  // the child must not print our buffered output again
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      freopen("/dev/null", "w", stdout);
      execl(bin, bin, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--daemonize", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!ping(port_)) {
      int status = 0;
      REQUIRE_MESSAGE(waitpid(pid_, &status, WNOHANG) == 0, bin, " exited at start");
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, bin, " did not answer");
      std::this_thread::sleep_for(20ms);
    }
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port() const { return port_; }

 private:
  int port_;
  pid_t pid_ = -1;
};

LedgerSpec redis_spec(int port, const std::string& prefix,
                      OnUnreachable on = OnUnreachable::kAllow) {
  LedgerSpec s;
  s.backend = "redis";
  s.redis_url = "redis://127.0.0.1:" + std::to_string(port);
  s.key_prefix = prefix;
  s.on_unreachable = on;
  return s;
}

BudgetSpec tokens_budget(int64_t limit) {
  BudgetSpec b;
  b.name = "tokens";
  b.tokens = limit;
  return b;
}

std::unique_ptr<Ledger> open(const LedgerSpec& spec, std::vector<BudgetSpec> budgets,
                             std::vector<RateLimitSpec> rates = {}) {
  std::string error;
  auto ledger = Ledger::open(spec, std::move(budgets), std::move(rates), "/nonexistent", error);
  INFO(error);
  REQUIRE(ledger);
  return ledger;
}

Principal alice() {
  Principal p;
  p.user = "alice";
  p.model = "gpt-4o";
  return p;
}

Usage tokens(int64_t n) {
  return {n, 0};
}

// Reserves 10 tokens `tries` times from each of `threads` threads; returns how many were
// allowed.
int hammer(Ledger& ledger, int threads, int tries) {
  std::atomic<int> allowed{0};
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&] {
      for (int n = 0; n < tries; ++n) {
        const Reservation r = ledger.reserve(alice(), tokens(10), kT0);
        allowed += r.allowed && r.error.empty();
      }
    });
  for (auto& t : pool) t.join();
  return allowed;
}

}  // namespace

TEST_CASE("redis budget: two hosts (processes) sharing a budget never overshoot together") {
  RedisServer redis(free_port());
  const LedgerSpec spec = redis_spec(redis.port(), "t1:");
  constexpr int kHosts = 2;
  int pipes[kHosts][2];
  pid_t pids[kHosts];
  for (int h = 0; h < kHosts; ++h) {
    REQUIRE(pipe(pipes[h]) == 0);
    fflush(nullptr);
    pids[h] = fork();
    REQUIRE(pids[h] >= 0);
    if (pids[h] == 0) {
      std::string error;
      auto ledger = Ledger::open(spec, {tokens_budget(1000)}, {}, "/nonexistent", error);
      const int allowed = ledger ? hammer(*ledger, 4, 40) : -1000;
      (void)!write(pipes[h][1], &allowed, sizeof(allowed));
      _exit(0);
    }
    close(pipes[h][1]);
  }
  int total = 0;
  for (int h = 0; h < kHosts; ++h) {
    int allowed = 0;
    CHECK(read(pipes[h][0], &allowed, sizeof(allowed)) == sizeof(allowed));
    total += allowed;
    close(pipes[h][0]);
    waitpid(pids[h], nullptr, 0);
  }
  CHECK(total == 100);  // 320 attempts of 10 tokens against 1000
  auto ledger = open(spec, {tokens_budget(1000)});
  const auto status = ledger->status(kT0);
  REQUIRE(status.size() == 1);
  CHECK(status[0].used_tokens == 1000);
  CHECK(status[0].state == "exceeded");
}

TEST_CASE("redis budget: settle, release, warnings, expiry and rate limits") {
  RedisServer redis(free_port());
  BudgetSpec b = tokens_budget(1000);
  b.warn_at = {0.5};
  b.per = {Dimension::kUser};
  auto ledger = open(redis_spec(redis.port(), "t2:"), {b});

  const Reservation a = ledger->reserve(alice(), tokens(800), kT0);
  REQUIRE(a.allowed);
  CHECK(a.error.empty());
  CHECK(a.budgets.at(0).key == "user=alice");
  CHECK(a.budgets[0].crossed == std::vector<double>{0.5});
  const auto settled = ledger->settle(a.id, tokens(100), kT0 + kS);
  REQUIRE(settled.size() == 1);
  CHECK(settled[0].used_tokens == 100);
  CHECK(settled[0].crossed.empty());
  CHECK(ledger->settle(a.id, tokens(100), kT0 + kS).empty());

  const Reservation c = ledger->reserve(alice(), tokens(500), kT0 + 2 * kS);
  CHECK(c.budgets.at(0).crossed.empty());  // 60%: 50% already alerted in this window
  ledger->release(c.id);
  CHECK(ledger->status(kT0 + 2 * kS).at(0).used_tokens == 100);

  const Reservation lost = ledger->reserve(alice(), tokens(900), kT0 + 3 * kS);
  REQUIRE(lost.allowed);
  CHECK_FALSE(ledger->reserve(alice(), tokens(100), kT0 + 4 * kS).allowed);
  const Reservation later = ledger->reserve(alice(), tokens(100), kT0 + 3 * kS + kReservationTtlNs);
  CHECK(later.allowed);
  CHECK(later.budgets.at(0).used_tokens == 200);

  // Tokens per minute are taken at the estimate and corrected at settle.
  RateLimitSpec tpm;
  tpm.name = "tpm";
  tpm.tokens_per_minute = 1000;
  auto metered = open(redis_spec(redis.port(), "t2a:"), {}, {tpm});
  const Reservation first = metered->reserve(alice(), tokens(600), kT0);
  REQUIRE(first.allowed);
  const Reservation wait = metered->reserve(alice(), tokens(600), kT0);
  CHECK_FALSE(wait.allowed);
  CHECK(wait.rates.at(0).retry_after_s == doctest::Approx(12.0));
  metered->settle(first.id, tokens(100), kT0);
  CHECK(metered->reserve(alice(), tokens(600), kT0).allowed);

  RateLimitSpec one;
  one.name = "one";
  one.requests_per_minute = 1;
  auto limited = open(redis_spec(redis.port(), "t2b:"), {}, {one});
  CHECK(limited->reserve(alice(), tokens(1), kT0).allowed);
  const Reservation second = limited->reserve(alice(), tokens(1), kT0 + 15 * kS);
  CHECK_FALSE(second.allowed);
  CHECK(second.rates.at(0).retry_after_s == doctest::Approx(45.0));
  CHECK(limited->reserve(alice(), tokens(1), kT0 + 60 * kS).allowed);
}

TEST_CASE("redis budget: unreachable Redis: allow or block as configured, without hanging") {
  const int port = free_port();  // nothing listens here
  auto allow = open(redis_spec(port, "t3:", OnUnreachable::kAllow), {tokens_budget(10)});
  auto block = open(redis_spec(port, "t3:", OnUnreachable::kBlock), {tokens_budget(10)});
  const auto start = std::chrono::steady_clock::now();
  const Reservation a = allow->reserve(alice(), tokens(1), kT0);
  const Reservation b = block->reserve(alice(), tokens(1), kT0);
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  CHECK(a.allowed);
  CHECK(a.id == 0);
  CHECK(a.error.find("redis 127.0.0.1:" + std::to_string(port) + " unreachable: ") == 0);
  CHECK_FALSE(b.allowed);
  CHECK(b.error.find("unreachable") != std::string::npos);
  CHECK(allow->status(kT0).empty());
}

TEST_CASE("redis budget: reconnects after Redis restarts and after its scripts are flushed") {
  RedisServer redis(free_port());
  auto ledger = open(redis_spec(redis.port(), "t4:", OnUnreachable::kBlock), {tokens_budget(100)});
  CHECK(ledger->reserve(alice(), tokens(10), kT0).allowed);

  command(redis.port(), "SCRIPT FLUSH");
  const Reservation flushed = ledger->reserve(alice(), tokens(10), kT0);
  CHECK(flushed.allowed);
  CHECK(flushed.error.empty());
  CHECK(flushed.budgets.at(0).used_tokens == 20);

  redis.stop();
  const Reservation down = ledger->reserve(alice(), tokens(10), kT0);
  CHECK_FALSE(down.allowed);
  CHECK_FALSE(down.error.empty());

  redis.start();  // same port, empty: the old counts are gone with the old server
  Reservation back;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    std::this_thread::sleep_for(50ms);
    back = ledger->reserve(alice(), tokens(10), kT0);
  } while (!back.error.empty() && std::chrono::steady_clock::now() < deadline);
  CHECK(back.error.empty());
  CHECK(back.allowed);
  CHECK(back.budgets.at(0).used_tokens == 10);
}
