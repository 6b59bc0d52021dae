// An MCP client over stdio for agentwall's tests, the official SDK's Client with its
// StdioClientTransport, which spawns the server and talks to it through its stdin and stdout:
//   node mcp_stdio_client.mjs [--calls N] [--message M] [--quiet] -- COMMAND [ARG...]
// Connects (initialize), lists the tools, calls echo, add and fail (then echo N-3 more times
// when --calls N is larger), and prints one JSON object with what it sent and received and
// the pids of both ends, for the test to compare with agentwall's events, and how long the
// calls took (calls_ms; --quiet leaves the calls themselves out: tests/bench).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const argv = process.argv.slice(2);
const dashdash = argv.indexOf("--");
if (dashdash < 0 || dashdash === argv.length - 1) {
  process.stderr.write("usage: mcp_stdio_client.mjs [--calls N] [--message M] -- COMMAND [ARG...]\n");
  process.exit(2);
}
const own = argv.slice(0, dashdash);
const opt = (name, dflt) => {
  const i = own.indexOf(`--${name}`);
  return i >= 0 ? own[i + 1] : dflt;
};
const [command, ...args] = argv.slice(dashdash + 1);
const transport = new StdioClientTransport({ command, args, stderr: "inherit" });
const client = new Client({ name: "agentwall-stdio-test-client", version: "0.9.1" });
await client.connect(transport);
const tools = await client.listTools();
const plan = [["echo", { message: opt("message", "hello over stdio") }], ["add", { a: 2, b: 40 }],
              ["fail", {}]];
for (let i = plan.length; i < Number(opt("calls", "3")); i++)
  plan.push(["echo", { message: `call ${i}` }]);
const calls = [];
const started = performance.now();
for (const [name, args] of plan) {
  const result = await client.callTool({ name, arguments: args });
  calls.push({ name, arguments: args, result });
}
const callsMs = performance.now() - started;
const out = {
  client_pid: process.pid,
  server_pid: transport.pid,
  server: client.getServerVersion(),
  tools: tools.tools.map((t) => t.name),
  calls_ms: callsMs,
  calls: own.includes("--quiet") ? [] : calls,
};
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
