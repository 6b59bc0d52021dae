"""Shared harness for agentwall's integration tests (stdlib only, Python >= 3.11).

What it provides:
  * TestPKI            -- a throw-away CA + server certificate (CN/SAN localhost, IP 127.0.0.1),
                          generated with the `openssl` CLI into a temp dir.
  * RecordingTlsServer -- a TLS server on 127.0.0.1:<ephemeral> that records, per connection,
                          exactly the plaintext it received and sent. Modes: "http" (HTTP/1.1 with
                          keep-alive, or HTTP/2 when ALPN selects "h2") and "raw" (banner + reply,
                          for `openssl s_client`).
  * Agent              -- context manager around `agentwall sniff|run`: waits for --ready-file,
                          always stops the agent (SIGINT, then SIGKILL), never leaves it running.
  * stream helpers     -- reassemble captured tls.data per pid -> conn -> dir, ordered by offset,
                          failing on holes and overlaps.
  * AgentTestCase      -- unittest base class: requires root and the agent binary, owns the PKI.

The tests only use loopback addresses and only signal processes they started themselves.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

READY_TIMEOUT = 30.0  # agent start-up: probes attached, --ready-file created
# captured output catching up with what the server saw (AW_DATA_TIMEOUT overrides)
DATA_TIMEOUT = float(os.environ.get("AW_DATA_TIMEOUT", "20"))
STOP_TIMEOUT = 15.0  # SIGINT -> exit
CLIENT_TIMEOUT = 60.0  # any client process
CONN_TIMEOUT = 30.0  # a server connection idle this long is abandoned

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KEEP = os.environ.get("AW_KEEP") == "1"  # keep temp dirs (agent output, certs) for debugging


def log(msg: str) -> None:
    if os.environ.get("AW_VERBOSE") == "1":
        sys.stderr.write(f"[aw {time.strftime('%H:%M:%S')}] {msg}\n")
        sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# Temp dirs: removed when their owner is done, and at exit whatever was left (e.g. after
# SIGTERM), unless AW_KEEP=1.
# --------------------------------------------------------------------------------------------

_tempdirs: set[str] = set()


def make_tempdir(prefix: str) -> str:
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.add(d)
    return d


def remove_tempdir(d: str) -> None:
    if KEEP:
        if d in _tempdirs:
            sys.stderr.write(f"[aw] keeping {d}\n")
            _tempdirs.discard(d)
        return
    shutil.rmtree(d, ignore_errors=True)
    _tempdirs.discard(d)


def _remove_all_tempdirs() -> None:
    for d in list(_tempdirs):
        remove_tempdir(d)


atexit.register(_remove_all_tempdirs)


# --------------------------------------------------------------------------------------------
# Environment checks
# --------------------------------------------------------------------------------------------

def agent_bin() -> str:
    path = os.environ.get("AGENTWALL_BIN") or os.path.join(REPO, "build", "agentwall")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(
            f"agentwall binary not found or not executable: {path!r}. Build it "
            f"(cmake -S {REPO} -B {REPO}/build && cmake --build {REPO}/build) or set AGENTWALL_BIN.")
    return path


def require_program(name: str, package: str) -> str:
    """The path of program `name`; a clear failure (never a skip) naming its Debian package."""
    path = shutil.which(name)
    if not path:
        raise AssertionError(f"{name} is not installed: run scripts/install-deps.sh --test "
                             f"(package {package})")
    return path


def build_c(tmp: str, name: str, source: str, *args: str) -> str:
    """Compiles the C `source` with the host's cc into tmp/name (extra compiler and linker
    arguments after the source file) and returns its path; a failure shows the compiler's
    output."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise AssertionError("no C compiler (gcc): run scripts/install-deps.sh")
    src = os.path.join(tmp, name + ".c")
    with open(src, "w") as f:
        f.write(source)
    out = os.path.join(tmp, name)
    res = subprocess.run([cc, "-O1", "-o", out, src, *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise AssertionError(f"building {name} failed:\n{res.stderr}")
    return out


def require_root() -> None:
    if os.geteuid() != 0:
        raise AssertionError(
            "agentwall integration tests must run as root: the agent loads BPF programs and "
            "attaches uprobes (run them with sudo, e.g. `sudo -E ctest -L integration`).")


def client_env(**extra: str) -> dict:
    """The environment for client processes: no proxies, no inherited CA overrides."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k not in (
               "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
               "LD_LIBRARY_PATH", "LD_PRELOAD", "NODE_OPTIONS", "PYTHONPATH")}
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Payloads and comparisons
# --------------------------------------------------------------------------------------------

_PRINTABLE = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
              b" .,:;-_+=/()[]{}<>!?@#$%^&*~")


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def random_text(n: int, newline_every: int = 0) -> bytes:
    raw = os.urandom(n)
    out = bytearray(_PRINTABLE[b % len(_PRINTABLE)] for b in raw)
    if newline_every:
        for i in range(newline_every - 1, n, newline_every):
            out[i] = 0x0A
    return bytes(out)


def describe_mismatch(label: str, got: bytes, want: bytes) -> str:
    """A short, diff-friendly description of why two byte strings differ."""
    got, want = bytes(got), bytes(want)
    if got == want:
        return f"{label}: equal ({len(got)} bytes)"
    first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                 min(len(got), len(want)))
    lo = max(0, first - 16)
    return (f"{label}: captured {len(got)} bytes, expected {len(want)} bytes; first difference "
            f"at offset {first}\n  captured[{lo}:{first + 32}] = {got[lo:first + 32]!r}\n"
            f"  expected[{lo}:{first + 32}] = {want[lo:first + 32]!r}")


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------

class TestPKI:
    """A CA and a server certificate for localhost / 127.0.0.1, valid for two days; issue()
    gives certificates for other host names."""

    _EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def __init__(self) -> None:
        self.dir = make_tempdir("aw-pki-")
        d = self.dir
        self.ca_key, self.ca_cert = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
        self._openssl(["req", "-x509", *self._EC, "-keyout", self.ca_key, "-out", self.ca_cert,
                       "-days", "2", "-subj", "/CN=agentwall integration test CA",
                       "-addext", "basicConstraints=critical,CA:TRUE",
                       "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        self.cert, self.key = self._server_cert("server", "localhost",
                                                "DNS:localhost,IP:127.0.0.1")

    def issue(self, name: str) -> tuple[str, str]:
        """A server certificate for the host name `name` and its key (paths), from the CA."""
        return self._server_cert(name, name, f"DNS:{name}")

    def _server_cert(self, stem: str, common_name: str, alt_names: str) -> tuple[str, str]:
        d = self.dir
        key, cert = os.path.join(d, f"{stem}.key"), os.path.join(d, f"{stem}.crt")
        csr, ext = os.path.join(d, f"{stem}.csr"), os.path.join(d, f"{stem}.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    f"subjectAltName={alt_names}\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid,issuer\n")
        self._openssl(["req", "-new", *self._EC, "-keyout", key, "-out", csr,
                       "-subj", f"/CN={common_name}"])
        self._openssl(["x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                       "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
        return cert, key

    @staticmethod
    def _openssl(args: list[str]) -> None:
        p = subprocess.run(["openssl", *args], capture_output=True, timeout=60,
                           env=client_env())
        if p.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed:\n{p.stderr.decode(errors='replace')}")

    def server_context(self, alpn=None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_cert)

    def cleanup(self) -> None:
        remove_tempdir(self.dir)


# --------------------------------------------------------------------------------------------
# Recording TLS server
# --------------------------------------------------------------------------------------------

class ConnRecord:
    """What one accepted connection carried, in plaintext, as the server saw it."""

    def __init__(self, index: int, client_addr) -> None:
        self.index = index
        self.client_addr = client_addr  # (host, port) of the client side
        self.received = bytearray()
        self.sent = bytearray()
        self.alpn: str | None = None
        self.sni: str | None = None
        self.requests: list[dict] = []  # HTTP requests parsed on this connection
        self.error: str | None = None
        self.done = threading.Event()

    @property
    def client_port(self) -> int:
        return self.client_addr[1]

    def __repr__(self) -> str:
        return (f"<conn #{self.index} from {self.client_addr[0]}:{self.client_addr[1]} "
                f"alpn={self.alpn} rx={len(self.received)} tx={len(self.sent)} "
                f"requests={len(self.requests)} error={self.error}>")


class _Eof(Exception):
    pass


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_SETTINGS, H2_PING, H2_GOAWAY, H2_CONTINUATION = 0x0, 0x1, 0x4, 0x6, 0x7, 0x9
H2_END_STREAM, H2_ACK, H2_END_HEADERS, H2_PADDED, H2_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20


def h2_frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7FFFFFFF) + payload


class RecordingTlsServer:
    """TLS server on 127.0.0.1 recording the exact plaintext of each connection.

    mode="http": HTTP/1.1 (Content-Length or chunked bodies, Expect: 100-continue, keep-alive:
        any number of requests per connection), or HTTP/2 when ALPN negotiates "h2" (minimal
        raw-frame server, enough for curl GET/POST). The connection is read until the client
        closes it (EOF), so `received` is everything the client wrote.
    mode="raw": sends `banner` on connect, reads until the received bytes end with `end_marker`,
        sends `raw_reply`, then closes with close_notify (for `openssl s_client -quiet`, which
        only exits when the server closes).

    response_body: bytes, a callable(request_dict) -> bytes, or None for random bytes (2-6 KiB)
        per response. handshake_delay: seconds to wait after accept before the TLS handshake
        (gives the agent time to attach to libraries loaded by a process started late).
    """

    def __init__(self, pki: TestPKI, mode: str = "http", response_body=None,
                 alpn=("h2", "http/1.1"), handshake_delay: float = 0.0,
                 banner: bytes | None = None, raw_reply: bytes | None = None,
                 end_marker: bytes = b"\nEND\n") -> None:
        assert mode in ("http", "raw")
        self.mode = mode
        self.response_body = response_body
        self.handshake_delay = handshake_delay
        self.banner = banner if banner is not None else b"HELLO " + random_text(40) + b"\n"
        self.raw_reply = raw_reply if raw_reply is not None else b"REPLY " + random_text(300) + b"\n"
        self.end_marker = end_marker
        self.ctx = pki.server_context(alpn if mode == "http" else None)
        self.ctx.sni_callback = self._sni_cb
        self._lsock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[ConnRecord] = []
        self._lock = threading.Lock()
        self._stopping = False
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "RecordingTlsServer":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(256)
        self._lsock = s
        self.port = s.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="aw-accept", daemon=True)
        t.start()
        self._threads.append(t)
        log(f"server listening on 127.0.0.1:{self.port} mode={self.mode}")
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._lsock is not None:
            try:
                self._lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._lsock.close()
        for t in list(self._threads):
            t.join(timeout=5)

    def __enter__(self) -> "RecordingTlsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- queries ----------------------------------------------------------------------------
    def connections(self) -> list[ConnRecord]:
        with self._lock:
            return list(self._conns)

    def wait_connections(self, n: int, timeout: float = DATA_TIMEOUT) -> list[ConnRecord]:
        """Waits until at least n connections were accepted and all of them are finished."""
        deadline = time.monotonic() + timeout
        while True:
            conns = self.connections()
            if len(conns) >= n and all(c.done.is_set() for c in conns):
                return conns
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"server: expected {n} finished connection(s) within {timeout}s, have "
                    f"{conns!r}")
            time.sleep(0.05)

    # -- internals --------------------------------------------------------------------------
    def _sni_cb(self, sslobj, name, ctx):
        conn = getattr(sslobj, "_aw_conn", None)
        if conn is not None:
            conn.sni = name
        return None

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                raw, addr = self._lsock.accept()
            except OSError:
                return
            with self._lock:
                conn = ConnRecord(len(self._conns), addr)
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(raw, conn), daemon=True,
                                 name=f"aw-conn-{conn.index}")
            t.start()
            self._threads.append(t)

    def _serve(self, raw: socket.socket, conn: ConnRecord) -> None:
        sock = None
        try:
            raw.settimeout(CONN_TIMEOUT)
            if self.handshake_delay:
                time.sleep(self.handshake_delay)
            sock = self.ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            sock._aw_conn = conn  # type: ignore[attr-defined]  (read by _sni_cb)
            sock.do_handshake()
            conn.alpn = sock.selected_alpn_protocol()
            if self.mode == "raw":
                self._serve_raw(sock, conn)
            elif conn.alpn == "h2":
                self._serve_h2(sock, conn)
            else:
                self._serve_http1(sock, conn)
        except _Eof:
            pass
        except Exception as e:  # recorded; the test decides whether it matters
            conn.error = f"{type(e).__name__}: {e}"
            log(f"server conn #{conn.index}: {conn.error}")
        finally:
            try:
                (sock or raw).close()
            except OSError:
                pass
            conn.done.set()

    # recording primitives: every plaintext byte goes through these two
    def _recv(self, sock, conn: ConnRecord) -> bytes:
        try:
            data = sock.recv(65536)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
            data = b""
        except ssl.SSLError as e:
            if "UNEXPECTED_EOF" in str(e) or "unexpected eof" in str(e):
                data = b""
            else:
                raise
        if not data:
            raise _Eof()
        conn.received += data
        return data

    def _send(self, sock, conn: ConnRecord, data: bytes) -> None:
        sock.sendall(data)
        conn.sent += data

    def _body_for(self, request: dict) -> bytes:
        rb = self.response_body
        if rb is None:
            return random_bytes(2048 + int.from_bytes(os.urandom(2), "big") % 4096)
        if callable(rb):
            return rb(request)
        return rb

    # HTTP/1.1 ---------------------------------------------------------------------------------
    def _serve_http1(self, sock, conn: ConnRecord) -> None:
        buf = bytearray()

        def fill(n_or_marker):
            while True:
                if isinstance(n_or_marker, int):
                    if len(buf) >= n_or_marker:
                        return
                elif buf.find(n_or_marker) >= 0:
                    return
                buf.extend(self._recv(sock, conn))

        def take(n):
            fill(n)
            out = bytes(buf[:n])
            del buf[:n]
            return out

        def take_line():
            fill(b"\r\n")
            i = buf.find(b"\r\n")
            return take(i + 2)[:-2]

        while True:
            fill(b"\r\n\r\n")
            end = buf.find(b"\r\n\r\n")
            head = take(end + 4).decode("latin-1")
            lines = head.split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
            if headers.get("expect", "").lower() == "100-continue":
                self._send(sock, conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = bytearray()
                while True:
                    size = int(take_line().split(b";")[0], 16)
                    if size == 0:
                        while take_line():  # trailers
                            pass
                        break
                    body += take(size)
                    take(2)
                body = bytes(body)
            else:
                body = take(int(headers.get("content-length", "0")))
            request = {"method": method, "target": target, "version": version,
                       "headers": headers, "body": body}
            conn.requests.append(request)
            payload = self._body_for(request)
            close = headers.get("connection", "").lower() == "close"
            resp = (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
                    ).encode("latin-1") + payload
            request["response"] = resp
            self._send(sock, conn, resp)
            # Keep reading until the client closes: clients close after a `Connection: close`
            # response, and keep-alive clients may send more requests.

    # HTTP/2 -----------------------------------------------------------------------------------
    def _serve_h2(self, sock, conn: ConnRecord) -> None:
        buf = bytearray()

        def take(n):
            while len(buf) < n:
                buf.extend(self._recv(sock, conn))
            out = bytes(buf[:n])
            del buf[:n]
            return out

        if take(len(H2_PREFACE)) != H2_PREFACE:
            raise RuntimeError("h2: bad client preface")
        self._send(sock, conn, h2_frame(H2_SETTINGS, 0, 0))
        streams: dict[int, dict] = {}
        while True:
            hdr = take(9)
            length = int.from_bytes(hdr[:3], "big")
            ftype, flags = hdr[3], hdr[4]
            sid = int.from_bytes(hdr[5:9], "big") & 0x7FFFFFFF
            payload = take(length)
            if ftype == H2_SETTINGS and not flags & H2_ACK:
                self._send(sock, conn, h2_frame(H2_SETTINGS, H2_ACK, 0))
            elif ftype == H2_PING and not flags & H2_ACK:
                self._send(sock, conn, h2_frame(H2_PING, H2_ACK, 0, payload))
            elif ftype in (H2_HEADERS, H2_DATA):
                st = streams.setdefault(sid, {"stream": sid, "header_block": b"", "body": b"",
                                              "answered": False})
                data = payload
                if flags & H2_PADDED:
                    pad = data[0]
                    data = data[1:len(data) - pad]
                if ftype == H2_HEADERS:
                    if flags & H2_PRIORITY:
                        data = data[5:]
                    st["header_block"] += data
                else:
                    st["body"] += data
                if flags & H2_END_STREAM and not st["answered"]:
                    st["answered"] = True
                    request = {"method": "h2", "stream": sid, "body": st["body"],
                               "header_block": st["header_block"]}
                    conn.requests.append(request)
                    body = self._body_for(request)
                    out = h2_frame(H2_HEADERS, H2_END_HEADERS, sid, b"\x88")  # :status: 200
                    chunks = [body[i:i + 16384] for i in range(0, len(body), 16384)] or [b""]
                    for i, ch in enumerate(chunks):
                        out += h2_frame(H2_DATA, H2_END_STREAM if i == len(chunks) - 1 else 0,
                                        sid, ch)
                    request["response"] = out
                    self._send(sock, conn, out)
            elif ftype == H2_CONTINUATION:
                if sid in streams:
                    streams[sid]["header_block"] += payload
            # GOAWAY, WINDOW_UPDATE, PRIORITY, RST_STREAM: nothing to answer; read on to EOF.

    # raw ----------------------------------------------------------------------------------------
    def _serve_raw(self, sock, conn: ConnRecord) -> None:
        if self.banner:
            self._send(sock, conn, self.banner)
        while not bytes(conn.received).endswith(self.end_marker):
            self._recv(sock, conn)
        conn.requests.append({"method": "raw", "body": bytes(conn.received)})
        self._send(sock, conn, self.raw_reply)
        # close_notify, then wait (bounded) for the client's: the client exits on ours.
        sock.settimeout(5)
        try:
            sock.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass


# --------------------------------------------------------------------------------------------
# Captured output: parsing and reassembly
# --------------------------------------------------------------------------------------------

class StreamError(AssertionError):
    pass


class JsonlReader:
    """Incremental reader of a JSON-lines file that the agent is still appending to.

    Only complete lines are consumed; each poll() reads what was appended since the last one.
    To stay cheap when other processes on the host produce lots of TLS traffic, lines are
    JSON-parsed and kept only for *watched* pids (plus lines without a pid, e.g. agent.health);
    every other line is just counted per pid. With keep_all=True everything is kept.
    Watching a new pid rescans the file from the start, so nothing is missed.
    """

    _PID = re.compile(rb'"pid"\s*:\s*(\d+)')
    _TYPE = re.compile(rb'"type"\s*:\s*"([^"]*)"')

    def __init__(self, path: str, keep_all: bool = False) -> None:
        self.path = path
        self.keep_all = keep_all
        self.watched: set[int] = set()
        self._reset()

    def _reset(self) -> None:
        self.offset = 0
        self._partial = b""
        self.records: list[dict] = []
        self.bad: list[str] = []
        self.lines_per_pid: dict[int, int] = {}
        self.types: dict[str, int] = {}

    def watch(self, pid: int) -> None:
        if pid not in self.watched:
            self.watched.add(pid)
            if not self.keep_all and self.offset:
                self._reset()

    def poll(self) -> list[dict]:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return self.records
        with f:
            f.seek(self.offset)
            while True:
                block = f.read(4 << 20)
                if not block:
                    break
                self.offset += len(block)
                lines = (self._partial + block).split(b"\n")
                self._partial = lines.pop()
                for line in lines:
                    self._line(line)
        return self.records

    def _line(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return
        m = self._PID.search(line)
        pid = int(m.group(1)) if m else None
        t = self._TYPE.search(line)
        typ = t.group(1).decode(errors="replace") if t else "?"
        self.types[typ] = self.types.get(typ, 0) + 1
        if pid is not None:
            self.lines_per_pid[pid] = self.lines_per_pid.get(pid, 0) + 1
            if not self.keep_all and pid not in self.watched:
                return
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            self.records.append(obj)
        else:
            self.bad.append(line.decode("utf-8", errors="replace"))

    def describe(self) -> str:
        top = sorted(self.lines_per_pid.items(), key=lambda kv: -kv[1])[:6]
        return (f"{self.path}: {self.offset} bytes read, line types {self.types}, lines per pid "
                f"(top): {dict(top)}")


def tls_data(records, pid: int | None = None) -> list[dict]:
    return [r for r in records if r.get("type") == "tls.data" and (pid is None or r.get("pid") == pid)]


def gaps(records, pid: int | None = None) -> list[dict]:
    return [r for r in records if r.get("type") == "tls.gap" and (pid is None or r.get("pid") == pid)]


def closes(records, pid: int | None = None) -> list[dict]:
    return [r for r in records if r.get("type") == "tls.close" and (pid is None or r.get("pid") == pid)]


def chunk_bytes(rec: dict) -> bytes:
    data = base64.b64decode(rec.get("data_b64", ""), validate=True)
    if len(data) != rec.get("len"):
        raise StreamError(f"chunk len field {rec.get('len')} != decoded data_b64 length "
                          f"{len(data)}: {summarize(rec)}")
    return data


def summarize(rec: dict) -> str:
    r = {k: v for k, v in rec.items() if k != "data_b64"}
    return json.dumps(r, sort_keys=True)


def by_conn(records, pid: int) -> dict[int, dict[str, list[dict]]]:
    """pid -> {conn: {"out": [chunks], "in": [chunks]}} for tls.data records."""
    out: dict[int, dict[str, list[dict]]] = {}
    for r in tls_data(records, pid):
        out.setdefault(r["conn"], {"out": [], "in": []})[r["dir"]].append(r)
    return out


def reassemble(chunks: list[dict], label: str = "stream") -> bytes:
    """Concatenates chunks ordered by offset; the stream must start at 0 with no hole/overlap."""
    data = bytearray()
    for r in sorted(chunks, key=lambda r: (r["offset"], r.get("call_off", 0))):
        if r["offset"] != len(data):
            kind = "hole" if r["offset"] > len(data) else "overlap"
            raise StreamError(f"{label}: {kind} at offset {len(data)}: next chunk starts at "
                              f"{r['offset']}: {summarize(r)}")
        data += chunk_bytes(r)
    return bytes(data)


def streams_for(records, pid: int) -> dict[int, dict[str, bytes]]:
    """pid -> {conn: {"out": bytes, "in": bytes}}, each direction reassembled strictly."""
    res = {}
    for conn, dirs in by_conn(records, pid).items():
        res[conn] = {d: reassemble(dirs[d], f"pid {pid} conn {conn} dir {d}") for d in ("out", "in")}
    return res


def capture_summary(records, pid: int | None = None) -> str:
    """A few lines on what the output holds: per type, per dir for pid, gaps, truncation."""
    types: dict = {}
    for r in records:
        types[r.get("type")] = types.get(r.get("type"), 0) + 1
    lines = [f"agent output: {len(records)} records {types}; tls.data pids: "
             f"{sorted({r.get('pid') for r in tls_data(records)})}"]
    if pid is not None:
        for d in ("out", "in"):
            ch = [r for r in tls_data(records, pid) if r.get("dir") == d]
            lines.append(f"pid {pid} {d}: {len(ch)} chunks, {sum(r.get('len', 0) for r in ch)} "
                         f"bytes, conns {sorted({r.get('conn') for r in ch})}, truncated "
                         f"{sum(1 for r in ch if r.get('truncated'))}, calls (func, call_len): "
                         f"{sorted({(r.get('func'), r.get('call_len')) for r in ch})[:8]}")
        g = gaps(records, pid)
        lines.append(f"pid {pid} tls.gap: {len(g)} " + "; ".join(summarize(x) for x in g[:5]))
        lines.append(f"pid {pid} tls.close: " + "; ".join(summarize(x) for x in closes(records, pid)[:5]))
    return "\n".join(lines)


def captured_len(records, pid: int, direction: str) -> int:
    return sum(r.get("len", 0) for r in tls_data(records, pid) if r.get("dir") == direction)


# --------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------

_live_agents: set = set()


def _kill_live_agents() -> None:
    for a in list(_live_agents):
        a.stop(quiet=True)


atexit.register(_kill_live_agents)


def _on_sigterm(signum, frame):
    # Turn SIGTERM (ctest timeout, CI cancel) into KeyboardInterrupt so every `finally`
    # and context manager runs and the agent is stopped.
    raise KeyboardInterrupt(f"signal {signum}")


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_sigterm)


class Agent:
    """Runs `agentwall sniff` (or `run`) for the duration of a `with` block.

    sniff: `$AGENTWALL_BIN sniff --ready-file R --output F [args]`
    run:   `$AGENTWALL_BIN run --ready-file R --record REC --events EV --control SOCK [args]`

    The agent gets PR_SET_PDEATHSIG=SIGINT (via setpriv) so it stops even if this test process
    is SIGKILLed; on normal exit it gets SIGINT, then SIGKILL after STOP_TIMEOUT.
    Leaving the block stops the agent and snapshots the final output (`records()`), then removes
    the temp dir (unless AW_KEEP=1). If the block succeeded, an unclean agent exit (non-zero
    status, had to be killed, unparseable output lines) fails the test.
    """

    last: "Agent | None" = None  # the most recent agent, for failure diagnostics

    def __init__(self, args=(), command: str = "sniff") -> None:
        Agent.last = self
        self.bin = agent_bin()
        self.command = command
        self.args = list(args)
        self.dir = make_tempdir("aw-agent-")
        self.ready_file = os.path.join(self.dir, "ready")
        self.output_file = os.path.join(self.dir, "output.jsonl")
        self.record_file = os.path.join(self.dir, "record.bin")
        self.events_file = os.path.join(self.dir, "events.jsonl")
        self.stdout_file = os.path.join(self.dir, "stdout.log")
        self.stderr_file = os.path.join(self.dir, "stderr.log")
        # run: its own control socket, so that tests never meet an installed agent's; a test
        # that passes --control itself keeps its own.
        self.control_socket = os.path.join(self.dir, "control.sock")
        if "--control" in self.args:
            self.control_socket = self.args[self.args.index("--control") + 1]
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.killed = False
        self.bad_lines: list[str] = []
        self._stopped_reading = False
        self._final_stderr = ""
        self.record_copy: str | None = None  # set by keep_record()
        self.expected_returncode = 0  # a test that kill -9s the agent sets -9
        # sniff: --output FILE; run: the --events FILE (agent.health lines and the like).
        self.output = JsonlReader(self.output_file if command == "sniff" else self.events_file,
                                  keep_all=(command != "sniff"))
        self.event_reader = JsonlReader(self.events_file, keep_all=True)

    def argv(self) -> list[str]:
        if self.command == "sniff":
            return [self.bin, "sniff", "--ready-file", self.ready_file,
                    "--output", self.output_file, *self.args]
        if self.command == "run":
            control = [] if "--control" in self.args else ["--control", self.control_socket]
            return [self.bin, "run", "--no-config", "--record", self.record_file, "--ready-file",
                    self.ready_file, "--events", self.events_file, *control, *self.args]
        raise ValueError(self.command)

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "Agent":
        try:
            self.start()
        except BaseException:
            self.stop(quiet=True)
            self._cleanup()
            raise
        return self

    def start(self) -> None:
        argv = self.argv()
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "INT", "--", *argv]
        log("starting agent: " + " ".join(argv))
        with open(self.stdout_file, "wb") as out, open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=self.dir)
        _live_agents.add(self)
        t0 = time.monotonic()
        while not os.path.exists(self.ready_file):
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                _live_agents.discard(self)
                raise AssertionError(
                    f"agent exited with status {rc} before creating the ready file "
                    f"{self.ready_file}\ncommand: {' '.join(argv)}\n{self.stderr_tail()}")
            if time.monotonic() - t0 > READY_TIMEOUT:
                raise AssertionError(
                    f"agent did not create the ready file within {READY_TIMEOUT}s\n"
                    f"command: {' '.join(argv)}\n{self.stderr_tail()}")
            time.sleep(0.05)
        log(f"agent ready after {time.monotonic() - t0:.2f}s (pid {self.proc.pid})")

    def stop(self, quiet: bool = False) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.killed = True
                p.kill()
                p.wait(timeout=30)
        self.returncode = p.returncode
        _live_agents.discard(self)
        log(f"agent stopped: status {self.returncode} killed={self.killed}")

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.stop()
            self.output.poll()  # the rest of what the agent wrote before exiting
            self.event_reader.poll()
            self._stopped_reading = True
            self.bad_lines = list(self.output.bad)
            self._final_stderr = self._read_stderr()
        finally:
            if exc_type is not None or self.killed or self.returncode != self.expected_returncode:
                sys.stderr.write(f"\n--- agent ({' '.join(self.argv()[1:3])}) stderr tail ---\n"
                                 f"{self.stderr_tail()}\n")
            self._cleanup()
        if exc_type is None:
            problems = []
            if self.killed:
                problems.append(f"did not exit within {STOP_TIMEOUT}s of SIGINT (killed)")
            elif self.returncode != self.expected_returncode:
                problems.append(f"exited with status {self.returncode} after SIGINT "
                                f"(expected {self.expected_returncode})")
            if self.output._partial.strip():
                problems.append(f"output ends with an unterminated line: "
                                f"{self.output._partial[-200:]!r}")
            if self.bad_lines:
                problems.append(f"{len(self.bad_lines)} unparseable output line(s), first: "
                                f"{self.bad_lines[0][:300]!r}")
            if problems:
                raise AssertionError("agent: " + "; ".join(problems) + "\n" +
                                     self.stderr_tail())

    def keep_record(self, dest_dir: str) -> str:
        """Copies the --record file to dest_dir (call inside the block, after stop())."""
        dst = os.path.join(dest_dir, "record.bin")
        shutil.copyfile(self.record_file, dst)
        self.record_copy = dst
        return dst

    def _cleanup(self) -> None:
        remove_tempdir(self.dir)

    # -- output -----------------------------------------------------------------------------
    def _read_text(self, path: str) -> str:
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _read_stderr(self) -> str:
        return self._read_text(self.stderr_file)

    def watch(self, pid: int) -> None:
        """Keep (parse) the output records of pid; see JsonlReader."""
        if self._stopped_reading and pid not in self.output.watched:
            raise AssertionError(f"watch({pid}) after the agent's output dir was removed")
        self.output.watch(pid)

    def records(self) -> list[dict]:
        """Records so far of the watched pids (all records for `run`'s events), live while
        running; after the block, the final snapshot."""
        if self._stopped_reading:
            return self.output.records
        return self.output.poll()

    def events(self) -> list[dict]:
        if self._stopped_reading:
            return self.event_reader.records
        return self.event_reader.poll()

    def stderr_text(self) -> str:
        """The agent's log so far (all of it)."""
        return self._final_stderr or self._read_stderr()

    def stderr_tail(self, n: int = 40) -> str:
        text = self._final_stderr or self._read_stderr()
        lines = text.splitlines()[-n:]
        return "agent stderr (last %d lines):\n%s" % (len(lines), "\n".join(lines) or "<empty>")

    def wait_for(self, predicate, timeout: float = DATA_TIMEOUT, what: str = "condition") -> bool:
        """Polls the output until predicate(records) is true. Returns False on timeout (the
        caller's exact assertions then explain what is missing)."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records()
            if predicate(recs):
                return True
            if self.proc is not None and self.proc.poll() is not None and not self._stopped_reading:
                raise AssertionError(f"agent died while waiting for {what}: status "
                                     f"{self.proc.returncode}\n{self.stderr_tail()}")
            if time.monotonic() > deadline:
                log(f"timeout waiting for {what}")
                return False
            time.sleep(0.1)

    def wait_for_bytes(self, pid: int, direction: str, n: int,
                       timeout: float = DATA_TIMEOUT) -> bool:
        """Waits until the output holds >= n captured bytes for pid in direction."""
        self.watch(pid)
        return self.wait_for(lambda recs: captured_len(recs, pid, direction) >= n, timeout,
                             f"{n} captured {direction} bytes of pid {pid}")


def replay(record_file: str, pids, timeout: float = 120.0) -> list[dict]:
    """Runs `agentwall replay FILE`; returns the records of `pids` (stdout goes to a file and is
    read like the sniff output, so other processes' traffic in the recording costs little)."""
    out = record_file + ".replay.jsonl"
    err = record_file + ".replay.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.run([agent_bin(), "replay", "--tls", record_file], stdout=fo, stderr=fe,
                           stdin=subprocess.DEVNULL, timeout=timeout)
    with open(err, "rb") as f:
        err_text = f.read().decode(errors="replace")
    if p.returncode != 0:
        raise AssertionError(f"agentwall replay {record_file} exited with {p.returncode}:\n"
                             f"{err_text[-4000:]}")
    reader = JsonlReader(out)
    for pid in pids:
        reader.watch(pid)
    recs = reader.poll()
    if reader.bad:
        raise AssertionError(f"agentwall replay printed {len(reader.bad)} non-JSON line(s), "
                             f"first: {reader.bad[0][:300]!r}")
    if reader._partial.strip():
        raise AssertionError(f"agentwall replay output ends without a newline: "
                             f"{reader._partial[-200:]!r}")
    log("replay: " + reader.describe())
    return recs


# --------------------------------------------------------------------------------------------
# Libraries
# --------------------------------------------------------------------------------------------

def mapped_files(pid="self", name_prefix: str = "libssl") -> list[str]:
    """Paths of files mapped by pid whose base name starts with name_prefix."""
    out = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and os.path.basename(parts[5].strip()).startswith(name_prefix):
                out.add(parts[5].strip())
    return sorted(out)


def system_openssl_libs() -> tuple[str, str]:
    """(libssl, libcrypto) real paths, as loaded by this process's ssl module."""
    import _ssl  # noqa: F401  (maps libssl/libcrypto into this process)
    ssl_libs = [p for p in mapped_files("self", "libssl.so") if os.path.exists(p)]
    crypto_libs = [p for p in mapped_files("self", "libcrypto.so") if os.path.exists(p)]
    if len(ssl_libs) != 1 or len(crypto_libs) != 1:
        raise AssertionError(f"cannot tell which libssl/libcrypto Python uses: {ssl_libs} "
                             f"{crypto_libs}")
    return os.path.realpath(ssl_libs[0]), os.path.realpath(crypto_libs[0])


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

class ClientResult:
    def __init__(self, argv, pid, returncode, stdout: bytes, stderr: bytes) -> None:
        self.argv, self.pid, self.returncode = argv, pid, returncode
        self.stdout, self.stderr = stdout, stderr

    def describe(self) -> str:
        return (f"command: {' '.join(map(str, self.argv))}\nstatus: {self.returncode}\n"
                f"stdout: {self.stdout[-2000:]!r}\nstderr: {self.stderr[-2000:].decode(errors='replace')}")


def run_client(argv, env=None, input: bytes | None = None, timeout: float = CLIENT_TIMEOUT,
               check: bool = True, cwd: str | None = None) -> ClientResult:
    """Runs a client to completion (in `cwd`, if given); returns its pid (the one the agent
    reports) and output."""
    log("client: " + " ".join(str(a) if len(str(a)) < 80 else repr(str(a)[:60]) + "..." for a in argv))
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env if env is not None else client_env(), cwd=cwd)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"client timed out after {timeout}s: "
                             f"{ClientResult(argv, p.pid, None, out, err).describe()}")
    res = ClientResult(argv, p.pid, p.returncode, out, err)
    if check and p.returncode != 0:
        raise AssertionError("client failed:\n" + res.describe())
    return res


# Python source for a client child: reads one HTTP/1.1 response with a Content-Length from
# the TLS socket `s` into `rest`, then closes `s`.
PY_READ_HTTP_RESPONSE = r"""
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
h, _, rest = buf.partition(b"\r\n\r\n")
n = int([l.split(b":")[1] for l in h.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
while len(rest) < n:
    rest += s.recv(65536)
s.close()
"""


def curl_argv(pki: TestPKI, port: int, *args: str, host: str = "localhost") -> list[str]:
    return ["curl", "-sS", "--noproxy", "*", "--cacert", pki.ca_cert,
            "--resolve", f"{host}:{port}:127.0.0.1", *args]


# --------------------------------------------------------------------------------------------
# unittest base class
# --------------------------------------------------------------------------------------------

class AgentTestCase(unittest.TestCase):
    """Base class: root and the agent binary are required (a clear failure, never a skip)."""

    maxDiff = 2000
    pki: TestPKI

    @classmethod
    def setUpClass(cls) -> None:
        require_root()
        agent_bin()
        cls.pki = TestPKI()

    @classmethod
    def tearDownClass(cls) -> None:
        pki = getattr(cls, "pki", None)
        if pki is not None:
            pki.cleanup()

    def setUp(self) -> None:
        self.tmp = make_tempdir("aw-test-")

    def tearDown(self) -> None:
        remove_tempdir(self.tmp)

    # -- assertions ---------------------------------------------------------------------------
    def assertBytesEqual(self, got: bytes, want: bytes, label: str, pid: int | None = None
                         ) -> None:
        if bytes(got) != bytes(want):
            self.fail(describe_mismatch(label, got, want) + self.diagnostics(pid))

    def diagnostics(self, pid: int | None) -> str:
        """What the last agent captured (for pid) and its stderr, for failure messages."""
        agent = Agent.last
        if agent is None:
            return ""
        return ("\n" + capture_summary(agent.records(), pid) + "\n" + agent.output.describe() +
                "\n" + agent.stderr_tail(15))

    def client_streams(self, records, pid: int, *, expect_conns: int | None = None
                       ) -> dict[int, dict[str, bytes]]:
        """Reassembled streams of pid; fails with a summary if there is nothing or holes."""
        try:
            res = streams_for(records, pid)
        except StreamError as e:
            self.fail(str(e) + self.diagnostics(pid))
        if not res:
            self.fail(f"no tls.data captured for pid {pid}" + self.diagnostics(pid))
        if expect_conns is not None and len(res) != expect_conns:
            self.fail(f"pid {pid}: expected {expect_conns} connection id(s), captured "
                      f"{len(res)}: " + ", ".join(
                          f"conn {c}: out {len(s['out'])} B, in {len(s['in'])} B"
                          for c, s in res.items()))
        return res

    def raw_exchange(self, argv_for_port, data: bytes, agent_args=(), before_client=None):
        """One client connection to a RecordingTlsServer in raw mode, under a sniffing agent:
        runs argv_for_port(port) with `data` on stdin and waits until the agent captured all
        that the server received and sent. before_client(agent), if given, runs first.
        Returns (client result, server connection record, agent records, server port)."""
        with RecordingTlsServer(self.pki, mode="raw") as srv:
            with Agent(agent_args) as agent:
                if before_client is not None:
                    before_client(agent)
                res = run_client(argv_for_port(srv.port), input=data)
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()
        self.assertIsNone(conn.error)
        return res, conn, recs, srv.port

    def assert_tls_chunks(self, records, pid: int, port: int, funcs: set, sni: str | None = None):
        """Every tls.data chunk of pid has its fd and the peer 127.0.0.1:port (and `sni` when
        given), and the functions that moved them are exactly `funcs`."""
        seen = set()
        for r in tls_data(records, pid):
            seen.add(r.get("func"))
            self.assertGreaterEqual(r.get("fd", -1), 0, summarize(r))
            self.assertEqual(r.get("peer"), f"127.0.0.1:{port}", summarize(r))
            if sni is not None:
                self.assertEqual(r.get("sni"), sni, summarize(r))
        self.assertEqual(seen, funcs)

    def assert_exact_single_conn(self, records, pid: int, conn, label: str):
        """pid made exactly one connection, its captured bytes equal what the server received
        and sent, and nothing is missing or cut. Returns (conn id, streams of that conn)."""
        streams = self.client_streams(records, pid, expect_conns=1)
        (cid, s), = streams.items()
        self.assertBytesEqual(s["out"], conn.received, f"{label} pid {pid} out (conn {cid})", pid=pid)
        self.assertBytesEqual(s["in"], conn.sent, f"{label} pid {pid} in (conn {cid})", pid=pid)
        self.assert_no_gaps(records, pid)
        return cid, s

    def assert_no_gaps(self, records, pid: int) -> None:
        g = gaps(records, pid)
        self.assertEqual(g, [], f"unexpected tls.gap records for pid {pid}")
        trunc = [summarize(r) for r in tls_data(records, pid) if r.get("truncated")]
        self.assertEqual(trunc, [], f"unexpected truncated chunks for pid {pid}")

    def run_main(self) -> None:  # pragma: no cover
        unittest.main()


def main() -> None:
    """unittest.main() with a non-zero exit status on failure (the default behaviour)."""
    unittest.main(verbosity=2)
