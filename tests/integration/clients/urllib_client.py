"""One OpenAI Chat Completions call with Python's urllib (HTTP/1.1, system libssl), for
agentwall's integration tests (tests/integration/test_llm_sdks.py). Stdlib only.

  python3 urllib_client.py --base-url https://127.0.0.1:PORT --cafile CA [--tag T]
                           [--encoding gzip|br] [--stream] [--user TEXT] [--model NAME]
                           [--lib urllib|requests|httpx]

--lib requests / httpx make the same call with Debian's python3-requests or python3-httpx
(run with /usr/bin/python3); they decode the body themselves.

Prints one JSON line in the same shape as llm_client.mjs (sdk "urllib", or the --lib), plus
"content_encoding": the response's Content-Encoding. urllib does not decode bodies, so this
script does (gzip and deflate; "br" is only sent as the stand-in knob, not decoded here).
"""

import argparse
import json
import os
import ssl
import sys
import urllib.request
import zlib

MODEL = "gpt-4o-mini"
SYSTEM = "You are agentwall's integration test assistant. Answer in one short sentence."
USER = "Say hello from Python urllib and mention the number 7."
API_KEY = "sk-test-agentwall-0003"


def decode(body: bytes, encoding: str | None) -> bytes:
    if not encoding:
        return body
    if encoding == "gzip":
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise SystemExit(f"urllib_client: cannot decode Content-Encoding {encoding!r}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--tag")
    ap.add_argument("--encoding", choices=["gzip", "deflate"])
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--user", default=USER)
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--lib", choices=["urllib", "requests", "httpx"], default="urllib")
    a = ap.parse_args()

    req_body = {"model": a.model, "max_tokens": 100,
                "messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": a.user}]}
    if a.stream:
        req_body["stream"] = True
        req_body["stream_options"] = {"include_usage": True}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}",
               "User-Agent": "agentwall-test-urllib/1"}
    if a.tag:
        headers["x-standin-tag"] = a.tag
    if a.encoding:
        headers["x-standin-encoding"] = a.encoding
        headers["Accept-Encoding"] = a.encoding
    url = a.base_url.rstrip("/") + "/v1/chat/completions"
    data = json.dumps(req_body).encode()
    if a.lib == "requests":
        import requests
        headers["User-Agent"] = "agentwall-test-requests/1"
        resp = requests.post(url, data=data, headers=headers, verify=a.cafile, timeout=30)
        resp.raise_for_status()
        encoding, raw, text = resp.headers.get("Content-Encoding"), resp.content, resp.text
    elif a.lib == "httpx":
        import httpx
        headers["User-Agent"] = "agentwall-test-httpx/1"
        with httpx.Client(verify=a.cafile, timeout=30) as client:
            resp = client.post(url, content=data, headers=headers)
            resp.raise_for_status()
        encoding, raw, text = resp.headers.get("Content-Encoding"), resp.content, resp.text
    else:
        req = urllib.request.Request(url, data=data, headers=headers, method="POST")
        ctx = ssl.create_default_context(cafile=a.cafile)
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            encoding = resp.headers.get("Content-Encoding")
            raw = resp.read()
        text = decode(raw, encoding).decode("utf-8")

    out = {"sdk": a.lib, "pid": os.getpid(), "model": a.model, "stream": a.stream,
           "system": SYSTEM, "messages": [{"role": "user", "text": a.user}], "tools": [],
           "output_text": "", "tool_calls": [], "usage": None, "response_model": None,
           "finish_reason": None, "content_encoding": encoding, "wire_bytes": len(raw)}
    if a.stream:
        for line in text.splitlines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            out["response_model"] = chunk.get("model")
            if chunk.get("usage"):
                out["usage"] = chunk["usage"]
            for ch in chunk.get("choices", []):
                out["output_text"] += ch.get("delta", {}).get("content") or ""
                out["finish_reason"] = ch.get("finish_reason") or out["finish_reason"]
    else:
        r = json.loads(text)
        msg = r["choices"][0]["message"]
        out["output_text"] = msg.get("content") or ""
        out["tool_calls"] = [{"id": t["id"], "name": t["function"]["name"],
                              "arguments": t["function"]["arguments"]}
                             for t in msg.get("tool_calls") or []]
        out["usage"] = r.get("usage")
        out["response_model"] = r.get("model")
        out["finish_reason"] = r["choices"][0].get("finish_reason")
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
