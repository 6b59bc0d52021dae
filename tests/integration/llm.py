"""Helpers for the LLM integration tests (test_llm_sdks.py). Stdlib only, Python >= 3.11.

  * StandIn          -- the provider stand-in (standin/standin.mjs, Node built-ins only) as a
                        context manager: HTTPS on 127.0.0.1 (h2 + http/1.1) with the TestPKI
                        certificate; collects the JSON line it prints per answered request.
  * run_llm_client   -- runs clients/llm_client.mjs (official SDKs from npm) for one call and
                        returns (ClientResult, the JSON line it printed).
  * run_urllib_client, run_curl_chat_h2 -- the same for Python urllib and curl --http2.
  * wait_exchange    -- polls the agent's --events output for the llm.exchange of a pid.
  * check_exchange   -- asserts an llm.exchange event against what the client asked and what
                        the stand-in answered.

Every process started here is stopped here (the stand-in also dies with the test process:
PR_SET_PDEATHSIG via setpriv, and it exits when its stdin pipe closes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import aw

STANDIN = os.path.join(aw.HERE, "standin", "standin.mjs")
CLIENTS_DIR = os.path.join(aw.HERE, "clients")
LLM_CLIENT = os.path.join(CLIENTS_DIR, "llm_client.mjs")
URLLIB_CLIENT = os.path.join(CLIENTS_DIR, "urllib_client.py")
PRICES = os.path.join(aw.REPO, "policies", "prices.yaml")
START_TIMEOUT = 15.0

# The adapter ("api") that reads each provider's API in the agent.
API_OF = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini", "ollama": "ollama"}
# Providers whose models cost nothing (policies/prices.yaml `free_providers`).
FREE_PROVIDERS = {"ollama", "vllm", "lmstudio", "llamacpp", "localai"}


def node_bin() -> str:
    node = shutil.which("node")
    if not node:
        raise AssertionError("node is not installed (scripts/install-deps.sh --test)")
    return node


def require_sdks() -> None:
    """The npm packages of clients/ must be installed (scripts/install-deps.sh --test)."""
    missing = [p for p in ("openai", "@anthropic-ai/sdk", "@google/genai", "ollama")
               if not os.path.isfile(os.path.join(CLIENTS_DIR, "node_modules", p, "package.json"))]
    if missing:
        raise AssertionError(
            f"LLM SDKs not installed in {CLIENTS_DIR}/node_modules: {', '.join(missing)}. Run "
            f"`scripts/install-deps.sh --test` (or `npm ci` in {CLIENTS_DIR}).")


def new_tag() -> str:
    return "aw-" + uuid.uuid4().hex[:12]


# --------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------

class StandIn:
    """Runs standin.mjs for the duration of a `with` block (or start()/stop()).

    `entries` holds the parsed request/answer lines; wait_entry(tag=...) waits for the one a
    client tagged with `x-standin-tag`.
    """

    def __init__(self, pki: aw.TestPKI | None, delay_ms: int | None = None,
                 plain: bool = False, host: str = "127.0.0.1", netns: bool = False,
                 cert: tuple[str, str] | None = None, tls12: bool = False) -> None:
        """plain: plaintext HTTP/1.1 (a local model server such as Ollama) instead of HTTPS.
        host: the address it listens on (127.0.0.1, or ::1).
        cert: its certificate and key (pki.issue(name)), instead of the PKI's localhost one.
        tls12: TLS 1.2 at most (a server or gateway that does not speak TLS 1.3).
        netns: in a network namespace of its own with only loopback up (`unshare -n`); clients
        run in it through in_netns(), so a real program that also wants other hosts (update
        checks, telemetry) reaches nothing but the stand-in. The agent sees it all the same:
        its probes are host-wide."""
        self.pki = pki
        self.delay_ms = delay_ms
        self.plain = plain
        self.host = host
        self.netns = netns
        self.tls12 = tls12
        self.cert = cert or ((pki.cert, pki.key) if pki else None)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.entries: list[dict] = []
        self.bad_lines: list[str] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._eof = False
        self.dir = aw.make_tempdir("aw-standin-")
        self.stderr_file = os.path.join(self.dir, "stderr.log")

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'http' if self.plain else 'https'}://{host}:{self.port}"

    def start(self) -> "StandIn":
        tls = ["--plain"] if self.plain else ["--cert", self.cert[0], "--key", self.cert[1]]
        argv = [node_bin(), STANDIN, *tls, "--port", "0", "--host", self.host,
                "--exit-on-stdin-eof"]
        if self.delay_ms is not None:
            argv += ["--delay-ms", str(self.delay_ms)]
        if self.tls12:
            argv += ["--tls12"]
        if self.netns:
            # unshare and sh exec: the pid stays the stand-in's (and setpriv's death signal).
            argv = [aw.require_program("unshare", "util-linux"), "-n", "sh", "-c",
                    f'{aw.require_program("ip", "iproute2")} link set lo up && exec "$@"', "sh",
                    *argv]
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        aw.log("starting stand-in: " + " ".join(argv))
        with open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, env=aw.client_env())
        self._reader = threading.Thread(target=self._read, name="aw-standin", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        with self._cond:
            while not self.port:
                if self._eof or self.proc.poll() is not None:
                    self.stop()
                    raise AssertionError(f"stand-in exited before listening:\n{self.stderr()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"stand-in not listening after {START_TIMEOUT}s:\n"
                                         f"{self.stderr()}")
                self._cond.wait(0.1)
        aw.log(f"stand-in listening on {self.host} port {self.port} (pid {self.proc.pid})")
        return self

    def in_netns(self, argv: list[str]) -> list[str]:
        """argv run in the stand-in's network namespace (netns=True): nsenter execs it, so the
        pid is the program's own."""
        assert self.netns and self.proc is not None
        return [aw.require_program("nsenter", "util-linux"), f"--net=/proc/{self.proc.pid}/ns/net",
                "--", *argv]

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            text = line.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            with self._cond:
                if not isinstance(obj, dict):
                    self.bad_lines.append(text)
                elif "port" in obj and not self.port and len(obj) == 1:
                    self.port = int(obj["port"])
                else:
                    self.entries.append(obj)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def stop(self) -> None:
        p = self.proc
        if p is None:
            return
        try:
            if p.stdin:
                p.stdin.close()  # --exit-on-stdin-eof
        except OSError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if p.stdout:
            p.stdout.close()
        aw.log(f"stand-in stopped: status {p.returncode}")
        self.proc = None
        aw.remove_tempdir(self.dir)

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stderr(self) -> str:
        try:
            with open(self.stderr_file, "rb") as f:
                return "stand-in stderr:\n" + f.read().decode(errors="replace")[-3000:]
        except FileNotFoundError:
            return "stand-in stderr: <gone>"

    def wait_entry(self, tag: str, timeout: float = 10.0) -> dict:
        """The log line of the request tagged `tag` (x-standin-tag)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [e for e in self.entries if e.get("tag") == tag]
                if len(hits) > 1:
                    raise AssertionError(f"stand-in got {len(hits)} requests tagged {tag}: "
                                         f"{[h.get('path') for h in hits]}")
                if hits:
                    return hits[0]
                if self._eof:
                    raise AssertionError(f"stand-in exited; no request tagged {tag}\n"
                                         f"{self.stderr()}")
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"stand-in logged no request tagged {tag} within {timeout}s; tags seen: "
                        f"{[e.get('tag') for e in self.entries][-10:]}\n{self.stderr()}")
                self._cond.wait(0.1)


class StandInTestCase(aw.AgentTestCase):
    """AgentTestCase with one stand-in server (`cls.standin`) for the whole class."""

    standin: StandIn

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.standin = StandIn(cls.pki)
        cls.standin.start()
        cls.addClassCleanup(cls.standin.stop)


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

def _client_json(res: aw.ClientResult) -> dict:
    lines = [l for l in res.stdout.decode("utf-8", errors="replace").splitlines() if l.strip()]
    try:
        out = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise AssertionError("client printed no JSON line:\n" + res.describe()) from None
    if not isinstance(out, dict):
        raise AssertionError("client printed no JSON object:\n" + res.describe())
    return out


def run_llm_client(standin: StandIn, sdk: str, *, stream: bool, tools: bool = False,
                   include_usage: bool = False, encoding: str | None = None,
                   tag: str | None = None, history: int = 0,
                   user: str | None = None,
                   answer_bytes: int = 0) -> tuple[aw.ClientResult, dict]:
    """One SDK call through llm_client.mjs; the CA reaches Node via NODE_EXTRA_CA_CERTS."""
    require_sdks()
    argv = [node_bin(), LLM_CLIENT, "--sdk", sdk, "--stream" if stream else "--no-stream",
            "--base-url", standin.base_url, "--tag", tag or new_tag()]
    if tools:
        argv.append("--tools")
    if include_usage:
        argv.append("--include-usage")
    if encoding:
        argv += ["--encoding", encoding]
    if history:
        argv += ["--history", str(history)]
    if user is not None:
        argv += ["--user", user]
    if answer_bytes:
        argv += ["--answer-bytes", str(answer_bytes)]
    res = aw.run_client(argv, env=aw.client_env(NODE_EXTRA_CA_CERTS=standin.pki.ca_cert))
    out = _client_json(res)
    if out.get("pid") != res.pid:
        raise AssertionError(f"client pid {out.get('pid')} != spawned pid {res.pid}")
    return res, out


def run_urllib_client(standin: StandIn, *, tag: str, encoding: str | None = None,
                      stream: bool = False, lib: str = "urllib") -> tuple[aw.ClientResult, dict]:
    """lib: urllib (this Python), or requests / httpx (Debian's, run by /usr/bin/python3)."""
    python = sys.executable if lib == "urllib" else "/usr/bin/python3"
    argv = [python, URLLIB_CLIENT, "--base-url", standin.base_url,
            "--cafile", standin.pki.ca_cert, "--tag", tag, "--lib", lib]
    if encoding:
        argv += ["--encoding", encoding]
    if stream:
        argv.append("--stream")
    res = aw.run_client(argv)
    return res, _client_json(res)


CURL_SYSTEM = "You are agentwall's integration test assistant. Answer in one short sentence."
CURL_USER = "Say hello from curl over HTTP/2 and count to three."


def parse_openai_sse(text: str) -> dict:
    """What a Chat Completions SSE stream says: output text, tool calls, usage, model."""
    out = {"output_text": "", "tool_calls": [], "usage": None, "response_model": None,
           "finish_reason": None, "done": False}
    calls: dict[int, dict] = {}
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            out["done"] = True
            continue
        chunk = json.loads(data)
        out["response_model"] = chunk.get("model") or out["response_model"]
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        for ch in chunk.get("choices", []):
            d = ch.get("delta") or {}
            out["output_text"] += d.get("content") or ""
            for t in d.get("tool_calls") or []:
                c = calls.setdefault(t["index"], {"id": None, "name": "", "arguments": ""})
                c["id"] = t.get("id") or c["id"]
                c["name"] += (t.get("function") or {}).get("name") or ""
                c["arguments"] += (t.get("function") or {}).get("arguments") or ""
            out["finish_reason"] = ch.get("finish_reason") or out["finish_reason"]
    out["tool_calls"] = [calls[i] for i in sorted(calls)]
    return out


def run_curl_chat_h2(standin: StandIn, tmp: str, *, tag: str, include_usage: bool = True
                     ) -> tuple[aw.ClientResult, dict]:
    """curl --http2 POST /v1/chat/completions, stream true, through https://localhost:PORT
    (--resolve to 127.0.0.1, so SNI and :authority are "localhost")."""
    body = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 100,
            "messages": [{"role": "system", "content": CURL_SYSTEM},
                         {"role": "user", "content": CURL_USER}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    body_file = os.path.join(tmp, "curl-body.json")
    out_file = os.path.join(tmp, "curl-out.txt")
    with open(body_file, "w") as f:
        json.dump(body, f)
    port = standin.port
    argv = aw.curl_argv(standin.pki, port, "--http2", "-N", "--fail-with-body",
                        "-H", "Content-Type: application/json",
                        "-H", "Authorization: Bearer sk-test-agentwall-0002",
                        "-H", f"x-standin-tag: {tag}",
                        "--data-binary", "@" + body_file, "-o", out_file,
                        f"https://localhost:{port}/v1/chat/completions")
    res = aw.run_client(argv)
    with open(out_file, encoding="utf-8") as f:
        parsed = parse_openai_sse(f.read())
    if not parsed["done"]:
        raise AssertionError(f"curl: the stream did not end with [DONE]: {parsed}")
    client = {"sdk": "curl", "pid": res.pid, "model": body["model"], "stream": True,
              "system": CURL_SYSTEM, "messages": [{"role": "user", "text": CURL_USER}],
              "tools": [], **{k: parsed[k] for k in ("output_text", "tool_calls", "usage",
                                                     "response_model", "finish_reason")}}
    return res, client


# --------------------------------------------------------------------------------------------
# Agent events
# --------------------------------------------------------------------------------------------

def raw_chat_request(tag: str, user_text: str) -> tuple[bytes, dict]:
    """The bytes of one non-streamed chat completion (HTTP/1.1, Connection: close, so the
    stand-in closes after its answer) for a raw TLS client such as gnutls-cli or tstclnt, and
    the body it carries."""
    body = {"model": "gpt-4o-mini", "max_tokens": 50,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": user_text}]}
    raw = json.dumps(body).encode()
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
           b"Content-Type: application/json\r\nAuthorization: Bearer sk-test-raw\r\n"
           b"x-standin-tag: " + tag.encode() + b"\r\nConnection: close\r\n"
           b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
    return req, body


def check_raw_chat(test, event: dict | None, entry: dict, body: dict, *, port: int,
                   exe: str) -> None:
    """The llm.exchange of a raw_chat_request() sent with SNI localhost to the stand-in on
    127.0.0.1:port: model, prompt, answer and usage as the stand-in saw and gave them."""
    test.assertIsNotNone(event)
    test.assertEqual(event["provider"], "openai")
    test.assertEqual(event["model"], body["model"])
    test.assertEqual(event["system"], "Be brief.")
    test.assertEqual(event["messages"],
                     [{"role": "user", "text": body["messages"][1]["content"]}])
    test.assertEqual(event["output_text"], entry["answer"]["output_text"])
    test.assertEqual(event["usage"]["input_tokens"], entry["answer"]["usage"]["prompt_tokens"])
    test.assertEqual(event["usage"]["output_tokens"],
                     entry["answer"]["usage"]["completion_tokens"])
    test.assertEqual(event["connection"]["sni"], "localhost")
    test.assertEqual(event["connection"]["peer"], f"127.0.0.1:{port}")
    test.assertEqual(event["process"]["exe"], exe)


def exchanges(records, pid: int | None = None) -> list[dict]:
    return [r for r in records if r.get("type") == "llm.exchange" and
            (pid is None or (r.get("process") or {}).get("pid") == pid)]


def wait_exchange(agent: aw.Agent, pid: int, timeout: float) -> dict | None:
    """The llm.exchange of pid in the agent's --events output, or None after timeout."""
    found: list[dict] = []

    def have(recs):
        found[:] = exchanges(recs, pid)
        return bool(found)

    agent.wait_for(have, timeout, f"llm.exchange of pid {pid}")
    return found[0] if found else None


def describe_events(agent: aw.Agent, pid: int) -> str:
    recs = agent.records()
    ex = exchanges(recs)
    types: dict[str, int] = {}
    for r in recs:
        types[r.get("type")] = types.get(r.get("type"), 0) + 1
    lines = [f"agent events so far: {types}",
             f"llm.exchange pids: {sorted({(e.get('process') or {}).get('pid') for e in ex})}"]
    for e in ex[-3:]:
        lines.append("  last exchange: " + json.dumps(
            {k: e.get(k) for k in ("provider", "path", "model", "process", "status")})[:400])
    # What the agent said of this very process (a coverage.gap says what it saw of it).
    for r in recs:
        if (r.get("process") or {}).get("pid") == pid:
            lines.append(f"  pid {pid}: " + json.dumps(
                {k: v for k, v in r.items() if k != "process"})[:400])
    return "\n".join(lines) + "\n" + agent_losses(agent) + "\n" + agent.stderr_tail(15)


def agent_losses(agent: aw.Agent) -> str:
    """The running agent's capture figures (`agentwall status --json`: probes, drops, stream
    gaps), for a test that missed something; a line that says why when they cannot be had."""
    if not os.path.exists(agent.control_socket):
        return "agent status: no control socket"
    res = subprocess.run([aw.agent_bin(), "status", "--json", "--socket", agent.control_socket],
                         capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        return f"agent status: exit {res.returncode}: {res.stderr.strip()[:300]}"
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        return "agent status: not JSON: " + res.stdout[:300]
    keep = {k: doc[k] for k in ("counters", "attach", "streams", "http", "coverage")
            if k in doc}
    return "agent status: " + json.dumps(keep or doc)[:1500]


# --------------------------------------------------------------------------------------------
# Expected usage: the agent settles usage into normalised figures (agent/llm/stage.h
# SettledUsage): input_tokens = all prompt tokens, cache reads and writes included;
# output_tokens = all completion tokens, reasoning included.
# --------------------------------------------------------------------------------------------

def expected_usage(provider: str, operation: str, u: dict) -> dict:
    """{input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    total_tokens} from the provider's own usage object (as the stand-in sent it)."""
    def g(d, *path, default=0):
        for p in path:
            if not isinstance(d, dict) or p not in d or d[p] is None:
                return default
            d = d[p]
        return d

    if provider == "openai" and operation == "responses":
        inp, out = g(u, "input_tokens"), g(u, "output_tokens")
        return {"input_tokens": inp, "output_tokens": out,
                "cache_read_tokens": g(u, "input_tokens_details", "cached_tokens"),
                "cache_write_tokens": 0,
                "reasoning_tokens": g(u, "output_tokens_details", "reasoning_tokens"),
                "total_tokens": g(u, "total_tokens", default=inp + out)}
    if provider == "openai":  # chat, embeddings
        inp, out = g(u, "prompt_tokens"), g(u, "completion_tokens")
        return {"input_tokens": inp, "output_tokens": out,
                "cache_read_tokens": g(u, "prompt_tokens_details", "cached_tokens"),
                "cache_write_tokens": 0,
                "reasoning_tokens": g(u, "completion_tokens_details", "reasoning_tokens"),
                "total_tokens": g(u, "total_tokens", default=inp + out)}
    if provider == "anthropic":
        # Anthropic's input_tokens exclude the cached prompt: the agent adds reads and writes.
        cr, cw = g(u, "cache_read_input_tokens"), g(u, "cache_creation_input_tokens")
        inp, out = g(u, "input_tokens") + cr + cw, g(u, "output_tokens")
        return {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": cr,
                "cache_write_tokens": cw, "reasoning_tokens": 0, "total_tokens": inp + out}
    if provider == "gemini":
        # candidatesTokenCount excludes thoughtsTokenCount; totalTokenCount includes both.
        th = g(u, "thoughtsTokenCount")
        inp, out = g(u, "promptTokenCount"), g(u, "candidatesTokenCount") + th
        return {"input_tokens": inp, "output_tokens": out,
                "cache_read_tokens": g(u, "cachedContentTokenCount"), "cache_write_tokens": 0,
                "reasoning_tokens": th, "total_tokens": g(u, "totalTokenCount", default=inp + out)}
    if provider == "ollama":
        inp, out = g(u, "prompt_eval_count"), g(u, "eval_count")
        return {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": 0,
                "cache_write_tokens": 0, "reasoning_tokens": 0, "total_tokens": inp + out}
    raise ValueError(f"no usage mapping for provider {provider!r}")


_price_table: dict[str, dict[str, float]] | None = None


def price_table() -> dict[str, dict[str, float]]:
    """policies/prices.yaml `models:` entries ({input, cached_input, cache_write, output}, USD
    per million tokens). Only the one-line flow mappings the file uses are read."""
    global _price_table
    if _price_table is None:
        table: dict[str, dict[str, float]] = {}
        in_models = False
        with open(PRICES, encoding="utf-8") as f:
            for line in f:
                if re.match(r"^models:\s*$", line):
                    in_models = True
                    continue
                if in_models and re.match(r"^\S", line):
                    in_models = False
                m = re.match(r"^\s+([A-Za-z0-9_.:@/-]+):\s*\{([^}]*)\}", line) if in_models else None
                if m:
                    table[m.group(1).lower()] = {
                        k.strip(): float(v) for k, v in
                        (kv.split(":", 1) for kv in m.group(2).split(",") if ":" in kv)}
        _price_table = table
    return _price_table


def find_price(model: str) -> tuple[str, dict[str, float]] | None:
    """The price table entry of model: exact name, else the longest listed name the model
    starts with followed by "-", ".", ":" or "@" (as agent/llm/prices.cc does)."""
    table = price_table()
    m = model.lower().rsplit("/", 1)[-1]
    if m in table:
        return m, table[m]
    best = None
    for k in table:
        if len(k) < len(m) and m.startswith(k) and m[len(k)] in "-.:@":
            if best is None or len(k) > len(best):
                best = k
    return (best, table[best]) if best else None


def expected_cost(model: str, u: dict) -> tuple[str, float] | None:
    """(priced_as, USD) for normalised usage u (see docs/EVENTS.md), or None if unpriced."""
    hit = find_price(model)
    if hit is None:
        return None
    name, p = hit
    plain = max(0, u["input_tokens"] - u["cache_read_tokens"] - u["cache_write_tokens"])
    usd = (plain * p.get("input", 0) +
           u["cache_read_tokens"] * p.get("cached_input", p.get("input", 0)) +
           u["cache_write_tokens"] * p.get("cache_write", p.get("input", 0)) +
           u["output_tokens"] * p.get("output", 0)) / 1e6
    return name, usd


def api_key_fingerprint(key: str) -> str:
    """docs/EVENTS.md: "sha256:" + 16 hex digits of SHA-256 over the API key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def requested_max_output(operation: str, provider: str, body: dict) -> int | None:
    if not isinstance(body, dict):
        return None
    if provider == "openai" and operation == "responses":
        return body.get("max_output_tokens")
    if provider in ("openai", "anthropic"):
        return body.get("max_completion_tokens") or body.get("max_tokens")
    if provider == "gemini":
        return (body.get("generationConfig") or {}).get("maxOutputTokens")
    if provider == "ollama":
        return (body.get("options") or {}).get("num_predict")
    return None


def _norm_calls(calls) -> list[tuple]:
    out = []
    for c in calls or []:
        args = c.get("arguments")
        try:
            args = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            pass  # compared as text
        out.append((c.get("name"), json.dumps(args, sort_keys=True)))
    return out


def _api_key(headers: dict) -> str | None:
    for h in ("x-api-key", "api-key", "x-goog-api-key", "authorization"):
        v = headers.get(h)
        if v:
            return v.split(" ", 1)[1] if v.lower().startswith("bearer ") else v
    return None


def check_exchange(test, event: dict, client: dict, standin: dict, *, host: str = "127.0.0.1",
                   exe: str | None = None, sni: str | None = None,
                   node_memory_bio: bool = True) -> None:
    """Asserts that the agent's llm.exchange `event` describes the call the client made (its
    JSON line) and the answer the stand-in sent (its log line).

    node_memory_bio: Node's OpenSSL runs on memory BIOs, so the agent may not know the socket
    (connection.local/peer); when they are present they must still be right.
    """
    a = standin["answer"]
    provider, operation = a["provider"], a["operation"]
    ctx = ("\n  event:    " + json.dumps(event, sort_keys=True)[:4000] +
           "\n  client:   " + json.dumps(client, sort_keys=True)[:2000] +
           "\n  stand-in: " + json.dumps(standin, sort_keys=True)[:3000])

    def eq(got, want, what):
        test.assertEqual(got, want, f"llm.exchange {what}" + ctx)

    # The test set-up itself: the client saw what the stand-in sent.
    eq(client.get("output_text"), a["output_text"], "(test set-up) client output_text")
    eq(_norm_calls(client.get("tool_calls")), _norm_calls(a["tool_calls"]),
       "(test set-up) client tool_calls")

    eq(event.get("type"), "llm.exchange", "type")
    test.assertIn("time", event, "llm.exchange time" + ctx)
    eq(event.get("provider"), provider, "provider")
    eq(event.get("api"), API_OF[provider], "api")
    eq(event.get("operation"), operation, "operation")
    eq(event.get("method"), standin["method"], "method")
    full_path = standin["path"]
    test.assertIn(event.get("path"), (full_path, full_path.split("?", 1)[0]),
                  "llm.exchange path" + ctx)
    eq(event.get("http_version"), "2" if standin["http_version"].startswith("2") else "1.1",
       "http_version")
    eq(event.get("host"), host, "host")
    eq(event.get("status"), standin["status"], "status")
    eq(event.get("model"), client["model"], "model (requested)")
    eq(event.get("response_model"), a["response_model"], "response_model")
    eq(event.get("stream"), a["stream"], "stream")
    eq(event.get("stream"), client["stream"], "stream (client)")

    # What was asked.
    if operation != "embeddings":
        eq([{"role": m.get("role"), "text": m.get("text")} for m in event.get("messages") or []],
           client["messages"], "messages")
        eq(event.get("system") or "", client["system"], "system")
    eq(event.get("tools") or [], client["tools"], "tools")

    # What was answered.
    eq(event.get("output_text") or "", a["output_text"], "output_text")
    eq(_norm_calls(event.get("tool_calls")), _norm_calls(a["tool_calls"]), "tool_calls")
    want_ids = [c.get("id") for c in a["tool_calls"]]
    if any(want_ids):
        eq([c.get("id") for c in event.get("tool_calls") or []], want_ids, "tool_call ids")
    if a.get("finish_reason") and operation not in ("responses", "embeddings"):
        # As the provider says it (docs/EVENTS.md): stop, tool_calls, end_turn, tool_use, STOP.
        eq(event.get("finish_reason"), a["finish_reason"], "finish_reason")
    if a.get("response_id"):
        eq(event.get("response_id"), a["response_id"], "response_id")
    max_out = requested_max_output(operation, provider, standin.get("body"))
    if max_out:
        eq(event.get("max_output_tokens"), max_out, "max_output_tokens")
    if operation == "embeddings":
        eq(event.get("embedding_inputs"), a.get("embedding_inputs"), "embedding_inputs")

    # Usage.
    usage = event.get("usage")
    test.assertIsInstance(usage, dict, "llm.exchange usage" + ctx)
    if a.get("usage") is None:
        eq(usage.get("source"), "estimated", "usage.source (the stand-in sent no usage)")
        test.assertGreater(usage.get("input_tokens") or 0, 0, "estimated input_tokens" + ctx)
        test.assertGreater(usage.get("output_tokens") or 0, 0, "estimated output_tokens" + ctx)
    else:
        eq(usage.get("source"), "provider", "usage.source")
        want = expected_usage(provider, operation, a["usage"])
        for k, v in want.items():
            got = usage.get(k)
            if got is None and v == 0 and k != "input_tokens":
                continue  # zero figures may be left out
            eq(got, v, f"usage.{k}")
    if usage.get("total_tokens") is not None:
        eq(usage["total_tokens"], (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0),
           "usage.total_tokens = input + output")

    # Cost: local providers nothing; priced models exactly the table's price of the event's own
    # (normalised) usage figures, so estimated usage is priced consistently too.
    cost = event.get("cost_usd")
    cost_obj = event.get("cost") or {}
    if provider in FREE_PROVIDERS:
        eq(cost, 0, "cost_usd of a local provider")
        eq(cost_obj.get("priced_as"), "local", "cost.priced_as")
    else:
        test.assertIsInstance(cost, (int, float), "llm.exchange cost_usd" + ctx)
        test.assertGreater(cost, 0, "llm.exchange cost_usd" + ctx)
        norm = {k: usage.get(k) or 0 for k in ("input_tokens", "output_tokens",
                                               "cache_read_tokens", "cache_write_tokens")}
        priced = expected_cost(client["model"], norm)
        test.assertIsNotNone(priced, f"(test set-up) {client['model']} not in {PRICES}")
        name, usd = priced
        eq(cost_obj.get("priced_as"), name, "cost.priced_as")
        test.assertAlmostEqual(cost, usd, delta=1e-9 + usd * 1e-6,
                               msg=f"llm.exchange cost_usd (expected {usd:.10f} as {name} for "
                                   f"{norm})" + ctx)

    # Latency.
    lat = event.get("latency_ms") or {}
    fb, total = lat.get("first_byte"), lat.get("total")
    test.assertIsInstance(fb, (int, float), "latency_ms.first_byte" + ctx)
    test.assertIsInstance(total, (int, float), "latency_ms.total" + ctx)
    test.assertGreaterEqual(fb, 0, "latency_ms.first_byte" + ctx)
    test.assertGreaterEqual(total, fb, "latency_ms.total >= first_byte" + ctx)
    test.assertLess(total, 60000, "latency_ms.total" + ctx)

    # The key is fingerprinted, never written.
    key = _api_key(standin.get("headers") or {})
    fp = event.get("api_key_fingerprint")
    if key:
        eq(fp, api_key_fingerprint(key), "api_key_fingerprint")
        test.assertNotIn(key, json.dumps(event), "the API key leaked into the event" + ctx)
    else:
        test.assertIn(fp, (None, ""), "api_key_fingerprint without a key" + ctx)
    # Everything was seen whole: no request_gap, response_cut, content_truncated, ...
    eq(event.get("flags") or [], [], "flags")

    # Who made the call, on which connection.
    proc = event.get("process") or {}
    eq(proc.get("pid"), client["pid"], "process.pid")
    if exe:
        eq(proc.get("exe"), os.path.realpath(exe), "process.exe")
    conn = event.get("connection") or {}
    test.assertIn("id", conn, "llm.exchange connection.id" + ctx)
    peer = f"127.0.0.1:{standin['server_port']}"
    local = f"127.0.0.1:{standin['client_port']}"
    if conn.get("peer") is not None or not node_memory_bio:
        eq(conn.get("peer"), peer, "connection.peer")
    if conn.get("local") is not None or not node_memory_bio:
        eq(conn.get("local"), local, "connection.local")
    if sni is not None:
        eq(conn.get("sni"), sni, "connection.sni")

