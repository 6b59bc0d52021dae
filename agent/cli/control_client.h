// `agentwall status`, `top` and `tail`: clients of the running agent's control socket
// (agent/daemon/control.h). Each parses its own arguments, with itself as argv[0], and
// returns the exit status.
#pragma once

namespace agentwall::cli {

int cmd_status(int argc, char** argv);
int cmd_top(int argc, char** argv);
int cmd_coverage(int argc, char** argv);
int cmd_tail(int argc, char** argv);

}  // namespace agentwall::cli
