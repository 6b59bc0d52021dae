"""Records the LLM fixtures under tests/fixtures/ (unit tests replay them): real clients
against the provider stand-in, captured by `agentwall run --record`, each cut to its
client's process with `agentwall replay --pid P --record OUT`.

    sudo AGENTWALL_BIN=build/agentwall python3 tests/integration/make_llm_fixtures.py

Not a test (CTest runs only test_*.py). Rerun it when the stand-in or the clients change;
the unit tests check what the recordings must contain, not byte-identical output.
"""

import json
import os
import subprocess
import sys

import aw
import llm

FIXTURES = os.path.normpath(os.path.join(aw.HERE, "..", "fixtures"))


def cut(record: str, pid: int, name: str) -> None:
    out = os.path.join(FIXTURES, name)
    subprocess.run([aw.agent_bin(), "replay", record, "--pid", str(pid), "--record", out],
                   check=True)
    print(f"wrote {out} ({os.path.getsize(out)} bytes, pid {pid})")


def curl_parallel_h2(standin: llm.StandIn, tmp: str) -> aw.ClientResult:
    """Three streamed chat completions multiplexed on one HTTP/2 connection."""
    bodies = []
    for i, usage in enumerate((True, False, True)):
        path = os.path.join(tmp, f"body{i}.json")
        body = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 50,
                "messages": [{"role": "user", "content": f"Parallel request number {i}."}]}
        if usage:
            body["stream_options"] = {"include_usage": True}
        with open(path, "w") as f:
            json.dump(body, f)
        bodies.append(path)
    port = standin.port
    url = f"https://localhost:{port}/v1/chat/completions"
    # Options do not carry over --next: each request repeats them.
    per_request = aw.curl_argv(standin.pki, port, "--http2", "-H",
                               "Content-Type: application/json", "-H",
                               "Authorization: Bearer sk-fixture-not-a-real-key")
    # Without --parallel-immediate curl waits for the first connection and multiplexes.
    argv = [per_request[0], "-Z", "--parallel-max", "3"]
    for i, b in enumerate(bodies):
        if i:
            argv.append("--next")
        argv += per_request[1:]
        argv += ["--data-binary", "@" + b, "-o", os.path.join(tmp, f"out{i}.txt"), url]
    return aw.run_client(argv)


def join_recordings(record: str, pids: list[int], tmp: str, name: str) -> None:
    """The processes `pids` of `record`, one after the other, in one recording."""
    out_file = os.path.join(FIXTURES, name)
    with open(out_file, "wb") as out:
        for i, pid in enumerate(pids):
            p = os.path.join(tmp, f"part-{pid}.awrec")
            subprocess.run([aw.agent_bin(), "replay", record, "--pid", str(pid), "--record", p],
                           check=True)
            with open(p, "rb") as f:
                data = f.read()
            out.write(data if i == 0 else data[8:])  # one magic header
    print(f"wrote {out_file} ({os.path.getsize(out_file)} bytes, {len(pids)} processes)")


def main() -> int:
    aw.require_root()
    pki = aw.TestPKI()
    tmp = aw.make_tempdir("aw-fixtures-")
    try:
        with llm.StandIn(pki, delay_ms=5) as standin, aw.Agent(command="run") as agent:
            small, _ = llm.run_urllib_client(standin, tag=llm.new_tag())
            gz, _ = llm.run_urllib_client(standin, tag=llm.new_tag(), encoding="gzip")
            br, _ = llm.run_llm_client(standin, "anthropic", stream=True, tools=True,
                                       encoding="br", tag=llm.new_tag())
            h2 = curl_parallel_h2(standin, tmp)
            # A coding agent's requests: long conversations (40 earlier turns, ~60 KiB).
            long_calls = []
            for sdk, stream in (("openai", True), ("openai", False), ("anthropic", True)):
                res, _ = llm.run_llm_client(standin, sdk, stream=stream, tools=True,
                                            history=40, tag=llm.new_tag(),
                                            include_usage=(sdk == "openai" and stream))
                long_calls.append(res.pid)
            mix = []
            for sdk, stream, extra in (("openai", True, {"include_usage": True}),
                                       ("openai", True, {}),
                                       ("openai", False, {"tools": True}),
                                       ("openai-responses", True, {}),
                                       ("openai-embeddings", False, {}),
                                       ("anthropic", True, {}),
                                       ("anthropic", False, {}),
                                       ("gemini", True, {}),
                                       ("gemini", False, {}),
                                       ("ollama", True, {}),
                                       ("ollama", False, {})):
                res, _ = llm.run_llm_client(standin, sdk, stream=stream, tag=llm.new_tag(),
                                            **extra)
                mix.append(res.pid)
            for pid in [small.pid, gz.pid, br.pid, h2.pid, *mix, *long_calls]:
                if llm.wait_exchange(agent, pid, aw.DATA_TIMEOUT) is None:
                    raise AssertionError(f"no llm.exchange for pid {pid}")
            agent.stop()
            record = agent.keep_record(tmp)
        cut(record, small.pid, "llm-urllib-openai-chat.awrec")
        cut(record, gz.pid, "llm-urllib-openai-gzip.awrec")
        cut(record, br.pid, "llm-node-anthropic-stream-br.awrec")
        cut(record, h2.pid, "llm-curl-h2-parallel.awrec")
        join_recordings(record, long_calls, tmp, "llm-node-agent-long.awrec")
        # The mix: every SDK process of the run, one file.
        join_recordings(record, mix, tmp, "llm-node-sdk-mix.awrec")
    finally:
        aw.remove_tempdir(tmp)
        pki.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
