// The policy language: errors name FILE:LINE:COL and say what was expected; files merge in
// order; rules evaluate against subjects as docs/POLICY.md says; the shipped policies load.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

#include "agent/policy/glob.h"
#include "agent/policy/policy.h"
#include "agent/policy/subject_llm.h"

using namespace agentwall;
using namespace agentwall::policy;

namespace {

std::vector<std::string> errors_of(const std::string& yaml, const std::string& name = "p.yaml") {
  std::vector<std::string> errors;
  const auto p = Policy::load_string(yaml, name, errors);
  CHECK_FALSE(p.has_value());
  return errors;
}

// True when one error contains `text`; prints them all otherwise, to see what was said.
bool has_error(const std::vector<std::string>& errors, const std::string& text) {
  for (const std::string& e : errors) {
    if (e.find(text) != std::string::npos) return true;
  }
  for (const std::string& e : errors) MESSAGE(e);
  return false;
}

Policy load_ok(const std::string& yaml) {
  std::vector<std::string> errors;
  auto p = Policy::load_string(yaml, "p.yaml", errors);
  for (const std::string& e : errors) MESSAGE(e);
  REQUIRE(p.has_value());
  return *p;
}

Policy load_ok(const std::vector<PolicySource>& sources) {
  std::vector<std::string> errors;
  auto p = Policy::load_sources(sources, errors);
  for (const std::string& e : errors) MESSAGE(e);
  REQUIRE(p.has_value());
  return *p;
}

std::vector<std::string> fired(const Policy& p, const Subject& s) {
  std::vector<std::string> names;
  for (const Decision& d : p.evaluate(s)) names.push_back(d.rule);
  return names;
}

Subject curl_to_openai() {
  Subject s;
  s.pid = 42;
  s.uid = 1000;
  s.exe = "/usr/bin/curl";
  s.name = "curl";
  s.user = "alice";
  s.provider = "openai";
  s.host = "api.openai.com";
  s.model = "gpt-4o-mini";
  s.operation = "chat";
  return s;
}

FindingFact secret_in_prompt() {
  return {"secret.openai_api_key", "secret", 0.95, "messages[1]", true};
}

}  // namespace

TEST_CASE("policy: errors name file:line:col and say what was expected") {
  SUBCASE("unknown action") {
    const auto e =
        errors_of("rules:\n  - rule: block-secrets\n    action: blok\n", "policies/x.yaml");
    CHECK(has_error(e,
                    "policies/x.yaml:3:13: rule \"block-secrets\": unknown action \"blok\"; "
                    "expected one of alert, block, redact, kill"));
  }
  SUBCASE("unknown key, with did you mean") {
    const auto e = errors_of("rules:\n  - rule: r\n    acton: block\n");
    CHECK(has_error(e, "p.yaml:3:5: rule \"r\": unknown key \"acton\"; did you mean \"action\"?"));
  }
  SUBCASE("unknown top-level key, no close match") {
    const auto e = errors_of("mode: monitor\nfrobnicate: 1\n");
    CHECK(has_error(e, "p.yaml:2:1: unknown key \"frobnicate\"; expected one of mode, settings"));
  }
  SUBCASE("unknown mode") {
    CHECK(has_error(errors_of("mode: enforcing\n"),
                    "p.yaml:1:7: unknown mode \"enforcing\"; expected one of monitor, enforce"));
  }
  SUBCASE("YAML syntax error") {
    const auto e = errors_of("rules:\n  - rule: x\n    match: {process: {exe: [a, b}\n");
    CHECK(has_error(e, "p.yaml:3:"));
    CHECK(has_error(e, "YAML syntax"));
  }
  SUBCASE("unknown list") {
    const auto e = errors_of(
        "lists:\n  trusted: [a]\nrules:\n  - rule: r\n    match:\n      process: {exe: "
        "list:trustd}\n");
    CHECK(has_error(e,
                    "p.yaml:6:22: rule \"r\": match: process: unknown list \"trustd\"; did "
                    "you mean \"list:trusted\"?"));
  }
  SUBCASE("unknown macro") {
    const auto e = errors_of("rules:\n  - rule: r\n    when:\n      macro: nowhere\n");
    CHECK(has_error(e, "p.yaml:4:14: rule \"r\": when: unknown macro \"nowhere\""));
  }
  SUBCASE("macro cycle") {
    const auto e = errors_of("macros:\n  a: {macro: b}\n  b: {macro: a}\n");
    CHECK(has_error(e, "refers to itself (a -> b -> a)"));
  }
  SUBCASE("unknown field, with did you mean") {
    const auto e = errors_of("rules:\n  - rule: r\n    match:\n      process: {nam: curl}\n");
    CHECK(has_error(e,
                    "p.yaml:4:17: rule \"r\": match: process: unknown field \"nam\"; did you "
                    "mean \"name\"?"));
  }
  SUBCASE("unknown finding category and out-of-range confidence") {
    const auto e = errors_of(
        "rules:\n  - rule: r\n    when:\n      findings: {category: secrets, min_confidence: "
        "1.5}\n");
    CHECK(has_error(e,
                    "p.yaml:4:28: rule \"r\": when: findings: unknown category \"secrets\"; "
                    "expected one of secret, pii, injection"));
    CHECK(has_error(e,
                    "p.yaml:4:53: rule \"r\": when: findings: min_confidence: expected a "
                    "number from 0 to 1, found \"1.5\""));
  }
  SUBCASE("score out of range") {
    CHECK(has_error(errors_of("rules:\n  - rule: r\n    when: {score_at_least: 101}\n"),
                    "p.yaml:3:28: rule \"r\": when: score_at_least: expected a whole number "
                    "from 0 to 100, found \"101\""));
  }
  SUBCASE("unknown budget in a condition") {
    const auto e = errors_of("rules:\n  - rule: r\n    when: {budget: {name: daily}}\n");
    CHECK(has_error(e, "p.yaml:3:27: rule \"r\": when: budget: unknown budget \"daily\""));
  }
  SUBCASE("a rule defined twice in one file") {
    const auto e = errors_of("rules:\n  - rule: r\n  - rule: r\n");
    CHECK(has_error(e, "p.yaml:3:5: rule \"r\": defined twice in this file (first at line 2)"));
  }
  SUBCASE("a budget without a limit, with a bad window") {
    const auto e = errors_of("budgets:\n  - name: b\n    window: week\n");
    CHECK(has_error(e, "p.yaml:2:5: budget \"b\": a budget needs a limit"));
    CHECK(has_error(e,
                    "p.yaml:3:13: budget \"b\": unknown window \"week\"; expected one of "
                    "minute, hour, day, month"));
  }
  SUBCASE("unknown message placeholder") {
    const auto e = errors_of("rules:\n  - rule: r\n    message: \"{modle} used\"\n");
    CHECK(has_error(e, "p.yaml:3:14: rule \"r\": message: unknown placeholder {modle}"));
  }
  SUBCASE("redis ledger without a URL") {
    CHECK(has_error(errors_of("ledger:\n  backend: redis\n"),
                    "p.yaml:2:12: ledger: backend redis needs `redis_url"));
  }
  SUBCASE("exception without a name") {
    const auto e = errors_of("rules:\n  - rule: r\n    exceptions:\n      - process: {exe: x}\n");
    CHECK(has_error(e, "p.yaml:4:9: rule \"r\": each exception needs a `name: NAME`"));
  }
  SUBCASE("wrong type") {
    const auto e = errors_of("rules:\n  - rule: r\n    enabled: sometimes\n    tags: {a: b}\n");
    CHECK(has_error(e,
                    "p.yaml:3:14: rule \"r\": enabled: expected true or false, found "
                    "\"sometimes\""));
    CHECK(has_error(e,
                    "p.yaml:4:11: rule \"r\": tags: expected a string or a list of strings, "
                    "found a map"));
  }
  SUBCASE("control characters are refused before the YAML parser sees them") {
    // yaml-cpp 0.7 allocates without end on a NUL followed by flow syntax (found by fuzzing).
    const auto e = errors_of(std::string("rules:\n  - rule: x\0, nam: x}\n", 28));
    CHECK(has_error(e, "p.yaml:2:12: YAML syntax: control character 0x00; expected text"));
  }
  SUBCASE("one document per file") {
    CHECK(has_error(errors_of("mode: monitor\n---\nmode: enforce\n"),
                    "p.yaml:2:1: expected one YAML document per file"));
    const Policy p = load_ok("---\n# leading separator is fine\nmode: enforce\n");
    CHECK(p.settings().mode == Mode::kEnforce);
  }
  SUBCASE("enumerated field value") {
    const auto e = errors_of("rules:\n  - rule: r\n    match: {traffic: {direction: outbound}}\n");
    CHECK(has_error(e, "unknown direction \"outbound\"; expected one of request, response"));
  }
}

TEST_CASE("policy: every error of a file is reported, in file order") {
  const auto e = errors_of(
      "mode: on\n"
      "rules:\n"
      "  - rule: a\n"
      "    action: stop\n"
      "  - rule: b\n"
      "    severity: urgent\n"
      "budgets:\n"
      "  - name: x\n");
  REQUIRE(e.size() == 4);
  CHECK(e[0].starts_with("p.yaml:1:7:"));
  CHECK(e[1].starts_with("p.yaml:4:13:"));
  CHECK(e[2].starts_with("p.yaml:6:15:"));
  CHECK(e[3].starts_with("p.yaml:8:5:"));
}

TEST_CASE("policy: an unreadable file is an error naming it") {
  std::vector<std::string> errors;
  CHECK_FALSE(Policy::load({"/nonexistent/agentwall.yaml"}, errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with("/nonexistent/agentwall.yaml: cannot read"));
}

TEST_CASE("policy: later files override rules key by key, replace or extend lists") {
  const PolicySource base{"base.yaml", R"(
lists:
  models: [gpt-4o]
  hosts: [api.openai.com]
macros:
  is_curl: {process: {name: curl}}
rules:
  - rule: r1
    match: {traffic: {model: list:models}}
    action: alert
    severity: low
  - rule: r2
    match: {macro: is_curl}
  - rule: r3
    match: {traffic: {host: list:hosts}}
settings: {verdict_timeout_ms: 5}
)"};
  const PolicySource local{"local.yaml", R"(
mode: enforce
lists:
  models: [gpt-4o-mini]                       # replaces
  hosts: {append: true, items: [api.anthropic.com]}
macros:
  is_curl: {process: {name: wget}}           # replaces the macro everywhere
rules:
  - rule: r1
    action: block                             # only this key changes
  - rule: r3
    enabled: false
  - rule: r4
    match: {traffic: {host: list:hosts}}
settings: {verdict_timeout_ms: 20}
)"};
  const Policy p = load_ok({base, local});
  CHECK(p.summary().rules == 4);
  CHECK(p.summary().enabled_rules == 3);
  CHECK(p.settings().verdict_timeout_ms == 20);
  CHECK(p.settings().mode == Mode::kEnforce);

  Subject s = curl_to_openai();  // gpt-4o-mini, curl
  auto d = p.evaluate(s);
  REQUIRE(d.size() == 2);  // r1 (list replaced), r4 (appended list still has openai)
  CHECK(d[0].rule == "r1");
  CHECK(d[0].action == Action::kBlock);
  CHECK(d[0].severity == "low");  // kept from base.yaml
  CHECK(d[1].rule == "r4");

  s.name = "wget";
  s.host = "api.anthropic.com";
  s.model = "gpt-4o";
  CHECK(fired(p, s) == std::vector<std::string>{"r2", "r4"});
}

TEST_CASE("policy: lists, globs, case and negation") {
  const Policy p = load_ok(R"(
lists:
  pythons: ["/usr/bin/python3*", /usr/local/bin/python]
rules:
  - rule: python-gpt4
    match:
      process: {exe: list:pythons}
      traffic: {model: "gpt-4o*", provider: OpenAI}
  - rule: not-root
    match:
      process: {user: {not: [root, "svc-*"]}}
  - rule: mixed-list
    match:
      process: {name: [list:pythons, node]}
  - rule: uid
    match:
      process: {uid: "10?0"}
)");
  Subject s = curl_to_openai();
  s.exe = "/usr/bin/python3.11";
  s.model = "GPT-4o-2024-08-06";  // models and providers compare without case
  CHECK(fired(p, s) == std::vector<std::string>{"python-gpt4", "not-root", "uid"});
  s.exe = "/usr/bin/python2";
  s.user = "svc-build";
  s.name = "node";
  CHECK(fired(p, s) == std::vector<std::string>{"mixed-list", "uid"});
  s.uid = 1100;
  s.name = "/usr/local/bin/python";
  CHECK(fired(p, s) == std::vector<std::string>{"mixed-list"});
}

TEST_CASE("policy: any, all, not and macros") {
  const Policy p = load_ok(R"(
macros:
  to_openai: {traffic: {provider: openai}}
  big_model: {traffic: {model: ["gpt-4o", "o1*"]}}
rules:
  - rule: r
    match:
      macro: to_openai
    when:
      any:
        - macro: big_model
        - all:
            - process: {name: curl}
            - not: {process: {user: alice}}
)");
  Subject s = curl_to_openai();
  CHECK(fired(p, s).empty());  // gpt-4o-mini, curl run by alice
  s.user = "bob";
  CHECK(fired(p, s).size() == 1);
  s.user = "alice";
  s.model = "o1-preview";
  CHECK(fired(p, s).size() == 1);
  s.provider = "anthropic";
  CHECK(fired(p, s).empty());
}

TEST_CASE("policy: exceptions stop a rule from firing") {
  const Policy p = load_ok(R"(
rules:
  - rule: secrets
    when: {findings: {category: secret}}
    exceptions:
      - name: vault
        process: {exe: "/opt/vault/*"}
      - name: local-model
        traffic: {provider: ollama}
)");
  Subject s = curl_to_openai();
  s.findings.push_back(secret_in_prompt());
  CHECK(fired(p, s).size() == 1);
  s.exe = "/opt/vault/bin/agent";
  CHECK(fired(p, s).empty());
  s.exe = "/usr/bin/curl";
  s.provider = "ollama";
  CHECK(fired(p, s).empty());
}

TEST_CASE("policy: the global monitor mode wins over a rule's enforce") {
  const std::string rules = R"(
rules:
  - rule: a
    mode: enforce
    action: block
  - rule: b
    action: block
  - rule: c
    mode: monitor
    action: kill
)";
  const Policy monitor = load_ok("mode: monitor\n" + rules);
  for (const Decision& d : monitor.evaluate(curl_to_openai())) CHECK_FALSE(d.enforce);
  CHECK_FALSE(Policy::strongest(monitor.evaluate(curl_to_openai())).action);
  CHECK(has_error(monitor.warnings(),
                  "rule \"a\": mode enforce has no effect while the global "
                  "mode is monitor"));
  CHECK_FALSE(monitor.gate_scope().gated);

  const Policy enforce = load_ok("mode: enforce\n" + rules);
  const auto d = enforce.evaluate(curl_to_openai());
  REQUIRE(d.size() == 3);
  CHECK(d[0].enforce);
  CHECK(d[1].enforce);
  CHECK_FALSE(d[2].enforce);  // a monitor rule under global enforce only reports
  const Verdict v = Policy::strongest(d);
  REQUIRE(v.action);
  CHECK(*v.action == Action::kBlock);  // the kill is only reported
  CHECK(v.decisions == std::vector<size_t>{0, 1});
}

TEST_CASE("policy: findings select by category, detector, confidence and where") {
  const Policy p = load_ok(R"(
mode: enforce
settings: {fail: closed}
rules:
  - rule: redact-secrets
    match: {traffic: {direction: request}}
    when:
      findings: {category: secret, detector: "secret.*", min_confidence: 0.8, where: new_turn}
    action: redact
    fail: open
    message: "{detectors} to {model} by {exe}"
  - rule: injection
    when:
      any:
        - score_at_least: 60
        - findings: {category: [injection, hidden_text], where: [new_turn, tool_arguments]}
    action: block
  - rule: unsafe-output
    match: {traffic: {direction: response}}
    when:
      findings: {category: unsafe_output, where: response}
    severity: high
)");
  Subject s = curl_to_openai();
  s.findings = {
      {"secret.aws_access_key", "secret", 0.99, "messages[0]", true},
      {"pii.email", "pii", 0.9, "messages[0]", true},
      {"secret.generic", "secret", 0.5, "messages[1]", true},  // under min_confidence
      secret_in_prompt(),
  };
  auto d = p.evaluate(s);
  REQUIRE(d.size() == 1);
  CHECK(d[0].rule == "redact-secrets");
  CHECK(d[0].findings == std::vector<size_t>{0, 3});
  CHECK(d[0].message ==
        "secret.aws_access_key, secret.openai_api_key to gpt-4o-mini by /usr/bin/curl");
  CHECK_FALSE(d[0].fail_closed);  // the rule's own fail: open wins over the setting

  s.findings.push_back(
      {"injection.ignore_previous", "injection", 0.7, "tool_calls[0].arguments", false});
  d = p.evaluate(s);
  REQUIRE(d.size() == 2);
  CHECK(d[1].rule == "injection");
  CHECK(d[1].findings == std::vector<size_t>{4});
  CHECK(d[1].fail_closed);
  const Verdict v = Policy::strongest(d);
  CHECK(*v.action == Action::kBlock);
  CHECK(v.decisions == std::vector<size_t>{1});

  Subject out = curl_to_openai();
  out.direction = "response";
  out.findings = {{"unsafe.shell_pipe", "unsafe_output", 0.8, "output_text", false}};
  CHECK(fired(p, out) == std::vector<std::string>{"unsafe-output"});
  out.score = 75;
  CHECK(fired(p, out) == std::vector<std::string>{"injection", "unsafe-output"});
}

TEST_CASE("policy: budget, rate-limit and model allow-list conditions") {
  const Policy p = load_ok(R"(
lists:
  approved: ["gpt-4o-mini*", "claude-3-5-haiku*"]
budgets:
  - {name: daily, per: [user], tokens: 1000}
rate_limits:
  - {name: rpm, requests_per_minute: 10}
rules:
  - rule: budget-warning
    when: {budget: {name: daily, state: warning}}
  - rule: any-budget-exceeded
    when: {budget: {state: exceeded}}
  - rule: rate
    when: {rate_limit: {name: rpm, state: exceeded}}
  - rule: unapproved
    when: {model_not_in: list:approved}
)");
  Subject s = curl_to_openai();
  CHECK(fired(p, s).empty());
  s.budget_state["daily"] = "warning";
  CHECK(fired(p, s) == std::vector<std::string>{"budget-warning"});
  s.budget_state["daily"] = "exceeded";  // exceeded is past warning too
  s.rate_limit_state["rpm"] = "exceeded";
  s.model = "gpt-4.1";
  CHECK(fired(p, s) ==
        std::vector<std::string>{"budget-warning", "any-budget-exceeded", "rate", "unapproved"});
}

TEST_CASE("policy: budgets, rate limits and the ledger parse into their specs") {
  const Policy p = load_ok(R"(
lists:
  devs: [alice, bob]
budgets:
  - name: daily-per-user
    per: [user, model]
    window: day
    rolling: false
    tokens: 100000
    usd: 5.0
    warn_at: [0.9, 0.8]
    action: block
    users: list:devs
    models: "gpt-4o*"
    cgroups: ["/team-a/*"]
  - name: monthly
    window: month
    rolling: true
    usd: 100
    action: alert
rate_limits:
  - name: rpm
    per: [api_key]
    requests_per_minute: 60
    tokens_per_minute: 1e5
    burst: 2
ledger:
  backend: redis
  redis_url: redis://ledger:6379/0
  on_unreachable: block
)");
  REQUIRE(p.budgets().size() == 2);
  const budget::BudgetSpec& b = p.budgets()[0];
  CHECK(b.name == "daily-per-user");
  CHECK(b.per ==
        std::vector<budget::Dimension>{budget::Dimension::kUser, budget::Dimension::kModel});
  CHECK(b.window == budget::Window::kDay);
  CHECK_FALSE(b.rolling);
  CHECK(b.tokens == 100000);
  CHECK(b.usd == doctest::Approx(5.0));
  CHECK(b.warn_at == std::vector<double>{0.8, 0.9});
  CHECK(b.action == "block");
  CHECK(b.users == std::vector<std::string>{"alice", "bob"});
  CHECK(b.models == std::vector<std::string>{"gpt-4o*"});
  CHECK(b.cgroups == std::vector<std::string>{"/team-a/*"});
  // Enforcing, a blocking budget gates only the processes its filters name.
  const Policy e = load_ok(
      "mode: enforce\nbudgets:\n  - name: b\n    tokens: 10\n    cgroups: [\"/team-a/*\"]\n");
  const GateScope gate = e.gate_scope();
  REQUIRE(gate.scopes.size() == 1);
  CHECK(gate.scopes[0].rule == "budget:b");
  CHECK(gate.scopes[0].cgroups == std::vector<std::string>{"/team-a/*"});
  CHECK_FALSE(gate.any_process());
  CHECK(p.budgets()[1].window == budget::Window::kMonth);
  CHECK(p.budgets()[1].rolling);
  CHECK_FALSE(p.budgets()[1].tokens);
  CHECK(p.budgets()[1].action == "alert");
  REQUIRE(p.rate_limits().size() == 1);
  CHECK(p.rate_limits()[0].per == std::vector<budget::Dimension>{budget::Dimension::kApiKey});
  CHECK(p.rate_limits()[0].requests_per_minute == 60);
  CHECK(p.rate_limits()[0].tokens_per_minute == 1e5);
  CHECK(p.rate_limits()[0].burst == 2);
  CHECK(p.ledger().backend == "redis");
  CHECK(p.ledger().redis_url == "redis://ledger:6379/0");
  CHECK(p.ledger().on_unreachable == budget::OnUnreachable::kBlock);

  const Policy defaults = load_ok("mode: monitor\n");
  CHECK(defaults.ledger().backend == "sqlite");
  CHECK(defaults.settings().verdict_timeout_ms == 5);
  CHECK_FALSE(defaults.settings().fail_closed);
  CHECK(defaults.settings().state_dir == "/var/lib/agentwall");
}

TEST_CASE("policy: the gate scope lists what enforcing rules can act on") {
  const Policy p = load_ok(R"(
mode: enforce
settings: {fail: closed}
lists:
  agents: ["/opt/agents/*"]
rules:
  - rule: alert-only
    action: alert
  - rule: monitor-only
    mode: monitor
    action: block
  - rule: block-agents
    match:
      process: {exe: list:agents, user: {not: root}}
      traffic: {host: [api.openai.com, "*.anthropic.com"]}
    action: block
budgets:
  - {name: b, tokens: 10, users: [alice], action: block}
  - {name: c, tokens: 10, action: alert}
)");
  const GateScope& g = p.gate_scope();
  CHECK(g.gated);
  REQUIRE(g.scopes.size() == 2);
  CHECK(g.scopes[0].rule == "block-agents");
  CHECK(g.scopes[0].exes == std::vector<std::string>{"/opt/agents/*"});
  CHECK(g.scopes[0].users.empty());  // a negation cannot narrow: any user
  CHECK(g.scopes[0].hosts == std::vector<std::string>{"api.openai.com", "*.anthropic.com"});
  CHECK(g.scopes[0].fail_closed);
  CHECK(g.scopes[1].rule == "budget:b");
  CHECK(g.scopes[1].users == std::vector<std::string>{"alice"});
  CHECK_FALSE(g.any_process());
  CHECK(g.any_host());  // the budget applies to every host

  const Policy wide = load_ok("mode: enforce\nrules:\n  - rule: k\n    action: kill\n");
  CHECK(wide.gate_scope().gated);
  CHECK(wide.gate_scope().any_process());

  const Policy none = load_ok("mode: enforce\nrules:\n  - rule: a\n");
  CHECK_FALSE(none.gate_scope().gated);
}

TEST_CASE("policy: check warns about rules that cannot do what they say") {
  const Policy p = load_ok(R"(
rules:
  - rule: redact-everything
    match: {traffic: {provider: openai}}
    action: redact
  - rule: everything
)");
  CHECK(has_error(p.warnings(),
                  "p.yaml:3:5: warning: rule \"redact-everything\": action redact without "
                  "a `findings` condition"));
  CHECK(has_error(p.warnings(),
                  "p.yaml:6:5: warning: rule \"everything\": has no `match` or `when`"));
}

TEST_CASE("policy: every shipped policy loads, alone and after default.yaml") {
  const std::filesystem::path root = std::filesystem::path(AGENTWALL_FIXTURES) / ".." / "..";
  const std::string def = (root / "policies" / "default.yaml").string();
  std::vector<std::string> errors;
  const auto p = Policy::load({def}, errors);
  for (const std::string& e : errors) MESSAGE(e);
  REQUIRE(p);
  CHECK(p->settings().mode == Mode::kMonitor);
  CHECK(p->summary().enabled_rules >= 4);
  CHECK_FALSE(p->gate_scope().gated);
  for (const Decision& d : p->evaluate(curl_to_openai())) CHECK(d.action == Action::kAlert);

  size_t examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root / "policies" / "examples")) {
    if (entry.path().extension() != ".yaml") continue;
    ++examples;
    CAPTURE(entry.path().string());
    errors.clear();
    CHECK(Policy::load({entry.path().string()}, errors));
    CHECK(Policy::load({def, entry.path().string()}, errors));
    for (const std::string& e : errors) MESSAGE(e);
  }
  CHECK(examples >= 6);
}

TEST_CASE("policy: the default policy alerts on a secret sent, not on one answered") {
  const std::filesystem::path root = std::filesystem::path(AGENTWALL_FIXTURES) / ".." / "..";
  std::vector<std::string> errors;
  const auto p = Policy::load({(root / "policies" / "default.yaml").string()}, errors);
  REQUIRE(p);
  Subject s = curl_to_openai();
  s.findings = {secret_in_prompt()};
  const auto d = p->evaluate(s);
  REQUIRE(d.size() == 1);
  CHECK(d[0].rule == "secret-sent-to-llm");
  CHECK(d[0].severity == "high");
  CHECK_FALSE(d[0].enforce);
  s.direction = "response";
  CHECK(p->evaluate(s).empty());
}

TEST_CASE("policy: globs") {
  CHECK(glob_match("gpt-4o*", "gpt-4o-mini"));
  CHECK_FALSE(glob_match("gpt-4o*", "gpt-4"));
  CHECK(glob_match("*.anthropic.com", "api.anthropic.com"));
  CHECK(glob_match("/usr/*/python?", "/usr/local/bin/python3"));
  CHECK_FALSE(glob_match("/usr/*/python?", "/usr/bin/python"));
  CHECK(glob_match("a*b*c", "aXXbYYbc"));
  CHECK(glob_match("*", ""));
  CHECK_FALSE(glob_match("?", ""));
  const PatternSet set({"Exact", "pre*", "*suf", "*mid*", "a?c"}, true);
  for (const char* yes : {"exact", "PREfix", "the-suf", "xmidx", "abc"}) CHECK(set.matches(yes));
  for (const char* no : {"exactly", "xpre", "sufx", "mi", "abbc"}) CHECK_FALSE(set.matches(no));
}

TEST_CASE("policy: a subject from an LLM record, per direction") {
  llm::LlmRecord r;
  r.process.key.pid = 7;
  r.process.uid = 0;
  r.process.exe = "/usr/bin/node";
  r.process.comm = "node";
  r.process.cgroup_path =
      "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope";
  r.host = "api.openai.com";
  r.call.provider = "openai";
  r.call.model = "gpt-4o-mini";
  r.call.operation = "chat";
  r.api_key_fingerprint = "sha256:00";
  detect::Finding secret{"secret.openai_api_key", detect::Category::kSecret, 0.9, {{0, 5}}, ""};
  detect::Finding unsafe{"unsafe.shell", detect::Category::kUnsafeOutput, 0.8, {}, ""};
  r.inspection.findings = {{"messages[2]", secret}, {"output_text", unsafe}};

  const Subject req = subject_from_llm(r, "request");
  CHECK(req.user == "root");
  CHECK(req.name == "node");
  CHECK(req.unit ==
        "docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope");
  CHECK(req.container == "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  CHECK(req.direction == "request");
  REQUIRE(req.findings.size() == 1);
  CHECK(req.findings[0].category == "secret");
  CHECK(req.findings[0].new_turn);
  CHECK(req.score > 0);

  const Subject resp = subject_from_llm(r, "response");
  REQUIRE(resp.findings.size() == 1);
  CHECK(resp.findings[0].category == "unsafe_output");
  CHECK_FALSE(resp.findings[0].new_turn);

  CHECK(unit_from_cgroup("/system.slice/agent.service") == "agent.service");
  CHECK(unit_from_cgroup("/user.slice/user-1000.slice/session-3.scope") == "session-3.scope");
  CHECK(unit_from_cgroup("/") == "");
  CHECK(container_from_cgroup(
            "/kubepods/besteffort/pod1/"
            "cri-containerd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
            "scope") == std::string(64, 'a'));
  CHECK(container_from_cgroup("/docker/" + std::string(64, 'b')) == std::string(64, 'b'));
  CHECK(container_from_cgroup("/system.slice/agent.service") == "");
  CHECK(user_name(4000000000u) == "4000000000");
}
