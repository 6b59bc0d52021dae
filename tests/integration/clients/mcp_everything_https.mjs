// @modelcontextprotocol/server-everything (npm) over Streamable HTTP, reachable only through
// HTTPS on 127.0.0.1, for agentwall's tests: the server itself listens on a loopback port
// (its listen() is held to 127.0.0.1) and a TLS front end on another loopback port forwards
// every request to it, streaming answers as they come (SSE).
//   node mcp_everything_https.mjs --cert C --key K --port-file F
import fs from "node:fs";
import http from "node:http";
import https from "node:https";

const argv = process.argv.slice(2);
const opt = (name) => argv[argv.indexOf(`--${name}`) + 1];

// server-everything calls app.listen(PORT): keep it on loopback, on a free port.
const listen = http.Server.prototype.listen;
let upstream = null;
http.Server.prototype.listen = function (...args) {
  const server = this;
  const done = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
  return listen.call(server, 0, "127.0.0.1", () => {
    upstream = server.address().port;
    if (done) done();
  });
};
process.env.PORT = "0";
await import("@modelcontextprotocol/server-everything/dist/transports/streamableHttp.js");
while (upstream === null) await new Promise((r) => setTimeout(r, 20));

const front = https.createServer({
  cert: fs.readFileSync(opt("cert")), key: fs.readFileSync(opt("key")),
}, (req, res) => {
  const up = http.request({ host: "127.0.0.1", port: upstream, method: req.method,
                            path: req.url, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on("error", (e) => { if (!res.headersSent) res.writeHead(502); res.end(String(e)); });
  req.pipe(up);
});
front.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(opt("port-file"), String(front.address().port));
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
