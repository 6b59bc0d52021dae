// The policy's view of one LLM API call: a Subject built from the LLM stage's record, for
// `agentwall policy test` and the daemon alike.
#pragma once

#include <string>
#include <string_view>

#include "agent/llm/stage.h"
#include "agent/mcp/stage.h"
#include "agent/policy/policy.h"

namespace agentwall::policy {

// `direction` "request": findings in what the call newly sends (the new turn);
// "response": findings in the answer (output text, tool-call arguments). The score is
// recomputed over those findings only. Budget and rate-limit state are left empty for the
// ledger to fill.
Subject subject_from_llm(const llm::LlmRecord& record, std::string_view direction);

// The policy's view of one MCP call in one direction: `request` with the findings of its
// arguments, `response` with those of its result (scanned with `engine`, when given).
Subject subject_from_mcp(const mcp::McpCall& call, std::string_view direction,
                         const detect::Engine* engine);

// The process part of a subject (pid, uid, exe, name, user, cgroup, unit, container).
Subject subject_from_process(const ProcessInfo& p);

// From a cgroup v2 path: the systemd unit (the last element ending in .service or .scope)
// and the container id (64 hex digits: docker-<id>.scope, /docker/<id>, cri-containerd-…).
std::string unit_from_cgroup(std::string_view cgroup_path);
std::string container_from_cgroup(std::string_view cgroup_path);

// The user name of `uid`, or the uid in decimal when it has none. Cached.
std::string user_name(uint32_t uid);

}  // namespace agentwall::policy
