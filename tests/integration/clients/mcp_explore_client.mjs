// An MCP client that looks at everything a server offers, as an agent host does at start:
// initialize, tools/list, prompts/list, resources/list, then calls the tools named on the
// command line with JSON arguments, and prints what it got as one JSON object.
//   node mcp_explore_client.mjs --url URL [--call NAME JSON]...
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const argv = process.argv.slice(2);
const url = argv[argv.indexOf("--url") + 1];
const calls = [];
for (let i = 0; i < argv.length; ++i)
  if (argv[i] === "--call") calls.push([argv[i + 1], JSON.parse(argv[i + 2])]);

const client = new Client({ name: "agentwall-explore-client", version: "0.1.0" });
const transport = new StreamableHTTPClientTransport(new URL(url));
await client.connect(transport);
const tools = (await client.listTools()).tools;
const prompts = (await client.listPrompts()).prompts;
const resources = (await client.listResources()).resources;
const results = [];
for (const [name, args] of calls)
  results.push({ name, arguments: args, result: await client.callTool({ name, arguments: args }) });
await client.close();
process.stdout.write(JSON.stringify({
  session_id: transport.sessionId ?? null, server: client.getServerVersion(),
  tools: tools.map((t) => t.name), prompts: prompts.map((p) => p.name),
  resources: resources.map((r) => r.uri), calls: results,
}) + "\n");
