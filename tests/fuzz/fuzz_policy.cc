// The policy loader on hostile bytes: whatever the YAML (cut, nested, aliased, wrong types),
// loading reports errors or yields a policy, never crashes; a policy that loads evaluates.
// A NUL byte splits the input into two files, so that merging is fuzzed too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/policy/policy.h"

namespace {

using namespace agentwall::policy;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

Subject sample_subject() {
  Subject s;
  s.pid = 1;
  s.uid = 1000;
  s.exe = "/usr/bin/python3";
  s.name = "python3";
  s.user = "alice";
  s.unit = "agent.service";
  s.provider = "openai";
  s.host = "api.openai.com";
  s.model = "gpt-4o-mini";
  s.operation = "chat";
  s.score = 70;
  s.findings = {{"secret.openai_api_key", "secret", 0.9, "messages[0]", true},
                {"injection.model", "injection", 0.8, "tool_calls[0].arguments", false}};
  s.budget_state = {{"daily", "warning"}};
  s.rate_limit_state = {{"rpm", "exceeded"}};
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<PolicySource> sources;
  const size_t split = input.find('\0');
  sources.push_back({"a.yaml", std::string(input.substr(0, split))});
  if (split != std::string_view::npos)
    sources.push_back({"b.yaml", std::string(input.substr(split + 1))});

  std::vector<std::string> errors;
  const auto policy = Policy::load_sources(sources, errors);
  check(policy.has_value() == errors.empty());
  // Every error names its file, but for the last line when there were too many to list
  // ("... and 23 more errors").
  for (size_t i = 0; i < errors.size(); ++i) {
    const std::string& e = errors[i];
    const bool summary =
        i + 1 == errors.size() && e.starts_with("... and ") && e.ends_with(" more errors");
    check(e.starts_with("a.yaml") || e.starts_with("b.yaml") || summary);
  }
  if (!policy) return 0;

  const Subject s = sample_subject();
  const std::vector<Decision> decisions = policy->evaluate(s);
  for (const Decision& d : decisions) {
    for (size_t i : d.findings) check(i < s.findings.size());
  }
  const Verdict v = Policy::strongest(decisions);
  for (size_t i : v.decisions) check(i < decisions.size() && decisions[i].enforce);
  (void)policy->gate_scope().hosts();
  return 0;
}
