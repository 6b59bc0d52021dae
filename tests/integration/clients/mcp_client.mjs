// An MCP client for agentwall's tests, the official SDK's Client:
//   node mcp_client.mjs --url https://127.0.0.1:PORT/mcp [--transport streamable|sse]
// Connects (initialize), lists the tools, calls echo, add and fail, and prints one JSON
// object with what it sent and received, for the test to compare with agentwall's events.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const url = new URL(opt("url"));
const kind = opt("transport", "streamable");
const transport = kind === "sse" ? new SSEClientTransport(url) : new StreamableHTTPClientTransport(url);
const client = new Client({ name: "agentwall-test-client", version: "0.9.0" });
await client.connect(transport);
const tools = await client.listTools();
const calls = [];
for (const [name, args] of [["echo", { message: opt("message", "hello from the test") }],
                            ["add", { a: 2, b: 40 }], ["fail", {}]]) {
  const result = await client.callTool({ name, arguments: args });
  calls.push({ name, arguments: args, result });
}
const out = {
  session_id: transport.sessionId ?? null,
  server: client.getServerVersion(),
  protocol_version: transport.protocolVersion ?? null,
  tools: tools.tools.map((t) => t.name),
  calls,
};
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
