"""Test-side receivers for agentwall's SIEM sinks (stdlib only, Python >= 3.11).

What it provides:
  * Rsyslog          -- a private rsyslogd (Debian's /usr/sbin/rsyslogd, never the system
                        instance) with a plain imtcp listener, an RFC 5425 TLS imtcp listener
                        and an imudp listener on free 127.0.0.1 ports; every received message is
                        kept exactly as it arrived (rsyslog's `rawmsg`), one file per listener.
  * parse_rfc5424    -- a strict RFC 5424 parser (ValueError with the reason on any deviation),
                        plus build_rfc5424 / octet_frame to produce messages in tests.
  * HttpReceiver     -- a threaded HTTP/1.1 server (optionally TLS) that records every request
                        and answers like Splunk HEC, Elasticsearch _bulk and OTLP/HTTP do;
                        failure injection (fail_with = 503) and stop()/start() on the same port.
  * check_hec_body, check_bulk_body, check_otlp_logs, check_otlp_traces, otlp_attrs
                     -- body validators raising AssertionError with the reason.
  * TcpSyslogCounter -- a pure-Python TCP syslog sink for benchmarks: octet-counted and
                        LF-terminated frames, counts messages and bytes, Events at N messages.

Certificates come from aw.TestPKI (a throw-away CA + server cert for localhost/127.0.0.1); a
client certificate signed by the same CA is added with make_client_cert(). Every process this
module starts gets PR_SET_PDEATHSIG (via setpriv) and is stopped at exit; temp dirs are removed
(unless AW_KEEP=1). Only loopback addresses are used.

rsyslog quirks (8.2302; receivers_selftest.py checks all but the GnuTLS log lines):
  * rawmsg of an octet-counted frame is exactly the MSG part of "LEN SP MSG": the count and its
    space are not in it; LFs inside the frame and a trailing LF are kept (with
    parser.dropTrailingLFOnReception="off", set here). For LF-framed TCP the LF is the
    delimiter and is not in rawmsg. A UDP datagram is kept whole, trailing LF included.
  * NUL bytes are always replaced by the four characters "#000", whatever the escape settings,
    and a message that had a NUL also loses its trailing LF.
  * Other control characters are kept only because this config turns
    parser.escapeControlCharactersOnReceive off (rsyslog's default is to write "#011" etc.).
  * A frame longer than maxMessageSize (constructor: max_message_size, 256 KiB by default) is
    cut at maxMessageSize and the REST ARRIVES AS ONE MORE MESSAGE (or several; one byte at
    each cut is lost), with an "oversize message ... truncating" line in internal_log(). A frame longer than imtcp's
    maxFrameSize (set here to max(200000, max_message_size + 64)) makes imtcp give up octet
    counting on that connection ("Framing Error ... change to octet stuffing"): the count
    digits then show up inside a message.
  * The gtls driver logs "unexpected GnuTLS error -110" when a client closes without
    close_notify (the message still arrives), and in x509/certvalid mode answers a client's
    close_notify by closing the TCP connection without its own (SSLEOFError in unwrap()).
  * The files hold one JSON object per line ({"raw": ...}, rsyslog's json escaping); bytes that
    are not UTF-8 are passed through unescaped, so they are read back with surrogateescape.
"""

from __future__ import annotations

import atexit
import base64
import datetime as _dt
import gzip
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass

import aw

START_TIMEOUT = 20.0  # rsyslogd: listeners bound
STOP_TIMEOUT = 10.0  # SIGTERM -> exit
WAIT_TIMEOUT = float(os.environ.get("AW_DATA_TIMEOUT", "20"))  # messages/requests to show up
RSYSLOGD = os.environ.get("AW_RSYSLOGD", "/usr/sbin/rsyslogd")
RSYSLOG_MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog",
                       "/usr/lib/rsyslog")
LISTENERS = ("tcp", "tls", "udp")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def free_ports(n: int, kind: int = socket.SOCK_STREAM) -> list[int]:
    """n distinct ports that are free on 127.0.0.1 right now (all held open while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _proc_net_ports(kind: str) -> dict[int, set[str]]:
    """Local ports on 127.0.0.1 / 0.0.0.0 in /proc/net/{tcp,udp} -> the states (hex) of the
    sockets on them (a port has several entries: the listener, accepted ones, TIME_WAIT)."""
    out: dict[int, set[str]] = {}
    try:
        with open(f"/proc/net/{kind}") as f:
            next(f)
            for line in f:
                parts = line.split()
                addr, port = parts[1].split(":")
                if addr in ("0100007F", "00000000"):
                    out.setdefault(int(port, 16), set()).add(parts[3])
    except FileNotFoundError:
        pass
    return out


def tcp_listening(port: int) -> bool:
    return "0A" in _proc_net_ports("tcp").get(port, ())  # TCP_LISTEN


def udp_bound(port: int) -> bool:
    return port in _proc_net_ports("udp")


def make_client_cert(pki: aw.TestPKI, directory: str, cn: str = "agentwall test client"
                     ) -> tuple[str, str]:
    """A client certificate (extendedKeyUsage clientAuth) signed by pki's CA: (cert, key)."""
    key, cert = os.path.join(directory, "client.key"), os.path.join(directory, "client.crt")
    csr, ext = os.path.join(directory, "client.csr"), os.path.join(directory, "client.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=clientAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n")
    aw.TestPKI._openssl(["req", "-new", "-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                         "-subj", f"/CN={cn}"])
    aw.TestPKI._openssl(["x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
                         "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
    return cert, key


def _spawn(argv: list[str], stdout, stderr, cwd: str | None = None) -> subprocess.Popen:
    """Starts a helper daemon that dies with this process (setpriv --pdeathsig TERM)."""
    setpriv = shutil.which("setpriv")
    if setpriv:
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    aw.log("starting: " + " ".join(argv))
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            cwd=cwd, env=aw.client_env())


_live: set = set()  # objects with a close() to call at exit


def _close_live() -> None:
    for obj in list(_live):
        try:
            obj.close()
        except Exception:  # noqa: BLE001 -- best effort at exit
            pass


atexit.register(_close_live)


# --------------------------------------------------------------------------------------------
# Private rsyslogd
# --------------------------------------------------------------------------------------------

def rsyslog_tls_drivers() -> list[str]:
    """The rsyslog TLS netstream drivers installed: "gtls" (rsyslog-gnutls), "ossl"
    (rsyslog-openssl)."""
    found = []
    for drv in ("gtls", "ossl"):
        if any(os.path.exists(os.path.join(d, f"lmnsd_{drv}.so")) for d in RSYSLOG_MODULE_DIRS):
            found.append(drv)
    return found


class Rsyslog:
    """A private rsyslogd in its own temp dir: plain TCP, TLS (RFC 5425) and UDP listeners on
    free 127.0.0.1 ports; each received message is stored exactly as it arrived.

        with Rsyslog(require_client_cert=False) as rs:
            ...send to rs.tcp_port / rs.tls_port / rs.udp_port...
            raws = rs.wait_for("tcp", 3)       # the raw messages (str), in arrival order

    Own config (-f), own pid file (-i), own work directory, foreground (-n): a system rsyslogd,
    if any, is neither used nor touched. stop() ends the daemon (its ports go away), start()
    brings it back on the same ports; the message files survive a restart.

    TLS: the server certificate is signed by a test CA (aw.TestPKI, pass `pki` to share one);
    clients verify it with ca_path. Anonymous client auth by default; with
    require_client_cert=True the listener demands a client certificate signed by the same CA
    (client_cert / client_key are such a pair, generated for every instance).
    """

    def __init__(self, require_client_cert: bool = False, pki: aw.TestPKI | None = None,
                 tls_driver: str | None = None, max_message_size: int = 256 * 1024) -> None:
        if not (os.path.isfile(RSYSLOGD) and os.access(RSYSLOGD, os.X_OK)):
            raise AssertionError(f"{RSYSLOGD} not found: install the Debian packages rsyslog and "
                                 f"rsyslog-gnutls (scripts/install-deps.sh --test)")
        drivers = rsyslog_tls_drivers()
        if tls_driver is None:
            if not drivers:
                raise AssertionError("no rsyslog TLS driver installed (lmnsd_gtls.so / "
                                     "lmnsd_ossl.so): install the Debian package rsyslog-gnutls")
            tls_driver = drivers[0]
        elif tls_driver not in drivers:
            raise AssertionError(f"rsyslog TLS driver {tls_driver!r} not installed "
                                 f"(have {drivers})")
        self.tls_driver = tls_driver
        self.require_client_cert = require_client_cert
        self.max_message_size = max_message_size
        self.proc: subprocess.Popen | None = None
        self._own_pki = pki is None
        self.dir = aw.make_tempdir("aw-rsyslog-")
        _live.add(self)
        try:
            self.pki = pki if pki is not None else aw.TestPKI()
            self.ca_path = self.pki.ca_cert
            self.server_cert, self.server_key = self.pki.cert, self.pki.key
            self.client_cert, self.client_key = make_client_cert(self.pki, self.dir)
            self.tcp_port, self.tls_port = free_ports(2)
            self.udp_port, = free_ports(1, socket.SOCK_DGRAM)
            self.work_dir = os.path.join(self.dir, "work")
            os.mkdir(self.work_dir)
            self.conf_path = os.path.join(self.dir, "rsyslog.conf")
            self.pid_file = os.path.join(self.dir, "rsyslogd.pid")
            self.internal_file = os.path.join(self.dir, "internal.log")
            self.stdout_file = os.path.join(self.dir, "rsyslogd.out")
            with open(self.conf_path, "w") as f:
                f.write(self._config())
            self._check_config()
        except BaseException:
            self.close()
            raise

    def file_for(self, listener: str) -> str:
        if listener not in LISTENERS:
            raise ValueError(f"unknown listener {listener!r} (one of {LISTENERS})")
        return os.path.join(self.dir, f"{listener}.jsonl")

    def _config(self) -> str:
        for p in (self.dir, self.ca_path, self.server_cert, self.server_key):
            if '"' in p or "\\" in p:
                raise AssertionError(f"path unusable in an rsyslog config: {p!r}")
        auth = "x509/certvalid" if self.require_client_cert else "anon"
        tls_files = (f'streamDriver.CAFile="{self.ca_path}" '
                     f'streamDriver.CertFile="{self.server_cert}" '
                     f'streamDriver.KeyFile="{self.server_key}"')
        rulesets = "\n".join(
            f'ruleset(name="aw_{name}") {{\n'
            f'  action(type="omfile" file="{self.file_for(name)}" template="aw_raw"\n'
            f'         flushOnTXEnd="on" asyncWriting="off")\n}}'
            for name in LISTENERS)
        return f"""# agentwall integration test receiver (generated; private instance)
global(
  workDirectory="{self.work_dir}"
  maxMessageSize="{self.max_message_size}"
  net.enableDNS="off"
  parser.escapeControlCharactersOnReceive="off"
  parser.dropTrailingLFOnReception="off"
  defaultNetstreamDriverCAFile="{self.ca_path}"
  defaultNetstreamDriverCertFile="{self.server_cert}"
  defaultNetstreamDriverKeyFile="{self.server_key}"
)
# on SIGTERM, write out what was accepted before exiting (outage tests stop the daemon)
main_queue(queue.timeoutShutdown="10000" queue.timeoutActionCompletion="10000")
module(load="imtcp" maxSessions="1000")
module(load="imudp")

# one JSON object per message: {{"raw": <rawmsg>}} (embedded LFs stay escaped in the line)
template(name="aw_raw" type="list") {{
  constant(value="{{\\"raw\\":\\"")
  property(name="rawmsg" format="json")
  constant(value="\\"}}\\n")
}}

{rulesets}

input(type="imtcp" name="tcp" address="127.0.0.1" port="{self.tcp_port}" ruleset="aw_tcp"
      supportOctetCountedFraming="on" maxFrameSize="{max(200000, self.max_message_size + 64)}")
input(type="imtcp" name="tls" address="127.0.0.1" port="{self.tls_port}" ruleset="aw_tls"
      supportOctetCountedFraming="on" maxFrameSize="{max(200000, self.max_message_size + 64)}"
      streamDriver.name="{self.tls_driver}" streamDriver.mode="1"
      streamDriver.authMode="{auth}" {tls_files})
input(type="imudp" name="udp" address="127.0.0.1" port="{self.udp_port}" ruleset="aw_udp"
      rcvBufSize="8m")

# rsyslog's own messages (start-up, TLS handshake errors, ...) land in the default ruleset
action(type="omfile" file="{self.internal_file}")
"""

    def _check_config(self) -> None:
        p = subprocess.run([RSYSLOGD, "-N1", "-f", self.conf_path, "-i", self.pid_file],
                           capture_output=True, timeout=30, env=aw.client_env())
        if p.returncode != 0:
            raise AssertionError(f"rsyslogd rejected the generated config {self.conf_path}:\n"
                                 f"{(p.stdout + p.stderr).decode(errors='replace')}")

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> "Rsyslog":
        if self.running:
            return self
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)  # stale after a SIGKILL; rsyslogd would refuse to start
        with open(self.stdout_file, "ab") as out:
            self.proc = _spawn([RSYSLOGD, "-n", "-f", self.conf_path, "-i", self.pid_file],
                               out, subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while not (tcp_listening(self.tcp_port) and tcp_listening(self.tls_port)
                   and udp_bound(self.udp_port)):
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise AssertionError(f"rsyslogd exited with status {rc} before listening\n"
                                     f"{self.diagnostics()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"rsyslogd not listening on 127.0.0.1 tcp {self.tcp_port}, "
                                     f"tls {self.tls_port}, udp {self.udp_port} within "
                                     f"{timeout}s\n{self.diagnostics()}")
            time.sleep(0.02)
        aw.log(f"rsyslogd pid {self.proc.pid}: tcp {self.tcp_port} tls {self.tls_port} "
               f"udp {self.udp_port} ({self.tls_driver}, "
               f"{'client cert required' if self.require_client_cert else 'anonymous'})")
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (rsyslogd drains its queues and exits), SIGKILL after timeout; returns when
        the process is gone and its ports are closed."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)
        self.proc = None
        deadline = time.monotonic() + 5
        while (tcp_listening(self.tcp_port) or tcp_listening(self.tls_port)
               or udp_bound(self.udp_port)) and time.monotonic() < deadline:
            time.sleep(0.02)
        aw.log(f"rsyslogd stopped (status {p.returncode})")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._own_pki and getattr(self, "pki", None) is not None:
                self.pki.cleanup()
            aw.remove_tempdir(self.dir)
            _live.discard(self)

    def __enter__(self) -> "Rsyslog":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what arrived -----------------------------------------------------------------------
    def messages(self, listener: str) -> list[str]:
        """The raw messages received on listener ("tcp", "tls", "udp"), in arrival order,
        without transport framing. Bytes that are not UTF-8 appear as surrogates
        (str.encode("utf-8", "surrogateescape") gives the exact bytes back)."""
        try:
            with open(self.file_for(listener), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        for line in data.split(b"\n")[:-1]:  # only complete lines: omfile may be mid-write
            try:
                out.append(json.loads(line.decode("utf-8", "surrogateescape"))["raw"])
            except (ValueError, KeyError) as e:
                raise AssertionError(f"unreadable line in {self.file_for(listener)}: "
                                     f"{line[:200]!r}: {e}") from None
        return out

    def raw_messages(self, listener: str) -> list[bytes]:
        return [m.encode("utf-8", "surrogateescape") for m in self.messages(listener)]

    def wait_for(self, listener: str, count: int, timeout: float = WAIT_TIMEOUT,
                 settle: float = 0.0) -> list[str]:
        """Waits until at least count messages arrived on listener, then `settle` seconds more
        (to catch duplicates); returns all of them. AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(listener)
            if len(msgs) >= count:
                if settle:
                    time.sleep(settle)
                    msgs = self.messages(listener)
                return msgs
            died = self.proc is not None and self.proc.poll() is not None
            if died or time.monotonic() > deadline:
                shown = "\n".join(f"  {m[:200]!r}" for m in msgs[-5:])
                if died:
                    raise AssertionError(f"rsyslogd died (status {self.proc.returncode}) while "
                                         f"waiting for {count} message(s) on {listener}, have "
                                         f"{len(msgs)}\n{shown}\n{self.diagnostics()}")
                raise AssertionError(f"rsyslog {listener}: expected {count} message(s) within "
                                     f"{timeout}s, have {len(msgs)}\n{shown}\n"
                                     f"{self.diagnostics()}")
            time.sleep(0.05)

    def internal_log(self) -> str:
        parts = []
        for path in (self.internal_file, self.stdout_file):
            try:
                with open(path, "rb") as f:
                    parts.append(f.read().decode(errors="replace"))
            except FileNotFoundError:
                pass
        return "".join(parts)

    def diagnostics(self, n: int = 20) -> str:
        lines = self.internal_log().splitlines()[-n:]
        return "rsyslogd log (last %d lines):\n%s" % (len(lines), "\n".join(lines) or "<empty>")

    # -- clients ----------------------------------------------------------------------------
    def client_context(self, with_cert: bool | None = None) -> ssl.SSLContext:
        """A client context that verifies the server against ca_path (hostname localhost or
        127.0.0.1), presenting client_cert when with_cert (default: when it is required)."""
        ctx = ssl.create_default_context(cafile=self.ca_path)
        if with_cert if with_cert is not None else self.require_client_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


# --------------------------------------------------------------------------------------------
# RFC 5424
# --------------------------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"
NILVALUE = "-"
IANA_SD_IDS = frozenset({"timeQuality", "origin", "meta"})
_HEADER_LIMITS = (("hostname", 255), ("app_name", 48), ("procid", 128), ("msgid", 32))
_TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
                    r"(Z|[+-](\d{2}):(\d{2}))\Z")
_ENTERPRISE_RE = re.compile(r"[0-9]+(\.[0-9]+)*\Z")


def _printusascii(s: bytes) -> bool:
    return all(33 <= b <= 126 for b in s)


def _sd_name_ok(s: bytes) -> bool:
    return 1 <= len(s) <= 32 and all(33 <= b <= 126 and b not in b'= ]"' for b in s)


def parse_rfc5424_timestamp(ts: str) -> _dt.datetime:
    """A TIMESTAMP (RFC 5424 section 6.2.3, not NILVALUE) as an aware datetime."""
    m = _TS_RE.match(ts)
    if not m:
        raise ValueError(f"bad TIMESTAMP {ts!r}: want YYYY-MM-DDThh:mm:ss[.1-6 digits](Z|+hh:mm|"
                         f"-hh:mm) with upper-case T and Z")
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    frac, off = m.group(7), m.group(8)
    if sec == 60:
        raise ValueError(f"bad TIMESTAMP {ts!r}: leap seconds must not be used (section 6.2.3)")
    if off == "Z":
        tz = _dt.timezone.utc
    else:
        oh, om = int(m.group(9)), int(m.group(10))
        if oh > 23 or om > 59:
            raise ValueError(f"bad TIMESTAMP {ts!r}: TIME-NUMOFFSET out of range")
        delta = _dt.timedelta(hours=oh, minutes=om)
        tz = _dt.timezone(-delta if off[0] == "-" else delta)
    try:
        return _dt.datetime(year, month, day, hour, minute, sec,
                            int((frac or "0").ljust(6, "0")), tzinfo=tz)
    except ValueError as e:
        raise ValueError(f"bad TIMESTAMP {ts!r}: {e}") from None


def _parse_sd(data: bytes, i: int, strict: bool) -> tuple[list, int]:
    """STRUCTURED-DATA starting at data[i] ("[" ...); returns ([(sd_id, [(name, value)])], end)."""
    elements: list[tuple[str, list[tuple[str, str]]]] = []
    n = len(data)
    while i < n and data[i:i + 1] == b"[":
        i += 1
        j = i
        while j < n and data[j] not in b' ]':
            j += 1
        sd_id = data[i:j]
        if not _sd_name_ok(sd_id):
            raise ValueError(f"bad SD-ID {sd_id!r} at offset {i}: 1-32 PRINTUSASCII except "
                             f"'=', SP, ']', '\"'")
        sid = sd_id.decode("ascii")
        if "@" in sid:
            name, _, enterprise = sid.partition("@")
            if not name or "@" in enterprise or not _ENTERPRISE_RE.match(enterprise):
                raise ValueError(f"bad SD-ID {sid!r}: want name@<private enterprise number>")
        elif strict and sid not in IANA_SD_IDS:
            raise ValueError(f"SD-ID {sid!r} has no '@' and is not IANA-registered "
                             f"({', '.join(sorted(IANA_SD_IDS))}); use name@<enterprise number>")
        if any(e[0] == sid for e in elements):
            raise ValueError(f"SD-ID {sid!r} appears more than once (section 6.3.2)")
        params: list[tuple[str, str]] = []
        i = j
        while True:
            if i >= n:
                raise ValueError(f"SD-ELEMENT [{sid} not closed by ']'")
            if data[i:i + 1] == b"]":
                i += 1
                break
            if data[i:i + 1] != b" ":
                raise ValueError(f"SD-ELEMENT [{sid}: expected SP or ']' at offset {i}, "
                                 f"got {data[i:i + 1]!r}")
            i += 1
            eq = data.find(b"=", i)
            if eq < 0:
                raise ValueError(f"SD-PARAM in [{sid} without '=' at offset {i}")
            pname = data[i:eq]
            if not _sd_name_ok(pname):
                raise ValueError(f"bad PARAM-NAME {pname!r} in [{sid} at offset {i}")
            if data[eq + 1:eq + 2] != b'"':
                raise ValueError(f"PARAM-VALUE of {pname.decode()!r} in [{sid} does not start "
                                 f"with '\"' (offset {eq + 1})")
            i = eq + 2
            value = bytearray()
            while True:
                if i >= n:
                    raise ValueError(f"PARAM-VALUE of {pname.decode()!r} in [{sid} not closed "
                                     f"by '\"'")
                c = data[i]
                if c == 0x5C:  # backslash
                    nxt = data[i + 1:i + 2]
                    if nxt in (b'"', b"\\", b"]"):
                        value += nxt
                        i += 2
                        continue
                    if strict:
                        raise ValueError(f"PARAM-VALUE of {pname.decode()!r} in [{sid}: "
                                         f"unescaped '\\' at offset {i} (section 6.3.3: '\\' "
                                         f"must be sent as '\\\\')")
                    value.append(c)
                    i += 1
                    continue
                if c == 0x22:  # closing quote
                    i += 1
                    break
                if c == 0x5D and strict:
                    raise ValueError(f"PARAM-VALUE of {pname.decode()!r} in [{sid}: unescaped "
                                     f"']' at offset {i} (section 6.3.3)")
                value.append(c)
                i += 1
            try:
                text = bytes(value).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"PARAM-VALUE of {pname.decode()!r} in [{sid} is not UTF-8: "
                                 f"{e}") from None
            params.append((pname.decode("ascii"), text))
        elements.append((sid, params))
    return elements, i


def parse_rfc5424(raw: str | bytes, strict: bool = True) -> dict:
    """Parses one RFC 5424 SYSLOG-MSG (no transport framing). Returns a dict:

      pri, facility, severity, version (int); timestamp (str or None for NILVALUE) and
      timestamp_dt (aware datetime or None); hostname, app_name, procid, msgid (str or None);
      sd: {SD-ID: {PARAM-NAME: value}} ({} for NILVALUE; a repeated PARAM-NAME keeps the last
      value, sd_list keeps all, in order: [(SD-ID, [(name, value), ...])]); msg (str without
      the BOM, or None when there is no MSG part); bom (bool); msg_bytes (the MSG octets as
      sent, BOM included, or None).

    Raises ValueError with the reason on anything that is not RFC 5424. strict=False accepts
    an unescaped '\\' or ']' inside PARAM-VALUE and SD-IDs without '@' that are not registered.
    """
    if isinstance(raw, str):
        data = raw.encode("utf-8", "surrogateescape")
    else:
        data = bytes(raw)
    m = re.match(rb"<([0-9]{1,3})>([0-9]{1,3}) ", data)
    if not m:
        if not data.startswith(b"<"):
            raise ValueError(f"no PRI: message starts with {data[:20]!r}")
        raise ValueError(f"bad PRI/VERSION header: {data[:20]!r} (want '<0-191>1 ')")
    prival, ver = m.group(1), m.group(2)
    if len(prival) > 1 and prival.startswith(b"0"):
        raise ValueError(f"bad PRI <{prival.decode()}>: leading zero")
    pri = int(prival)
    if pri > 191:
        raise ValueError(f"bad PRI <{pri}>: PRIVAL is 0..191")
    if ver != b"1":
        raise ValueError(f"VERSION is {ver.decode()!r}, not 1")
    i = m.end()
    fields = []
    for name in ("timestamp", "hostname", "app_name", "procid", "msgid"):
        sp = data.find(b" ", i)
        if sp < 0:
            raise ValueError(f"header ends before {name.upper()}'s trailing SP: {data[:200]!r}")
        tok = data[i:sp]
        if not tok:
            raise ValueError(f"empty {name.upper()} at offset {i} (two SPs; NILVALUE is '-')")
        if not _printusascii(tok):
            raise ValueError(f"{name.upper()} {tok!r} has characters outside PRINTUSASCII")
        fields.append(tok.decode("ascii"))
        i = sp + 1
    ts, hostname, app_name, procid, msgid = fields
    out: dict = {"pri": pri, "facility": pri >> 3, "severity": pri & 7, "version": 1}
    out["timestamp"] = None if ts == NILVALUE else ts
    out["timestamp_dt"] = None if ts == NILVALUE else parse_rfc5424_timestamp(ts)
    for (name, limit), value in zip(_HEADER_LIMITS, (hostname, app_name, procid, msgid)):
        if len(value) > limit:
            raise ValueError(f"{name.upper()} is {len(value)} characters, at most {limit} "
                             f"allowed: {value[:60]!r}...")
        out[name] = None if value == NILVALUE else value
    if data[i:i + 1] == b"-":
        sd_list, i = [], i + 1
    elif data[i:i + 1] == b"[":
        sd_list, i = _parse_sd(data, i, strict)
    else:
        raise ValueError(f"STRUCTURED-DATA must be '-' or start with '[', got "
                         f"{data[i:i + 20]!r} at offset {i}")
    out["sd_list"] = sd_list
    out["sd"] = {sid: dict(params) for sid, params in sd_list}
    if i == len(data):
        out.update(msg=None, bom=False, msg_bytes=None)
        return out
    if data[i:i + 1] != b" ":
        raise ValueError(f"expected SP or end after STRUCTURED-DATA at offset {i}, got "
                         f"{data[i:i + 20]!r}")
    body = data[i + 1:]
    out["msg_bytes"] = body
    if body.startswith(BOM):
        try:
            out["msg"] = body[3:].decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"MSG starts with the UTF-8 BOM but is not UTF-8: {e}") from None
        out["bom"] = True
    else:
        out["msg"] = body.decode("utf-8", "replace")
        out["bom"] = False
    return out


def escape_sd_value(value: str) -> str:
    """PARAM-VALUE escaping (section 6.3.3): '"', '\\' and ']' get a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def build_rfc5424(msg: str | bytes | None = None, *, pri: int = 14, timestamp: str | None = None,
                  hostname: str | None = "aw-test", app_name: str | None = "agentwall",
                  procid: str | None = None, msgid: str | None = None,
                  sd: dict | None = None, bom: bool = True) -> bytes:
    """A SYSLOG-MSG for tests; None fields become NILVALUE; sd: {SD-ID: {name: value}};
    timestamp None = now (UTC, microseconds). The message is not framed (see octet_frame)."""
    if timestamp is None:
        timestamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    head = " ".join(v if v is not None else NILVALUE
                    for v in (f"<{pri}>1", timestamp, hostname, app_name, procid, msgid))
    if sd:
        sd_text = "".join(
            "[" + sid + "".join(f' {k}="{escape_sd_value(str(v))}"' for k, v in params.items())
            + "]" for sid, params in sd.items())
    else:
        sd_text = NILVALUE
    out = (head + " " + sd_text).encode("utf-8")
    if msg is not None:
        body = msg.encode("utf-8") if isinstance(msg, str) else msg
        out += b" " + (BOM if bom else b"") + body
    return out


def octet_frame(msg: bytes) -> bytes:
    """RFC 6587 / RFC 5425 octet-counting frame: MSG-LEN SP SYSLOG-MSG."""
    return str(len(msg)).encode() + b" " + msg


# --------------------------------------------------------------------------------------------
# HTTP receiver
# --------------------------------------------------------------------------------------------

@dataclass
class HttpRequest:
    method: str
    path: str  # without the query string
    query: dict  # parse_qs: name -> [values]
    raw_query: str
    headers: list  # [(name, value)] as received
    body: bytes  # decompressed when Content-Encoding: gzip (or deflate)
    raw_body: bytes  # as received (after de-chunking)
    time: float  # time.time() when the body was complete
    status: int = 0  # what the receiver answered
    tls: bool = False
    client_port: int = 0
    error: str | None = None  # why the receiver refused it (bad gzip, token, ...)

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def json(self):
        return json.loads(self.body)


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _bulk_response(body: bytes) -> tuple[int, bytes]:
    """An Elasticsearch-like _bulk answer: one item per action line, all created."""
    items = []
    lines = body.split(b"\n")
    i, seq = 0, 0
    try:
        while i < len(lines):
            line = lines[i].strip()
            i += 1
            if not line:
                continue
            action = json.loads(line)
            (op, meta), = action.items()
            if op != "delete":
                i += 1  # the document line
            doc_id = meta.get("_id") or base64.urlsafe_b64encode(os.urandom(15)).decode()
            items.append({op: {"_index": meta.get("_index", ""), "_id": doc_id, "_version": 1,
                               "result": "created", "_shards": {"total": 1, "successful": 1,
                                                                "failed": 0},
                               "_seq_no": seq, "_primary_term": 1,
                               "status": 201 if op in ("create", "index") else 200}})
            seq += 1
    except (ValueError, AttributeError) as e:
        return 400, _json_bytes({"error": {"type": "illegal_argument_exception",
                                           "reason": f"Malformed action/metadata line: {e}"},
                                 "status": 400})
    return 200, _json_bytes({"took": 1, "errors": False, "items": items})


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aw-receiver/1"
    timeout = 30  # idle keep-alive connections are dropped after this

    def log_message(self, fmt, *args) -> None:  # quiet
        aw.log("http: " + (fmt % args))

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("EOF inside chunked body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192).strip():  # trailers
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(8)  # CRLF
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self) -> None:
        rcv: HttpReceiver = self.server.receiver  # type: ignore[attr-defined]
        try:
            raw_body = self._read_body()
        except (ValueError, ConnectionError) as e:
            self.close_connection = True
            self.send_error(400, f"bad body: {e}")
            return
        url = urllib.parse.urlsplit(self.path)
        req = HttpRequest(method=self.command, path=url.path,
                          query=urllib.parse.parse_qs(url.query, keep_blank_values=True),
                          raw_query=url.query, headers=list(self.headers.items()),
                          body=raw_body, raw_body=raw_body, time=time.time(),
                          tls=isinstance(self.connection, ssl.SSLSocket),
                          client_port=self.client_address[1])
        try:
            status, ctype, body, extra = self._answer(rcv, req)
        except Exception as e:  # noqa: BLE001 -- e.g. a test's handler: answer 500, keep going
            req.error = f"receiver error: {type(e).__name__}: {e}"
            status, ctype, body, extra = 500, "application/json", _json_bytes(
                {"error": req.error}), []
        req.status = status
        rcv._record(req)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer(self, rcv: "HttpReceiver", req: HttpRequest):
        enc = (req.header("Content-Encoding") or "").strip().lower()
        try:
            if enc == "gzip":
                req.body = gzip.decompress(req.raw_body)
            elif enc == "deflate":
                req.body = zlib.decompress(req.raw_body)
            elif enc not in ("", "identity"):
                req.error = f"unsupported Content-Encoding {enc!r}"
                return 415, "application/json", _json_bytes({"error": req.error}), []
        except (OSError, EOFError, zlib.error) as e:
            req.error = f"cannot decompress {enc} body: {e}"
            return 400, "application/json", _json_bytes({"error": req.error}), []
        with rcv._lock:
            fail = rcv.fail_with
            if fail is not None and rcv.fail_times is not None:
                rcv.fail_times -= 1
                if rcv.fail_times <= 0:
                    rcv.fail_with, rcv.fail_times = None, None
        if fail is not None:
            req.error = f"fail_with={fail}"
            extra = [("Retry-After", str(rcv.retry_after))] if rcv.retry_after is not None else []
            return fail, "application/json", _json_bytes({"error": "injected failure",
                                                          "status": fail}), extra
        if rcv.handler is not None:
            custom = rcv.handler(req)
            if custom is not None:
                status, body = custom[0], custom[1]
                ctype = custom[2] if len(custom) > 2 else "application/json"
                if not isinstance(body, bytes):
                    body = _json_bytes(body)
                return status, ctype, body, []
        path = req.path
        if path.startswith("/services/collector"):
            if rcv.hec_token is not None:
                auth = req.header("Authorization")
                if auth is None:
                    req.error = "HEC: no Authorization header"
                    return 401, "application/json", _json_bytes(
                        {"text": "Token is required", "code": 2}), [
                        ("WWW-Authenticate", "Splunk")]
                if auth != f"Splunk {rcv.hec_token}":
                    req.error = f"HEC: wrong Authorization {auth!r}"
                    return 401, "application/json", _json_bytes(
                        {"text": "Invalid token", "code": 4}), [("WWW-Authenticate", "Splunk")]
            if path.rstrip("/").endswith("/health"):
                return 200, "application/json", _json_bytes({"text": "HEC is healthy",
                                                             "code": 17}), []
            return 200, "application/json", _json_bytes({"text": "Success", "code": 0}), []
        if path == "/_bulk" or path.endswith("/_bulk"):
            status, body = _bulk_response(req.body)
            if status != 200:
                req.error = "bulk: malformed body"
            return status, "application/json", body, []
        return 200, "application/json", b"{}", []

    do_POST = do_PUT = do_GET = do_HEAD = do_DELETE = do_PATCH = _handle


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() drops open connections instead of waiting for them
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, receiver: "HttpReceiver", ctx: ssl.SSLContext | None) -> None:
        self.receiver = receiver
        self.ctx = ctx
        self.conns: set = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def finish_request(self, request, client_address) -> None:
        # runs in the connection's thread: the TLS handshake happens here, not in accept()
        sock = request
        try:
            if self.ctx is not None:
                request.settimeout(30)
                sock = self.ctx.wrap_socket(request, server_side=True)
            with self.conns_lock:
                self.conns.add(sock)
            self.RequestHandlerClass(sock, client_address, self)
        except (OSError, ssl.SSLError) as e:
            aw.log(f"http receiver: connection from {client_address}: {e}")
        finally:
            with self.conns_lock:
                self.conns.discard(sock)
            if sock is not request:
                try:
                    sock.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address) -> None:
        aw.log(f"http receiver: error on connection from {client_address}")

    def drop_connections(self) -> None:
        with self.conns_lock:
            conns = list(self.conns)
        for s in conns:
            try:
                # the TCP socket under an SSLSocket too: its reader sees EOF, its TLS state
                # stays untouched (SSLSocket.shutdown would drop it under the reader's feet)
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass


class HttpReceiver:
    """Threaded HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length or chunked bodies,
    Expect: 100-continue) that records every request and answers like the real services:

      /services/collector...  Splunk HEC: {"text":"Success","code":0}; with hec_token set, a
                              missing or wrong `Authorization: Splunk <token>` gets 401
      .../_bulk               Elasticsearch: {"took":..,"errors":false,"items":[one per action]}
      anything else           200 {} (OTLP/HTTP /v1/logs, /v1/traces: an empty JSON answer)

    fail_with = 503 answers that status to everything (fail_times = N: only the next N
    requests; retry_after adds a Retry-After header); fail_with = None goes back to normal.
    handler: optional callable(HttpRequest) -> None | (status, body[, content type]) that
    overrides the answer (e.g. a bulk response with per-item errors).
    stop() closes the listener and every open connection; start() listens on the same port.
    tls=True: HTTPS with the server certificate of `pki` (an aw.TestPKI, created if not given);
    clients verify it with ca_path (hostnames localhost and 127.0.0.1).
    """

    def __init__(self, tls: bool = False, pki: aw.TestPKI | None = None,
                 hec_token: str | None = None, port: int = 0) -> None:
        self.tls = tls
        self.hec_token = hec_token
        self.fail_with: int | None = None
        self.fail_times: int | None = None
        self.retry_after: int | None = None
        self.handler = None
        self.port = port
        self._own_pki = tls and pki is None
        self.pki = pki if pki is not None or not tls else aw.TestPKI()
        self.ca_path = self.pki.ca_cert if self.pki is not None else None
        self._requests: list[HttpRequest] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        _live.add(self)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "HttpReceiver":
        if self._server is not None:
            return self
        ctx = self.pki.server_context() if self.tls else None
        srv = _Server(("127.0.0.1", self.port), self, ctx)
        self.port = srv.server_address[1]
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"aw-http-{self.port}", daemon=True)
        self._thread.start()
        aw.log(f"http receiver on {self.url}")
        return self

    def stop(self) -> None:
        srv = self._server
        if srv is None:
            return
        self._server = None
        srv.shutdown()
        srv.server_close()
        srv.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        aw.log(f"http receiver on port {self.port} stopped")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._own_pki and self.pki is not None:
                self.pki.cleanup()
            _live.discard(self)

    def __enter__(self) -> "HttpReceiver":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def fail(self, status: int | None, times: int | None = None) -> None:
        with self._lock:
            self.fail_with, self.fail_times = status, times

    def _record(self, req: HttpRequest) -> None:
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def requests(self, path_prefix: str | None = None) -> list[HttpRequest]:
        with self._lock:
            reqs = list(self._requests)
        if path_prefix is not None:
            reqs = [r for r in reqs if r.path.startswith(path_prefix)]
        return reqs

    def wait_for(self, what, timeout: float = WAIT_TIMEOUT, path_prefix: str | None = None
                 ) -> list[HttpRequest]:
        """what: a count (at least that many requests, under path_prefix if given) or a
        predicate(list of requests) -> bool. Returns the requests; AssertionError on timeout."""
        pred = (lambda reqs: len(reqs) >= what) if isinstance(what, int) else what
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                reqs = [r for r in self._requests
                        if path_prefix is None or r.path.startswith(path_prefix)]
                if pred(reqs):
                    return reqs
                left = deadline - time.monotonic()
                if left <= 0:
                    shown = "\n".join(f"  {r.method} {r.path} -> {r.status} "
                                      f"({len(r.body)} B){' ' + r.error if r.error else ''}"
                                      for r in reqs[-10:])
                    raise AssertionError(f"http receiver: condition {what!r} not met within "
                                         f"{timeout}s; {len(reqs)} request(s)"
                                         f"{' under ' + path_prefix if path_prefix else ''}:\n"
                                         f"{shown}")
                self._cond.wait(min(left, 0.2))


# --------------------------------------------------------------------------------------------
# Body validators
# --------------------------------------------------------------------------------------------

def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _loads(text: str, what: str):
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError as e:
        raise AssertionError(f"{what}: not valid JSON: {e}: {text[:300]!r}") from None


def _as_text(body, what: str) -> str:
    if isinstance(body, str):
        return body
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError(f"{what}: body is not UTF-8: {e}") from None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_hec_body(body) -> list[dict]:
    """A Splunk HEC /services/collector/event body: one or more JSON objects, concatenated,
    optionally separated by whitespace/newlines. Each needs a non-empty "event"; "time" must
    be a number, "host"/"source"/"sourcetype"/"index" strings, "fields" an object of strings
    (or arrays of strings). Returns the event objects."""
    text = _as_text(body, "HEC body")
    dec = json.JSONDecoder(parse_constant=_no_constants)
    events: list[dict] = []
    i, n = 0, len(text)
    ws = " \t\r\n"
    while True:
        while i < n and text[i] in ws:
            i += 1
        if i >= n:
            break
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError as e:
            raise AssertionError(f"HEC body: event #{len(events)} at offset {i} is not JSON: "
                                 f"{e}: {text[i:i + 200]!r}") from None
        where = f"HEC event #{len(events)}"
        if not isinstance(obj, dict):
            raise AssertionError(f"{where}: not a JSON object: {text[i:i + 200]!r}")
        if "event" not in obj:
            raise AssertionError(f"{where}: no \"event\" field: {sorted(obj)}")
        if obj["event"] is None or obj["event"] == "" or obj["event"] == {}:
            raise AssertionError(f"{where}: \"event\" is blank ({obj['event']!r})")
        if "time" in obj and not _is_number(obj["time"]):
            raise AssertionError(f"{where}: \"time\" must be a number (epoch seconds), got "
                                 f"{obj['time']!r}")
        for k in ("host", "source", "sourcetype", "index"):
            if k in obj and not isinstance(obj[k], str):
                raise AssertionError(f"{where}: \"{k}\" must be a string, got {obj[k]!r}")
        if "fields" in obj:
            flds = obj["fields"]
            if not isinstance(flds, dict):
                raise AssertionError(f"{where}: \"fields\" must be an object, got {flds!r}")
            for k, v in flds.items():
                ok = isinstance(v, str) or (isinstance(v, list) and
                                            all(isinstance(x, str) for x in v))
                if not ok:
                    raise AssertionError(f"{where}: fields[{k!r}] must be a string or an array "
                                         f"of strings (indexed fields), got {v!r}")
        events.append(obj)
        # the next object may follow directly ("}{") or after whitespace
        i = end
    if not events:
        raise AssertionError("HEC body: no events (empty body)")
    return events


_BULK_ACTIONS = ("create", "index")
_BULK_META_KEYS = frozenset({"_index", "_id", "routing", "pipeline", "require_alias",
                             "require_data_stream", "if_seq_no", "if_primary_term", "version",
                             "version_type", "dynamic_templates", "list_executed_pipelines"})
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')


def check_es_index_name(name) -> None:
    """Elasticsearch index/data stream naming rules; AssertionError on a violation."""
    if not isinstance(name, str) or not name:
        raise AssertionError(f"index name must be a non-empty string, got {name!r}")
    if name != name.lower():
        raise AssertionError(f"index name {name!r} has upper-case letters")
    bad = sorted(set(name) & _BAD_INDEX_CHARS)
    if bad:
        raise AssertionError(f"index name {name!r} contains forbidden characters {bad}")
    if name[0] in "-_+" or name in (".", ".."):
        raise AssertionError(f"index name {name!r} cannot start with '-', '_', '+' or be . / ..")
    if len(name.encode()) > 255:
        raise AssertionError(f"index name is {len(name.encode())} bytes, at most 255")


def check_bulk_body(body, default_index: str | None = None) -> list[tuple[dict, dict]]:
    """An Elasticsearch _bulk body: NDJSON, ending with "\\n", pairs of an action line
    {"create"|"index": {"_index": ..., "_id"?: ...}} and a document object. default_index: the
    index named in the URL (/<index>/_bulk), which makes "_index" optional.
    Returns [(action line dict, document dict)]."""
    text = _as_text(body, "bulk body")
    if not text:
        raise AssertionError("bulk body is empty")
    if not text.endswith("\n"):
        raise AssertionError(f"bulk body must end with a newline, ends with {text[-40:]!r}")
    lines = text[:-1].split("\n")
    if len(lines) % 2:
        raise AssertionError(f"bulk body has {len(lines)} lines: not action/document pairs")
    pairs: list[tuple[dict, dict]] = []
    for k in range(0, len(lines), 2):
        aline, dline = lines[k], lines[k + 1]
        where = f"bulk line {k + 1}"
        if "\r" in aline or "\r" in dline:
            raise AssertionError(f"{where}: CR in NDJSON (lines end with \\n only)")
        action = _loads(aline, where)
        if not isinstance(action, dict) or len(action) != 1:
            raise AssertionError(f"{where}: action line must be an object with exactly one key, "
                                 f"got {aline[:200]!r}")
        (op, meta), = action.items()
        if op not in _BULK_ACTIONS:
            raise AssertionError(f"{where}: action {op!r} is not one of {_BULK_ACTIONS}")
        if not isinstance(meta, dict):
            raise AssertionError(f"{where}: {op} metadata must be an object, got {meta!r}")
        unknown = sorted(set(meta) - _BULK_META_KEYS)
        if unknown:
            raise AssertionError(f"{where}: unknown metadata field(s) {unknown}")
        if "_index" in meta:
            try:
                check_es_index_name(meta["_index"])
            except AssertionError as e:
                raise AssertionError(f"{where}: {e}") from None
        elif default_index is None:
            raise AssertionError(f"{where}: {op} without \"_index\" (and no index in the URL)")
        if "_id" in meta:
            doc_id = meta["_id"]
            if not isinstance(doc_id, str) or not doc_id or len(doc_id.encode()) > 512:
                raise AssertionError(f"{where}: \"_id\" must be a non-empty string of at most "
                                     f"512 bytes, got {doc_id!r}")
        doc = _loads(dline, f"bulk line {k + 2}")
        if not isinstance(doc, dict):
            raise AssertionError(f"bulk line {k + 2}: document must be a JSON object, got "
                                 f"{dline[:200]!r}")
        pairs.append((action, doc))
    return pairs


# --- OTLP/HTTP JSON ---------------------------------------------------------------------------

_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_HEX16 = re.compile(r"[0-9a-f]{16}\Z")
_UINT64 = re.compile(r"(0|[1-9][0-9]*)\Z")
_INT64 = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_ANY_KEYS = ("stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue",
             "bytesValue")


def _keys(obj, where: str, allowed: set, required: tuple = ()) -> None:
    if not isinstance(obj, dict):
        raise AssertionError(f"{where}: must be a JSON object, got {json.dumps(obj)[:200]}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise AssertionError(f"{where}: unknown field(s) {unknown} (OTLP JSON keys are "
                             f"lowerCamelCase; allowed: {sorted(allowed)})")
    for k in required:
        if k not in obj:
            raise AssertionError(f"{where}: missing {k!r}")


def _list(obj, where: str, nonempty: bool = False) -> list:
    if not isinstance(obj, list):
        raise AssertionError(f"{where}: must be an array, got {json.dumps(obj)[:200]}")
    if nonempty and not obj:
        raise AssertionError(f"{where}: empty array")
    return obj


def _uint(v, where: str, bits: int = 32) -> None:
    if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** bits):
        raise AssertionError(f"{where}: must be a uint{bits} JSON number, got {v!r}")


def _nanos(v, where: str) -> int:
    if not isinstance(v, str) or not _UINT64.match(v) or int(v) >= 2 ** 64:
        raise AssertionError(f"{where}: must be a decimal string (fixed64 nanoseconds), got "
                             f"{v!r}")
    return int(v)


def _hex_id(v, where: str, pattern: re.Pattern, allow_empty: bool = False) -> None:
    if allow_empty and v == "":
        return
    if not isinstance(v, str) or not pattern.match(v):
        width = 32 if pattern is _HEX32 else 16
        raise AssertionError(f"{where}: must be {width} lowercase hex digits, got {v!r}")
    if set(v) == {"0"}:
        raise AssertionError(f"{where}: all-zero id is invalid")


def _any_value(v, where: str, depth: int = 0) -> None:
    if depth > 32:
        raise AssertionError(f"{where}: AnyValue nested too deeply")
    _keys(v, where, set(_ANY_KEYS))
    if len(v) != 1:
        raise AssertionError(f"{where}: AnyValue must have exactly one of {_ANY_KEYS}, has "
                             f"{sorted(v)}")
    (kind, x), = v.items()
    if kind == "stringValue" and not isinstance(x, str):
        raise AssertionError(f"{where}.stringValue: must be a string, got {x!r}")
    if kind == "boolValue" and not isinstance(x, bool):
        raise AssertionError(f"{where}.boolValue: must be true/false, got {x!r}")
    if kind == "intValue":
        if not isinstance(x, str) or not _INT64.match(x) or not -2 ** 63 <= int(x) < 2 ** 63:
            raise AssertionError(f"{where}.intValue: must be a decimal int64 string, got {x!r}")
    if kind == "doubleValue":
        if not (_is_number(x) or x in ("NaN", "Infinity", "-Infinity")):
            raise AssertionError(f"{where}.doubleValue: must be a JSON number, got {x!r}")
    if kind == "bytesValue":
        try:
            base64.b64decode(x, validate=True)
        except (ValueError, TypeError):
            raise AssertionError(f"{where}.bytesValue: must be base64, got {x!r}") from None
    if kind == "arrayValue":
        _keys(x, f"{where}.arrayValue", {"values"})
        for i, item in enumerate(_list(x.get("values", []), f"{where}.arrayValue.values")):
            _any_value(item, f"{where}.arrayValue.values[{i}]", depth + 1)
    if kind == "kvlistValue":
        _keys(x, f"{where}.kvlistValue", {"values"})
        _attributes(x.get("values", []), f"{where}.kvlistValue.values", depth + 1)


def _attributes(attrs, where: str, depth: int = 0) -> None:
    seen = set()
    for i, kv in enumerate(_list(attrs, where)):
        w = f"{where}[{i}]"
        _keys(kv, w, {"key", "value"}, ("key", "value"))
        if not isinstance(kv["key"], str) or not kv["key"]:
            raise AssertionError(f"{w}.key: must be a non-empty string, got {kv['key']!r}")
        if kv["key"] in seen:
            raise AssertionError(f"{w}: duplicate attribute key {kv['key']!r}")
        seen.add(kv["key"])
        _any_value(kv["value"], f"{w}.value({kv['key']})", depth)


def _resource(obj, where: str) -> None:
    _keys(obj, where, {"attributes", "droppedAttributesCount"})
    _attributes(obj.get("attributes", []), f"{where}.attributes")
    if "droppedAttributesCount" in obj:
        _uint(obj["droppedAttributesCount"], f"{where}.droppedAttributesCount")


def _scope(obj, where: str) -> None:
    _keys(obj, where, {"name", "version", "attributes", "droppedAttributesCount"})
    for k in ("name", "version"):
        if k in obj and not isinstance(obj[k], str):
            raise AssertionError(f"{where}.{k}: must be a string, got {obj[k]!r}")
    _attributes(obj.get("attributes", []), f"{where}.attributes")
    if "droppedAttributesCount" in obj:
        _uint(obj["droppedAttributesCount"], f"{where}.droppedAttributesCount")


def _otlp_walk(body, top: str, scopes_key: str, items_key: str, check_item,
               with_context: bool) -> list:
    text = _as_text(body, f"OTLP {top} body")
    doc = _loads(text, f"OTLP {top} body")
    _keys(doc, "body", {top}, (top,))
    out = []
    for r, res in enumerate(_list(doc[top], top, nonempty=True)):
        rw = f"{top}[{r}]"
        _keys(res, rw, {"resource", scopes_key, "schemaUrl"}, (scopes_key,))
        if "resource" in res:
            _resource(res["resource"], f"{rw}.resource")
        rattrs = otlp_attrs(res.get("resource", {}).get("attributes", []))
        for s, sc in enumerate(_list(res[scopes_key], f"{rw}.{scopes_key}", nonempty=True)):
            sw = f"{rw}.{scopes_key}[{s}]"
            _keys(sc, sw, {"scope", items_key, "schemaUrl"}, (items_key,))
            if "scope" in sc:
                _scope(sc["scope"], f"{sw}.scope")
            for k, item in enumerate(_list(sc[items_key], f"{sw}.{items_key}", nonempty=True)):
                check_item(item, f"{sw}.{items_key}[{k}]")
                out.append((rattrs, sc.get("scope", {}), item) if with_context else item)
    return out


_LOG_KEYS = {"timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body",
             "attributes", "droppedAttributesCount", "flags", "traceId", "spanId", "eventName"}


def _check_log_record(rec, where: str) -> None:
    _keys(rec, where, _LOG_KEYS)
    for k in ("timeUnixNano", "observedTimeUnixNano"):
        if k in rec:
            _nanos(rec[k], f"{where}.{k}")
    if "timeUnixNano" not in rec and "observedTimeUnixNano" not in rec:
        raise AssertionError(f"{where}: neither timeUnixNano nor observedTimeUnixNano")
    if "severityNumber" in rec:
        sn = rec["severityNumber"]
        if not (isinstance(sn, int) and not isinstance(sn, bool) and 0 <= sn <= 24):
            raise AssertionError(f"{where}.severityNumber: must be an integer 0..24 (enums are "
                                 f"numbers in OTLP JSON), got {sn!r}")
    for k in ("severityText", "eventName"):
        if k in rec and not isinstance(rec[k], str):
            raise AssertionError(f"{where}.{k}: must be a string, got {rec[k]!r}")
    if "body" in rec:
        _any_value(rec["body"], f"{where}.body")
    _attributes(rec.get("attributes", []), f"{where}.attributes")
    if "droppedAttributesCount" in rec:
        _uint(rec["droppedAttributesCount"], f"{where}.droppedAttributesCount")
    if "flags" in rec:
        _uint(rec["flags"], f"{where}.flags")
    if "traceId" in rec:
        _hex_id(rec["traceId"], f"{where}.traceId", _HEX32, allow_empty=True)
    if "spanId" in rec:
        _hex_id(rec["spanId"], f"{where}.spanId", _HEX16, allow_empty=True)


_SPAN_KEYS = {"traceId", "spanId", "traceState", "parentSpanId", "flags", "name", "kind",
              "startTimeUnixNano", "endTimeUnixNano", "attributes", "droppedAttributesCount",
              "events", "droppedEventsCount", "links", "droppedLinksCount", "status"}


def _check_span(span, where: str) -> None:
    _keys(span, where, _SPAN_KEYS, ("traceId", "spanId", "name", "startTimeUnixNano",
                                    "endTimeUnixNano"))
    _hex_id(span["traceId"], f"{where}.traceId", _HEX32)
    _hex_id(span["spanId"], f"{where}.spanId", _HEX16)
    if "parentSpanId" in span:
        _hex_id(span["parentSpanId"], f"{where}.parentSpanId", _HEX16, allow_empty=True)
    if not isinstance(span["name"], str) or not span["name"]:
        raise AssertionError(f"{where}.name: must be a non-empty string, got {span['name']!r}")
    if "traceState" in span and not isinstance(span["traceState"], str):
        raise AssertionError(f"{where}.traceState: must be a string")
    if "kind" in span:
        kind = span["kind"]
        if not (isinstance(kind, int) and not isinstance(kind, bool) and 0 <= kind <= 5):
            raise AssertionError(f"{where}.kind: must be an integer 0..5, got {kind!r}")
    start = _nanos(span["startTimeUnixNano"], f"{where}.startTimeUnixNano")
    end = _nanos(span["endTimeUnixNano"], f"{where}.endTimeUnixNano")
    if end < start:
        raise AssertionError(f"{where}: endTimeUnixNano {end} < startTimeUnixNano {start}")
    _attributes(span.get("attributes", []), f"{where}.attributes")
    for k in ("droppedAttributesCount", "droppedEventsCount", "droppedLinksCount", "flags"):
        if k in span:
            _uint(span[k], f"{where}.{k}")
    for i, ev in enumerate(_list(span.get("events", []), f"{where}.events")):
        ew = f"{where}.events[{i}]"
        _keys(ev, ew, {"timeUnixNano", "name", "attributes", "droppedAttributesCount"},
              ("timeUnixNano", "name"))
        _nanos(ev["timeUnixNano"], f"{ew}.timeUnixNano")
        if not isinstance(ev["name"], str):
            raise AssertionError(f"{ew}.name: must be a string")
        _attributes(ev.get("attributes", []), f"{ew}.attributes")
    for i, ln in enumerate(_list(span.get("links", []), f"{where}.links")):
        lw = f"{where}.links[{i}]"
        _keys(ln, lw, {"traceId", "spanId", "traceState", "attributes", "droppedAttributesCount",
                       "flags"}, ("traceId", "spanId"))
        _hex_id(ln["traceId"], f"{lw}.traceId", _HEX32)
        _hex_id(ln["spanId"], f"{lw}.spanId", _HEX16)
        _attributes(ln.get("attributes", []), f"{lw}.attributes")
    if "status" in span:
        st = span["status"]
        _keys(st, f"{where}.status", {"message", "code"})
        if "code" in st and not (isinstance(st["code"], int) and not isinstance(st["code"], bool)
                                 and 0 <= st["code"] <= 2):
            raise AssertionError(f"{where}.status.code: must be 0, 1 or 2, got {st['code']!r}")
        if "message" in st and not isinstance(st["message"], str):
            raise AssertionError(f"{where}.status.message: must be a string")


def check_otlp_logs(body, with_context: bool = False) -> list:
    """An OTLP/HTTP JSON ExportLogsServiceRequest. Returns the logRecords (with_context:
    (resource attributes dict, scope dict, record) triples). AssertionError with the JSON path
    of the first problem."""
    return _otlp_walk(body, "resourceLogs", "scopeLogs", "logRecords", _check_log_record,
                      with_context)


def check_otlp_traces(body, with_context: bool = False) -> list:
    """An OTLP/HTTP JSON ExportTraceServiceRequest. Returns the spans (with_context: triples
    like check_otlp_logs)."""
    return _otlp_walk(body, "resourceSpans", "scopeSpans", "spans", _check_span, with_context)


def otlp_value(v: dict):
    """An OTLP JSON AnyValue as a Python value (intValue -> int, bytesValue -> bytes,
    arrayValue -> list, kvlistValue -> dict)."""
    (kind, x), = v.items()
    if kind == "intValue":
        return int(x)
    if kind == "doubleValue":
        return float(x)
    if kind == "bytesValue":
        return base64.b64decode(x)
    if kind == "arrayValue":
        return [otlp_value(i) for i in x.get("values", [])]
    if kind == "kvlistValue":
        return otlp_attrs(x.get("values", []))
    return x


def otlp_attrs(attrs: list) -> dict:
    """[{key, value: AnyValue}] -> {key: Python value}."""
    return {kv["key"]: otlp_value(kv["value"]) for kv in attrs}


# --------------------------------------------------------------------------------------------
# Benchmark syslog sink
# --------------------------------------------------------------------------------------------

class TcpSyslogCounter:
    """Pure-Python TCP syslog receiver on 127.0.0.1 for benchmarks: octet-counted frames
    ("LEN SP MSG", RFC 6587 3.4.1) and LF-terminated frames (3.4.2), told apart per frame by
    its first byte (a digit means octet counting). Counts messages and message bytes (framing
    excluded); wire_bytes counts everything read. reached(n) is a threading.Event set once n
    messages arrived. keep=True also keeps the messages (for small checks)."""

    def __init__(self, keep: bool = False, port: int = 0, max_frame: int = 1 << 20) -> None:
        self.keep = keep
        self.port = port
        self.max_frame = max_frame
        self.count = 0
        self.bytes = 0
        self.wire_bytes = 0
        self.connections = 0
        self.empty_frames = 0  # bare LFs between frames (not counted as messages)
        self.errors: list[str] = []
        self.kept: list[bytes] = []
        self._lock = threading.Lock()
        self._events: list[tuple[int, threading.Event]] = []
        self._lsock: socket.socket | None = None
        self._conns: set = set()
        self._threads: list[threading.Thread] = []
        self._t0: float | None = None
        self.first_time: float | None = None
        self.last_time: float | None = None
        _live.add(self)

    def start(self) -> "TcpSyslogCounter":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(256)
        self._lsock = s
        self.port = s.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="aw-syslog-count", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        if self._lsock is not None:
            try:
                self._lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._lsock.close()
            self._lsock = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    close = stop

    def __enter__(self) -> "TcpSyslogCounter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        _live.discard(self)

    def reached(self, n: int) -> threading.Event:
        ev = threading.Event()
        with self._lock:
            if self.count >= n:
                ev.set()
            else:
                self._events.append((n, ev))
        return ev

    def wait_for(self, n: int, timeout: float = WAIT_TIMEOUT) -> bool:
        return self.reached(n).wait(timeout)

    def reset(self) -> None:
        with self._lock:
            self.count = self.bytes = self.wire_bytes = 0
            self.kept = []
            self.first_time = self.last_time = None

    def _accept_loop(self) -> None:
        lsock = self._lsock
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(c)
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(c,), daemon=True,
                                 name="aw-syslog-conn")
            t.start()
            self._threads.append(t)

    def _add(self, msgs: int, nbytes: int, wire: int, kept: list[bytes], empty: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.empty_frames += empty
            if msgs and self.first_time is None:
                self.first_time = now
            if msgs:
                self.last_time = now
            self.count += msgs
            self.bytes += nbytes
            self.wire_bytes += wire
            if kept:
                self.kept.extend(kept)
            if self._events:
                still = []
                for n, ev in self._events:
                    (ev.set() if self.count >= n else still.append((n, ev)))
                self._events = still

    def _serve(self, c: socket.socket) -> None:
        buf = b""
        keep = self.keep
        try:
            while True:
                try:
                    data = c.recv(1 << 18)
                except OSError:
                    break
                if not data:
                    break
                buf = buf + data if buf else data
                msgs = nbytes = empty = 0
                kept: list[bytes] = []
                pos, n = 0, len(buf)
                while pos < n:
                    first = buf[pos]
                    if 0x30 <= first <= 0x39:  # octet counting
                        sp = buf.find(b" ", pos, pos + 12)
                        if sp < 0:
                            if n - pos >= 12:
                                raise ValueError(f"bad octet count {buf[pos:pos + 12]!r}")
                            break
                        length = int(buf[pos:sp])
                        if not 0 < length <= self.max_frame or first == 0x30:
                            raise ValueError(f"bad octet count {buf[pos:sp]!r}")
                        end = sp + 1 + length
                        if end > n:
                            break
                        if keep:
                            kept.append(buf[sp + 1:end])
                        msgs += 1
                        nbytes += length
                        pos = end
                    else:  # LF-terminated
                        lf = buf.find(b"\n", pos)
                        if lf < 0:
                            if n - pos > self.max_frame:
                                raise ValueError("LF-framed message longer than max_frame")
                            break
                        if lf == pos:  # a stray LF (e.g. after an octet-counted frame)
                            empty += 1
                            pos += 1
                            continue
                        if keep:
                            kept.append(buf[pos:lf])
                        msgs += 1
                        nbytes += lf - pos
                        pos = lf + 1
                buf = buf[pos:]
                self._add(msgs, nbytes, len(data), kept, empty)
        except ValueError as e:
            with self._lock:
                self.errors.append(str(e))
        finally:
            with self._lock:
                self._conns.discard(c)
            c.close()

    def rate(self) -> float:
        """Messages per second between the first and the last message seen."""
        with self._lock:
            if not self.first_time or self.last_time == self.first_time:
                return 0.0
            return self.count / (self.last_time - self.first_time)
