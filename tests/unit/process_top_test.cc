// `agentwall top` and `agentwall tail` on the daemon's side: the per-process aggregator and
// the tail filter, fed the event lines the sinks get (tests/fixtures/sink-events.jsonl, made
// compact as the agent writes them).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/daemon/event_filter.h"
#include "agent/daemon/top.h"

using namespace agentwall::daemon;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kT0 = 1'790'000'000 * kSecond;

// Every fixture line as the agent emits it: compact, "type" first.
std::vector<std::string> fixture_lines() {
  std::ifstream in(AGENTWALL_FIXTURES "/sink-events.jsonl");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::ordered_json::parse(line).dump());
  REQUIRE(out.size() == 7);
  return out;
}

std::string exchange(uint32_t pid, const std::string& exe, uint64_t in, uint64_t out,
                     const std::string& model = "gpt-4o-mini") {
  nlohmann::ordered_json j;
  j["type"] = "llm.exchange";
  j["provider"] = "openai";
  j["model"] = model;
  j["usage"] = {{"input_tokens", in}, {"output_tokens", out}};
  j["cost_usd"] = 0.5;
  j["process"] = {{"pid", pid}, {"comm", "python3"}, {"exe", exe}};
  return j.dump();
}

const TopRow* row_of(const std::vector<TopRow>& rows, uint32_t pid) {
  for (const TopRow& r : rows)
    if (r.pid == pid) return &r;
  return nullptr;
}

}  // namespace

TEST_CASE("top: calls, tokens, cost, alerts and actions per process from real events") {
  ProcessTop top;
  for (const std::string& line : fixture_lines()) top.observe(line, kT0);
  const std::vector<TopRow> rows = top.rows(kT0 + kSecond);
  REQUIRE(rows.size() == 4);  // 4242 (alerts, action) and three node clients

  const TopRow* alice = row_of(rows, 4242);
  REQUIRE(alice);
  CHECK(alice->exe == "/usr/bin/python3.11");
  CHECK(alice->comm == "python3");
  CHECK(alice->user == "alice");
  CHECK(alice->calls == 0);
  CHECK(alice->alerts == 2);  // policy.alert and budget.alert
  CHECK(alice->blocked == 1);
  CHECK(alice->redacted == 0);

  const TopRow* node = row_of(rows, 25200);
  REQUIRE(node);
  CHECK(node->exe == "/usr/bin/node");
  CHECK(node->comm == "node");
  CHECK(node->calls == 1);
  CHECK(node->input_tokens == 88);
  CHECK(node->output_tokens == 14);
  CHECK(node->cost_usd == doctest::Approx(1.995e-05));
  CHECK(node->last_model == "gpt-4o-mini");
  CHECK(node->last_provider == "openai");
  CHECK(node->calls_1m == 1);
  CHECK(node->tokens_1m == 102);

  const nlohmann::json j = nlohmann::json::parse(top.json(kT0 + kSecond));
  CHECK(j["type"] == "agent.top");
  CHECK(j["processes"].size() == 4);
}

TEST_CASE("top: per-minute rates slide, idle processes are forgotten, rows are capped") {
  ProcessTop top(ProcessTop::Options{.max_rows = 3, .forget_after_ns = 600 * kSecond});
  top.observe(exchange(10, "/usr/bin/python3", 100, 10), kT0);
  top.observe(exchange(10, "/usr/bin/python3", 200, 20, "gpt-4o"), kT0 + 30 * kSecond);
  auto rows = top.rows(kT0 + 45 * kSecond);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].calls == 2);
  CHECK(rows[0].input_tokens == 300);
  CHECK(rows[0].cost_usd == doctest::Approx(1.0));
  CHECK(rows[0].last_model == "gpt-4o");
  CHECK(rows[0].calls_1m == 2);
  rows = top.rows(kT0 + 75 * kSecond);  // the first call is over a minute old
  CHECK(rows[0].calls == 2);
  CHECK(rows[0].calls_1m == 1);
  CHECK(rows[0].tokens_1m == 220);

  // A pid reused by another program is a new row.
  top.observe(exchange(10, "/usr/bin/node", 1, 1), kT0 + 80 * kSecond);
  rows = top.rows(kT0 + 80 * kSecond);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].exe == "/usr/bin/node");
  CHECK(rows[0].calls == 1);

  // At most max_rows: the least recently seen go first.
  for (uint32_t pid = 20; pid < 25; ++pid)
    top.observe(exchange(pid, "/usr/bin/curl", 1, 1), kT0 + (100 + pid) * kSecond);
  rows = top.rows(kT0 + 130 * kSecond);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].pid == 24);  // most recently seen first
  CHECK(row_of(rows, 10) == nullptr);

  // Ten minutes without an event: gone.
  CHECK(top.rows(kT0 + 130 * kSecond + 601 * kSecond).empty());

  // Lines of other types and broken lines change nothing.
  top.observe(R"({"type":"agent.health","uptime_s":1})", kT0);
  top.observe(R"({"type":"llm.exchange",)", kT0);
  top.observe(R"({"type":"llm.exchange","process":{"pid":"x"}})", kT0);
  CHECK(top.rows(kT0).empty());
}

TEST_CASE("tail filter: type globs, pid, exe glob and minimum severity") {
  const std::vector<std::string> lines = fixture_lines();
  auto matching = [&](const nlohmann::json& request) {
    std::string error;
    const auto f = EventFilter::from_request(request, error);
    REQUIRE_MESSAGE(f, error);
    std::vector<std::string> types;
    for (const std::string& l : lines)
      if (f->matches(l)) types.push_back(nlohmann::json::parse(l)["type"]);
    return types;
  };
  using V = std::vector<std::string>;
  CHECK(matching({{"cmd", "tail"}}).size() == 7);
  CHECK(matching({{"types", {"llm.exchange"}}}) ==
        V{"llm.exchange", "llm.exchange", "llm.exchange"});
  CHECK(matching({{"types", {"*.alert", "agent.*"}}}) ==
        V{"policy.alert", "budget.alert", "agent.health"});
  CHECK(matching({{"pid", 4242}}) == V{"policy.alert", "budget.alert", "enforce.action"});
  CHECK(matching({{"exe", "*python*"}}) == V{"policy.alert", "budget.alert"});
  CHECK(matching({{"pid", 25211}, {"types", {"llm.*"}}}) == V{"llm.exchange"});
  CHECK(matching({{"min_severity", "medium"}}) == V{"policy.alert"});
  CHECK(matching({{"min_severity", "critical"}}).empty());

  std::string error;
  CHECK_FALSE(EventFilter::from_request({{"min_severity", "urgent"}}, error));
  CHECK(error.find("info, low, medium, high, critical") != std::string::npos);
  CHECK_FALSE(EventFilter::from_request({{"types", "llm.*"}}, error));
  CHECK_FALSE(EventFilter::from_request({{"pid", -3}}, error));
  CHECK(severity_rank("high") > severity_rank("medium"));
}
