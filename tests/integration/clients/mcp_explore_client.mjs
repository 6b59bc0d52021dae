// An MCP client that looks at everything a server offers, as an agent host does at start:
// initialize, tools/list, then prompts/list and resources/list when the server offers them,
// then calls the tools named on the command line with JSON arguments, and prints what it got
// as one JSON object. Over Streamable HTTP (--url), or over stdio: the SDK's
// StdioClientTransport spawns COMMAND and talks to it through its stdin and stdout.
//   node mcp_explore_client.mjs --url URL [--call NAME JSON]...
//   node mcp_explore_client.mjs [--wait] [--call NAME JSON]... -- COMMAND [ARG...]
// --wait: once connected and listed, print {"ready": true, client_pid, server_pid} on a line
// and make the calls only when a line comes on stdin (a session that a test joins mid-way).
import readline from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const all = process.argv.slice(2);
const dashdash = all.indexOf("--");
const argv = dashdash < 0 ? all : all.slice(0, dashdash);
const url = argv.includes("--url") ? argv[argv.indexOf("--url") + 1] : null;
const calls = [];
for (let i = 0; i < argv.length; ++i)
  if (argv[i] === "--call") calls.push([argv[i + 1], JSON.parse(argv[i + 2])]);
if (!url && dashdash < 0) {
  process.stderr.write("usage: mcp_explore_client.mjs (--url URL | [--wait] -- COMMAND [ARG...]) " +
                       "[--call NAME JSON]...\n");
  process.exit(2);
}

const client = new Client({ name: "agentwall-explore-client", version: "0.1.0" });
const [command, ...args] = all.slice(dashdash + 1);
const transport = url ? new StreamableHTTPClientTransport(new URL(url))
                      : new StdioClientTransport({ command, args, stderr: "inherit" });
await client.connect(transport);
const offers = client.getServerCapabilities() ?? {};
const tools = (await client.listTools()).tools;
const prompts = offers.prompts ? (await client.listPrompts()).prompts : [];
const resources = offers.resources ? (await client.listResources()).resources : [];
const ends = url ? {} : { client_pid: process.pid, server_pid: transport.pid };
if (argv.includes("--wait")) {
  process.stdout.write(JSON.stringify({ ready: true, ...ends }) + "\n");
  const lines = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once("line", resolve));
  lines.close();
}
const results = [];
for (const [name, args] of calls)
  results.push({ name, arguments: args, result: await client.callTool({ name, arguments: args }) });
await client.close();
process.stdout.write(JSON.stringify({
  session_id: transport.sessionId ?? null, ...ends, server: client.getServerVersion(),
  tools: tools.map((t) => t.name), prompts: prompts.map((p) => p.name),
  resources: resources.map((r) => r.uri), calls: results,
}) + "\n");
