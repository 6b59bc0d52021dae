// An MCP server for agentwall's tests, built on the official SDK (@modelcontextprotocol/sdk),
// served over HTTPS on 127.0.0.1 with either HTTP transport, or over stdio:
//   node mcp_server.mjs --cert C --key K --port-file F [--transport streamable|sse] [--json]
//   node mcp_server.mjs --plain --port-file F [...]  (plaintext HTTP on 127.0.0.1)
//   node mcp_server.mjs --transport stdio      (newline-delimited JSON-RPC on stdin/stdout)
// streamable: Streamable HTTP at /mcp (stateful, Mcp-Session-Id; SSE responses, or JSON
// responses with --json). sse: the legacy HTTP+SSE transport (GET /sse, POST /messages).
// Tools: echo, add, and fail (which returns isError); with --evil, the malicious server of
// mcp_evil_tools.mjs instead. Prints the port to --port-file.
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";
import { makeEvilServer } from "./mcp_evil_tools.mjs";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]?.startsWith("--") || all[i + 1] === undefined ? true : all[i + 1]]);
  return acc;
}, []));
const transportKind = args.transport || "streamable";

function makeServer() {
  if (args.evil) return makeEvilServer();
  const server = new McpServer({ name: "agentwall-test-server", version: "1.2.3" },
    { instructions: "Tools for agentwall's tests." });
  server.registerTool("echo", {
    description: "Echoes the message back.",
    inputSchema: { message: z.string() },
  }, async ({ message }) => ({ content: [{ type: "text", text: `echo: ${message}` }] }));
  server.registerTool("add", {
    description: "Adds two numbers.",
    inputSchema: { a: z.number(), b: z.number() },
  }, async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }));
  server.registerTool("fail", {
    description: "Always fails.",
    inputSchema: {},
  }, async () => ({ isError: true, content: [{ type: "text", text: "this tool always fails" }] }));
  return server;
}

// --log FILE: every POST body the server reads, one line each (what enforcement tests check
// a blocked call against).
async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString("utf8");
  if (args.log && text) fs.appendFileSync(args.log, text.replace(/\n/g, " ") + "\n");
  return text ? JSON.parse(text) : undefined;
}

if (transportKind === "stdio") {
  const transport = new StdioServerTransport();
  transport.onclose = () => process.exit(0);
  await makeServer().connect(transport);
  process.stdin.on("end", () => process.exit(0));
} else {
  serveHttps();
}

function serveHttps() {
const streamable = {};  // session id -> transport
const sse = {};
const handler = async (req, res) => {
  try {
    const url = new URL(req.url, "https://localhost");
    if (transportKind === "streamable" && url.pathname === "/mcp") {
      const body = req.method === "POST" ? await readBody(req) : undefined;
      const sid = req.headers["mcp-session-id"];
      let transport = sid && streamable[sid];
      if (!transport) {
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: !!args.json,
          onsessioninitialized: (id) => { streamable[id] = transport; },
        });
        await makeServer().connect(transport);
      }
      await transport.handleRequest(req, res, body);
      return;
    }
    if (transportKind === "sse" && req.method === "GET" && url.pathname === "/sse") {
      const transport = new SSEServerTransport("/messages", res);
      sse[transport.sessionId] = transport;
      res.on("close", () => delete sse[transport.sessionId]);
      await makeServer().connect(transport);
      return;
    }
    if (transportKind === "sse" && req.method === "POST" && url.pathname === "/messages") {
      const transport = sse[url.searchParams.get("sessionId")];
      if (!transport) { res.writeHead(404).end("no such session"); return; }
      await transport.handlePostMessage(req, res, await readBody(req));
      return;
    }
    res.writeHead(404).end("not found");
  } catch (e) {
    process.stderr.write(`mcp_server: ${e.stack || e}\n`);
    if (!res.headersSent) res.writeHead(500).end(String(e));
  }
};
const httpsServer = args.plain ? http.createServer(handler) : https.createServer({
  cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key),
}, handler);
httpsServer.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(args["port-file"], String(httpsServer.address().port));
});
}
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
