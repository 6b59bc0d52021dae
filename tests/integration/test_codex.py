"""Codex CLI (npm @openai/codex, pinned in clients/package.json; its native binary comes in the
platform package @openai/codex-linux-x64, a static musl Rust executable, stripped) in its
non-interactive mode (`codex exec PROMPT`) against the provider stand-in. Its HTTPS client is
rustls, which the agent does not capture: the test asserts the blind spot is reported, not
silent — one `coverage.gap` for the native process naming the stand-in's address and
`rustls`, and no llm.exchange (no content at all) for it. Twice: with the stand-in's address as
the base URL (no SNI: an AI endpoint only by `--coverage-endpoint`), and with api.openai.com
(in Codex's own /etc/hosts, a bind mount in a mount namespace of its own, at 127.0.0.1): then
the ClientHello rustls writes names the endpoint by its SNI, with nothing configured.

Set-up, all in temp dirs: CODEX_HOME with a config.toml whose model provider is the stand-in
(base_url, the Responses API, an env_key for the fake key, an http_headers tag); HOME;
SSL_CERT_FILE is the test CA (Codex then builds its rustls client on that bundle). It runs as
users start it, `codex` (bin/codex.js under node): on Node 20 that wrapper spawns the native
binary as a child (Node >= 22 execs it in place), so the gap is the child's (its ppid is the
wrapper, or the same pid). The stand-in and Codex share a network namespace with only
loopback up: Codex's other requests (plugin sync from GitHub, model lists) fail at once and
reach nothing.
"""

import json
import os
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


class CodexTest(aw.AgentTestCase):

    def run_codex(self, by_name: bool) -> tuple[dict, dict, list, aw.ClientResult, str]:
        """codex exec against the stand-in, by address (the agent told the address is an AI
        endpoint) or by the name api.openai.com (the agent told nothing). Returns the gap, the
        stand-in's entry, the agent's records, the wrapper's result and the endpoint."""
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
        with llm.StandIn(self.pki, netns=True, cert=cert) as standin:
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
            args = ["--health-interval", "0"]
            if not by_name:
                args += ["--coverage-endpoint", endpoint]
            with aw.Agent(command="run", args=args) as agent:
                res = aw.run_client(standin.in_netns(argv), env=env, cwd=work, timeout=90)
                entry = standin.wait_entry(tag)

                def gaps(recs):
                    return [e for e in recs if e.get("type") == "coverage.gap" and
                            e["process"].get("exe") == os.path.realpath(native) and
                            res.pid in (e["process"]["pid"], e["process"].get("ppid"))]
                # The native process has exited: its gap is decided at its exit.
                agent.wait_for(lambda r: gaps(r), what="a coverage.gap for codex")
                agent.wait_for(lambda r: False, timeout=3.0, what="settling")
                recs = agent.records()

        ctx = "\n" + res.describe() + "\n" + agent.stderr_tail(20)
        # The set-up: Codex asked the stand-in (Responses API) with the prompt, got the answer.
        self.assertEqual(entry["path"], "/v1/responses", ctx)
        self.assertEqual(entry["answer"]["provider"], "openai")
        self.assertIn(prompt, json.dumps(entry["body"]), ctx)
        self.assertIn(entry["answer"]["output_text"], res.stdout.decode(errors="replace"), ctx)

        found = gaps(recs)
        self.assertEqual(len(found), 1, json.dumps(found, indent=1))
        g = found[0]
        pid = g["process"]["pid"]
        self.assertEqual(g["severity"], "high")
        self.assertEqual(g["endpoint"]["peer"], endpoint, g)
        self.assertGreaterEqual(g["endpoint"]["connections"], 1, g)
        self.assertEqual(g["tls_stack"], "rustls", g)
        self.assertIn("rustls", g["reason"], g)
        # No content for the native process (nor the wrapper): not an exchange, not a byte.
        for p in {pid, res.pid}:
            self.assertEqual(llm.exchanges(recs, p), [], f"pid {p}")
            self.assertEqual(aw.tls_data(recs, p), [], f"pid {p}")
        self.assertEqual([e for e in recs if e.get("type") == "agent.unknown_event"], [])
        health = [e for e in recs if e.get("type") == "agent.health"]
        if health:
            self.assertGreaterEqual(health[-1]["coverage"]["gaps"], 1)
        return g, entry, recs, res, endpoint

    def test_codex_exec_is_a_rustls_gap(self):
        g, _, _, _, endpoint = self.run_codex(by_name=False)
        self.assertEqual(g["endpoint"]["named_by"], "config", g)
        # Named by its executable: the thread that connected is a tokio worker.
        self.assertTrue(g["summary"].startswith(f"codex talks to {endpoint} "), g)

    def test_its_client_hello_names_the_endpoint(self):
        """By the name api.openai.com, nothing configured: rustls's ClientHello (read at the
        connection's first write) names the endpoint, and the gap says api.openai.com."""
        g, entry, _, _, _ = self.run_codex(by_name=True)
        self.assertEqual(g["endpoint"]["named_by"], "sni", g)
        self.assertEqual(g["endpoint"]["host"], "api.openai.com", g)
        self.assertTrue(g["summary"].startswith("codex talks to api.openai.com "), g)


if __name__ == "__main__":
    aw.main()
