"""Codex CLI (npm @openai/codex, pinned in clients/package.json; its native binary comes in the
platform package @openai/codex-linux-x64, a static musl Rust executable, stripped) in its
non-interactive mode (`codex exec PROMPT`) against the provider stand-in. Its HTTPS client is
rustls over aws-lc (the aws-lc-rs provider): the agent locates aws-lc's EVP_AEAD_CTX_seal and
EVP_AEAD_CTX_open in the executable by their code, captures each TLS record's plaintext there
and ties it to its socket. The test asserts the call is seen whole — one llm.exchange for the
native process with the model, the prompt, the answer and the provider's usage, on the
connection to the stand-in — and that no coverage.gap is raised for it; the coverage view
lists it as visible, its stack named. With the stand-in's address as the base URL; with
api.openai.com (in Codex's own /etc/hosts, a bind mount in a mount namespace of its own, at
127.0.0.1), so that the exchange names that host; and with the stand-in limited to TLS 1.2.

Set-up, all in temp dirs: CODEX_HOME with a config.toml whose model provider is the stand-in
(base_url, the Responses API, an env_key for the fake key, an http_headers tag); HOME;
SSL_CERT_FILE is the test CA (Codex then builds its rustls client on that bundle). It runs as
users start it, `codex` (bin/codex.js under node): on Node 20 that wrapper spawns the native
binary as a child (Node >= 22 execs it in place), so the exchange is the child's (its ppid is
the wrapper, or the same pid). The npm tree it came in (clients/node_modules/@openai) is named
with --attach, a directory: the agent looks through it as through a global npm tree
(/usr/lib/node_modules, /usr/local/lib/node_modules) and attaches the native binary before it
is ready. An executable outside those is attached at its exec, after the 0.5-1.6 s its search
takes, and a `codex exec` is over by then. The stand-in and Codex share a network
namespace with only loopback up: Codex's other requests (plugin sync from GitHub, model lists)
fail at once and reach nothing.
"""

import json
import os
import subprocess
import platform
import secrets

import aw
import llm

CODEX_JS = os.path.join(llm.CLIENTS_DIR, "node_modules", "@openai", "codex", "bin", "codex.js")
TRIPLE = {"x86_64": "x86_64-unknown-linux-musl", "aarch64": "aarch64-unknown-linux-musl"}
MODEL = "gpt-4o-mini"


def native_binary() -> str:
    arch = platform.machine()
    pkg = {"x86_64": "codex-linux-x64", "aarch64": "codex-linux-arm64"}.get(arch)
    if pkg is None:
        raise AssertionError(f"no Codex binary for {arch}")
    return os.path.join(llm.CLIENTS_DIR, "node_modules", "@openai", pkg, "vendor", TRIPLE[arch],
                        "bin", "codex")


STACK = "rustls (aws-lc, stripped; located by signature)"


class CodexTest(aw.AgentTestCase):

    def run_codex(self, by_name: bool, tls12: bool = False) -> tuple[dict, dict, str]:
        """codex exec against the stand-in, by address or by the name api.openai.com. Returns
        the native process's llm.exchange, the stand-in's entry and the endpoint."""
        node = llm.node_bin()
        native = native_binary()
        for f in (CODEX_JS, native):
            if not os.path.isfile(f):
                raise AssertionError(f"{f} is missing: run scripts/install-deps.sh --test")
        name = "api.openai.com"
        tmp = aw.make_tempdir("aw-codex-")
        self.addCleanup(aw.remove_tempdir, tmp)
        home = os.path.join(tmp, "home")
        codex_home = os.path.join(tmp, "codex-home")
        work = os.path.join(tmp, "work")
        for d in (home, codex_home, work):
            os.makedirs(d)
        tag = llm.new_tag()
        key = "sk-test-codex-" + llm.new_tag()
        # Letters and digits only: nothing the CLI could take for a file reference (@path) or a
        # command (/cmd, !cmd).
        prompt = f"Say one word about {secrets.token_hex(12)} {tag}"
        cert = self.pki.issue(name) if by_name else None
        with llm.StandIn(self.pki, netns=True, cert=cert, tls12=tls12) as standin:
            endpoint = f"127.0.0.1:{standin.port}"
            base_url = f"https://{name}:{standin.port}" if by_name else standin.base_url
            with open(os.path.join(codex_home, "config.toml"), "w") as f:
                f.write(f'model = "{MODEL}"\nmodel_provider = "standin"\n\n'
                        '[model_providers.standin]\nname = "stand-in"\n'
                        f'base_url = "{base_url}/v1"\nenv_key = "STANDIN_API_KEY"\n'
                        'wire_api = "responses"\n'
                        f'http_headers = {{ "x-standin-tag" = "{tag}" }}\n')
            env = aw.client_env(HOME=home, CODEX_HOME=codex_home, STANDIN_API_KEY=key,
                                SSL_CERT_FILE=self.pki.ca_cert, NO_COLOR="1", TERM="dumb",
                                RUST_LOG="error")
            argv = [node, CODEX_JS, "exec", "--skip-git-repo-check", "--ephemeral", "-C", work,
                    prompt]
            if by_name:
                hosts = os.path.join(tmp, "hosts")
                with open(hosts, "w") as f:
                    f.write(f"127.0.0.1 localhost\n127.0.0.1 {name}\n")
                # unshare and sh exec: the pid stays node's.
                argv = [aw.require_program("unshare", "util-linux"), "-m", "sh", "-c",
                        f'mount --bind {hosts} /etc/hosts && exec "$@"', "sh", *argv]
            # The npm tree it came in, as a global install's is looked through at start.
            args = ["--health-interval", "0", "--attach",
                    os.path.join(llm.CLIENTS_DIR, "node_modules", "@openai"),
                    "--coverage-endpoint", endpoint]
            with aw.Agent(command="run", args=args) as agent:
                # Attached before ready, from the tree: not at its exec, which may be too late.
                self.assertIn(f"attached to executable {os.path.realpath(native)} ",
                              agent.stderr_text(), agent.stderr_tail(20))
                res = aw.run_client(standin.in_netns(argv), env=env, cwd=work, timeout=90)
                entry = standin.wait_entry(tag)

                def mine(recs):
                    return [e for e in llm.exchanges(recs)
                            if e["process"].get("exe") == os.path.realpath(native) and
                            res.pid in (e["process"]["pid"], e["process"].get("ppid"))]
                agent.wait_for(lambda r: mine(r), what="an llm.exchange of codex")
                # Its exit decides any gap: wait past it.
                agent.wait_for(lambda r: False, timeout=3.0, what="settling")
                view = json.loads(subprocess.run(
                    [aw.agent_bin(), "coverage", "--socket", agent.control_socket, "--json"],
                    capture_output=True, text=True, timeout=30, check=True).stdout)
                recs = agent.records()

        ctx = "\n" + res.describe() + "\n" + agent.stderr_tail(20)
        # The set-up: Codex asked the stand-in (Responses API) with the prompt, got the answer.
        self.assertEqual(entry["path"], "/v1/responses", ctx)
        self.assertEqual(entry["tls"], "TLSv1.2" if tls12 else "TLSv1.3", ctx)
        answer = entry["answer"]
        self.assertEqual(answer["provider"], "openai")
        self.assertIn(prompt, json.dumps(entry["body"]), ctx)
        self.assertIn(answer["output_text"], res.stdout.decode(errors="replace"), ctx)

        found = [e for e in mine(recs) if prompt in json.dumps(e.get("messages"))]
        self.assertEqual(len(found), 1, json.dumps(mine(recs))[:4000] + ctx)
        event = found[0]
        pid = event["process"]["pid"]
        ctx = "\n  event: " + json.dumps(event)[:3000] + "\n  stand-in: " + json.dumps(entry)[:2000]
        self.assertEqual(event["provider"], "openai", ctx)
        self.assertEqual(event["operation"], "responses", ctx)
        self.assertEqual(event["path"], "/v1/responses", ctx)
        self.assertEqual(event["model"], MODEL, ctx)
        self.assertEqual(event["status"], 200, ctx)
        self.assertEqual(event["stream"], answer["stream"], ctx)
        self.assertEqual(event["output_text"], answer["output_text"], ctx)
        self.assertEqual(event["connection"]["peer"], endpoint, ctx)
        self.assertEqual(event["host"], name if by_name else "127.0.0.1", ctx)
        usage = event["usage"]
        self.assertEqual(usage.get("source"), "provider", json.dumps({k: event.get(k) for k in ("usage", "flags", "finish_reason", "latency_ms", "output_text")}) + json.dumps(answer)[:1500])
        for k, v in llm.expected_usage("openai", "responses", answer["usage"]).items():
            if usage.get(k) is None and v == 0 and k != "input_tokens":
                continue
            self.assertEqual(usage.get(k), v, f"usage.{k}" + ctx)
        # Seen whole: no gap, no cut (Codex's request, tens of KB of instructions, is longer
        # than the event keeps of it: content_truncated says so).
        self.assertEqual(set(event.get("flags") or []) - {"content_truncated"}, set(), ctx)

        # Visible: no coverage.gap for it, and the view names its stack.
        gaps = [e for e in recs if e.get("type") == "coverage.gap" and
                e["process"].get("exe") == os.path.realpath(native)]
        self.assertEqual(gaps, [], json.dumps(gaps)[:2000])
        rows = [p for p in view["processes"] if p["process"]["pid"] == pid]
        self.assertEqual(len(rows), 1, json.dumps(view)[:3000])
        self.assertTrue(rows[0]["visible"], rows[0])
        self.assertFalse(rows[0]["gap"], rows[0])
        self.assertEqual(rows[0].get("tls_stack"), STACK, rows[0])
        self.assertEqual([e for e in recs if e.get("type") == "agent.unknown_event"], [])
        return event, entry, endpoint

    def test_codex_exec_is_captured(self):
        self.run_codex(by_name=False)

    def test_by_the_name_api_openai_com(self):
        self.run_codex(by_name=True)

    def test_over_tls_1_2(self):
        """A server that stops at TLS 1.2: rustls seals those records with
        EVP_AEAD_CTX_seal_scatter (13 bytes of AAD, the explicit nonce before the plaintext),
        opens them with EVP_AEAD_CTX_open."""
        self.run_codex(by_name=False, tls12=True)


if __name__ == "__main__":
    aw.main()
