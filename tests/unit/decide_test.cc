// The decide stage on MCP requests: a request whose write is held is judged at once and a
// block goes to the gate; one that is not held is judged with its answer; a judged request
// is not alerted twice.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "agent/decide/decider.h"
#include "agent/enforce/gate.h"

using namespace agentwall;

namespace {

constexpr const char* kRedactRule = R"(
  - rule: redact-secret-args
    match:
      traffic: {kind: mcp, direction: request}
    when:
      findings: {category: secret}
    action: redact
)";

const std::string kPolicy = std::string(R"(mode: enforce
rules:
  - rule: block-secret-args
    match:
      traffic: {kind: mcp, direction: request}
    when:
      findings: {category: secret}
    action: block
    severity: critical)") + kRedactRule +
                            R"(  - rule: note-every-call
    match:
      traffic: {kind: mcp}
    action: alert
)";

const char* kSecret = "sk-proj-Q7w8E9r0T1y2U3i4O5p6Q7w8E9r0T1y2U3i4O5p6AsDfGhJkLzXcVbNm";

struct Fixture {
  policy::Policy policy;
  llm::Inspector inspector;
  std::vector<nlohmann::json> alerts;
  std::vector<std::pair<uint64_t, enforce::RequestVerdict>> verdicts;
  bool held = true;
  decide::Decider decider;

  static policy::Policy load(const std::string& text) {
    std::vector<std::string> errors;
    auto p = policy::Policy::load_string(text, "p.yaml", errors);
    for (const auto& e : errors) MESSAGE(e);
    REQUIRE(p.has_value());
    return *p;
  }

  explicit Fixture(const std::string& policy_text = kPolicy)
      : policy(load(policy_text)),
        decider(
            decide::DecideOptions{&policy, nullptr, &inspector, nullptr,
                                  [this](uint64_t) { return held; }},
            [this](const std::string& line) {
              auto j = nlohmann::json::parse(line);
              if (j.value("type", "") == "policy.alert") alerts.push_back(j);
            },
            [this](uint64_t conn, enforce::RequestVerdict v) {
              verdicts.emplace_back(conn, std::move(v));
            }) {}

  static mcp::McpCall call(const std::string& message, uint64_t time_ns) {
    mcp::McpCall c;
    c.process.key.pid = 4242;
    c.server = "files";
    c.method = "tools/call";
    c.tool = "echo";
    c.transport = "streamable_http";
    c.url = "https://localhost:8443/mcp";
    c.rpc_id = "3";
    c.time_ns = time_ns;
    c.arguments = {{"message", message}};
    return c;
  }

  std::vector<std::pair<std::string, std::string>> outcomes() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& a : alerts) out.emplace_back(a["rule"], a["outcome"]);
    return out;
  }
};

}  // namespace

TEST_CASE("decide: a held MCP request with a secret is blocked before it leaves") {
  Fixture f;
  mcp::McpCall c = Fixture::call(std::string("deploy with ") + kSecret, 1000);
  CHECK(f.decider.wants_mcp_request(77));
  f.decider.on_mcp_request(c, 77);
  REQUIRE(f.verdicts.size() == 1);
  CHECK(f.verdicts[0].first == 77);
  CHECK(f.verdicts[0].second.verdict == enforce::Verdict::kBlock);
  CHECK(f.verdicts[0].second.rule == "block-secret-args");
  using P = std::pair<std::string, std::string>;
  CHECK(f.outcomes() == std::vector<P>{{"block-secret-args", "block"},
                                       {"redact-secret-args", "superseded"},
                                       {"note-every-call", "alert"}});
  CHECK(f.alerts[0]["mcp"]["tool"] == "echo");
  CHECK(f.decider.judged_mcp(c));

  // The call ends unanswered (blocked): its request is not judged again.
  f.alerts.clear();
  f.decider.on_mcp_call(c);
  CHECK(f.alerts.empty());
  CHECK_FALSE(f.decider.judged_mcp(c));
  CHECK(f.verdicts.size() == 1);
}

TEST_CASE("decide: a held MCP request is redacted: the secret's exact text goes to the gate") {
  Fixture f(std::string("mode: enforce\nrules:") + kRedactRule);
  const std::string message = std::string("deploy \"now\" with ") + kSecret + " today";
  mcp::McpCall c = Fixture::call(message, 1500);
  f.decider.on_mcp_request(c, 80);
  REQUIRE(f.verdicts.size() == 1);
  const enforce::RequestVerdict& v = f.verdicts[0].second;
  CHECK(v.verdict == enforce::Verdict::kRedact);
  CHECK(v.rule == "redact-secret-args");
  CHECK(v.secrets == std::vector<std::string>{kSecret});
  CHECK(v.body == c.arguments.dump());
  using P = std::pair<std::string, std::string>;
  CHECK(f.outcomes() == std::vector<P>{{"redact-secret-args", "redact"}});

  // What the gate does with it: the secret in the held bytes of the HTTP request.
  const std::string held = "POST /mcp HTTP/1.1\r\n\r\n{\"params\":{\"arguments\":" + v.body + "}}";
  std::string why;
  const std::vector<enforce::Mask> masks = enforce::find_masks(held, v.body, v.secrets, why);
  REQUIRE(masks.size() == 1);
  CHECK(held.substr(masks[0].offset, masks[0].len) == kSecret);
}

TEST_CASE("decide: a held MCP request with nothing to stop passes; its answer is judged") {
  Fixture f;
  mcp::McpCall c = Fixture::call("hello", 2000);
  f.decider.on_mcp_request(c, 78);
  CHECK(f.verdicts.empty());
  using P = std::pair<std::string, std::string>;
  CHECK(f.outcomes() == std::vector<P>{{"note-every-call", "alert"}});
  f.alerts.clear();
  c.answered = true;
  c.result_text = "echo: hello";
  f.decider.on_mcp_call(c);
  CHECK(f.outcomes() == std::vector<P>{{"note-every-call", "alert"}});  // the response only
  CHECK(f.alerts[0]["direction"] == "response");
}

TEST_CASE("decide: an MCP request not held is judged with its answer, and says why not held") {
  Fixture f;
  f.held = false;
  mcp::McpCall c = Fixture::call(std::string("deploy with ") + kSecret, 3000);
  CHECK_FALSE(f.decider.wants_mcp_request(79));  // the MCP stage does not hand it over
  f.decider.on_mcp_request(c, 79);
  CHECK(f.alerts.empty());
  CHECK(f.verdicts.empty());
  f.decider.on_mcp_call(c);
  using P = std::pair<std::string, std::string>;
  CHECK(f.outcomes() == std::vector<P>{{"block-secret-args", "not held: outside the gate"},
                                       {"redact-secret-args", "not held: outside the gate"},
                                       {"note-every-call", "alert"}});
  f.alerts.clear();
  c.transport = "stdio";
  c.time_ns = 3001;
  f.decider.on_mcp_call(c);
  CHECK(f.outcomes() ==
        std::vector<P>{{"block-secret-args", "not held (MCP over stdio): would block"},
                       {"redact-secret-args", "not held (MCP over stdio): would redact"},
                       {"note-every-call", "alert"}});
  CHECK(f.verdicts.empty());
}
