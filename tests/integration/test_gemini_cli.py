"""Gemini CLI (npm @google/gemini-cli, pinned in clients/package.json), the real program, in
its non-interactive mode (`gemini -p PROMPT`) against the provider stand-in: the agent must
write the llm.exchange of its call, for its pid, with the model, the prompt, the output and
the usage the stand-in sent.

Set-up, all in temp dirs: HOME with a ~/.gemini/settings.json that picks API-key auth and
turns telemetry, usage statistics and update checks off; GEMINI_API_KEY fake;
GOOGLE_GEMINI_BASE_URL names the stand-in; NODE_EXTRA_CA_CERTS its CA;
GEMINI_CLI_CUSTOM_HEADERS tags the request; `-m gemini-2.5-flash` (a named model: the default
"auto" first asks a classifier model for a JSON verdict); GEMINI_CLI_NO_RELAUNCH, so the pid
the test starts is the one that talks (otherwise the CLI re-runs itself in a child node).
The stand-in and the CLI share a network namespace with only loopback up: nothing it tries
reaches another host. Node here is NodeSource's, on the system libssl the agent attaches to.
"""

import json
import os
import secrets

import aw
import llm

GEMINI_JS = os.path.join(llm.CLIENTS_DIR, "node_modules", "@google", "gemini-cli", "bundle",
                         "gemini.js")
MODEL = "gemini-2.5-flash"


def texts(parts) -> str:
    """The text parts of a Gemini message, one per line (as the agent joins them)."""
    return "\n".join(p.get("text", "") for p in parts or [] if isinstance(p, dict) and
                   not p.get("thought"))


class GeminiCliTest(aw.AgentTestCase):

    def test_gemini_p(self):
        node = llm.node_bin()
        if not os.path.isfile(GEMINI_JS):
            raise AssertionError(f"{GEMINI_JS} is missing: run scripts/install-deps.sh --test")
        home = os.path.join(self.tmp, "home")
        work = os.path.join(self.tmp, "work")
        os.makedirs(os.path.join(home, ".gemini"))
        os.makedirs(work)
        with open(os.path.join(home, ".gemini", "settings.json"), "w") as f:
            json.dump({"security": {"auth": {"selectedType": "gemini-api-key"}},
                       "privacy": {"usageStatisticsEnabled": False},
                       "telemetry": {"enabled": False},
                       "general": {"disableAutoUpdate": True, "disableUpdateNag": True}}, f)
        key = "AIza-test-" + llm.new_tag()
        tag = llm.new_tag()
        # Letters and digits only: nothing the CLI could take for a file reference (@path) or a
        # command (/cmd, !cmd).
        prompt = f"Write one line about {secrets.token_hex(12)} {tag}"

        with llm.StandIn(self.pki, netns=True) as standin:
            env = aw.client_env(HOME=home, GEMINI_API_KEY=key,
                                GOOGLE_GEMINI_BASE_URL=standin.base_url,
                                NODE_EXTRA_CA_CERTS=self.pki.ca_cert,
                                GEMINI_CLI_CUSTOM_HEADERS=f"x-standin-tag: {tag}",
                                GEMINI_CLI_NO_RELAUNCH="true", NO_COLOR="1", TERM="dumb")
            # The CLI's system prompt is tens of KiB: kept whole, so it can be compared.
            with aw.Agent(command="run", args=["--health-interval", "0", "--content-cap",
                                               str(1 << 20)]) as agent:
                res = aw.run_client(standin.in_netns(
                    [node, GEMINI_JS, "--skip-trust", "-m", MODEL, "-p", prompt]),
                    env=env, cwd=work, timeout=90)
                entry = standin.wait_entry(tag)
                event = llm.wait_exchange(agent, res.pid, aw.DATA_TIMEOUT)
                self.assertIsNotNone(event, "no llm.exchange for gemini's pid\n" +
                                     llm.describe_events(agent, res.pid) + "\n" + res.describe())
                mine = llm.exchanges(agent.records(), res.pid)
            others = [e for e in standin.entries if e is not entry]

        a = entry["answer"]
        body = entry["body"]
        ctx = ("\n  event:    " + json.dumps(event, sort_keys=True)[:4000] +
               "\n  stand-in: " + json.dumps(entry, sort_keys=True)[:3000] +
               "\n" + res.describe())
        # The set-up: one model call, answered, and the CLI printed the answer.
        self.assertEqual(others, [], "the CLI made other calls than the one tagged" + ctx)
        self.assertEqual(entry["path"], f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse")
        self.assertIn(a["output_text"], res.stdout.decode(errors="replace"), ctx)
        self.assertEqual(len(mine), 1, f"one call, {len(mine)} llm.exchange events" + ctx)

        self.assertEqual(event["provider"], "gemini", ctx)
        self.assertEqual(event["api"], "gemini", ctx)
        self.assertEqual(event["operation"], "chat", ctx)
        self.assertEqual(event["model"], MODEL, ctx)
        self.assertEqual(event["response_model"], a["response_model"], ctx)
        self.assertTrue(event["stream"], ctx)
        self.assertEqual(event["status"], 200, ctx)
        self.assertEqual(event["host"], "127.0.0.1", ctx)

        # What was asked: the prompt in the last user message, as the CLI sent it (behind the
        # session context it puts in the same turn), its system prompt and its tools.
        msgs = event.get("messages") or []
        self.assertTrue(msgs, ctx)
        self.assertEqual(msgs[-1]["role"], "user", ctx)
        self.assertIn(prompt, msgs[-1]["text"], ctx)
        self.assertEqual(msgs[-1]["text"], texts(body["contents"][-1]["parts"]), ctx)
        self.assertEqual(len(msgs), len(body["contents"]), ctx)
        system = texts((body.get("systemInstruction") or {}).get("parts"))
        self.assertTrue(system, "(set-up) the CLI sends a system instruction")
        self.assertEqual(event.get("system"), system, ctx)
        declared = sorted(d["name"] for t in body.get("tools") or []
                          for d in t.get("functionDeclarations") or [])
        self.assertTrue(declared, "(set-up) the CLI declares its tools")
        self.assertEqual(sorted(t if isinstance(t, str) else t.get("name")
                                for t in event.get("tools") or []), declared, ctx)

        # What was answered, and the usage the stand-in sent (thoughts count as output).
        self.assertEqual(event["output_text"], a["output_text"], ctx)
        self.assertEqual(event.get("response_id"), a["response_id"], ctx)
        usage = event["usage"]
        self.assertEqual(usage["source"], "provider", ctx)
        want = llm.expected_usage("gemini", "chat", a["usage"])
        self.assertGreater(want["input_tokens"], 0)
        for k, v in want.items():
            if usage.get(k) is None and v == 0:
                continue
            self.assertEqual(usage.get(k), v, f"usage.{k}" + ctx)
        self.assertGreater(event.get("cost_usd") or 0, 0, ctx)

        self.assertEqual(event["api_key_fingerprint"], llm.api_key_fingerprint(key), ctx)
        self.assertNotIn(key, json.dumps(event), "the API key leaked into the event")
        self.assertEqual(event.get("flags") or [], [], ctx)
        self.assertEqual(event["process"]["pid"], res.pid, ctx)
        self.assertEqual(event["process"]["exe"], os.path.realpath(node), ctx)


if __name__ == "__main__":
    aw.main()
