"""Self-test of receivers.py: every receiver driven by real clients (Python sockets/ssl/
http.client, logger, openssl s_client, curl), every validator fed good and bad input.

    cd tests/integration && python3 receivers_selftest.py [-k NAME]

No root, no agent binary. Needs rsyslog + rsyslog-gnutls (rsyslog-openssl is tested too when
installed), openssl, curl, bsdutils (logger). Prints one line per check and a closing
"N passed, N failed"; exits non-zero on any failure. Every process and temp dir is cleaned up,
also on failure. Not named test_*.py: CTest does not run it.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import ssl
import sys
import time
import traceback

import aw
import receivers as rv

PKI: aw.TestPKI | None = None
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def expect_raises(exc_type, fn, *args, what: str = "", **kw):
    try:
        fn(*args, **kw)
    except exc_type as e:
        return str(e)
    raise AssertionError(f"{what or fn.__name__}: expected {exc_type.__name__}, nothing raised "
                         f"for {args!r}"[:600])


def eq(got, want, what: str) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}"[:2000])


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

def tcp_send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)


def tls_send(port: int, ctx: ssl.SSLContext, data: bytes, server_hostname="localhost") -> None:
    """Sends over TLS and closes with close_notify (rsyslog's gtls driver in x509 mode answers
    it by closing the TCP connection without its own close_notify: not an error here)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            s.sendall(data)
            try:
                s.unwrap()
            except ssl.SSLEOFError:
                pass


def udp_send(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, ("127.0.0.1", port))


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def tagged(tag: str, text: str = "", sd: dict | None = None, **kw) -> bytes:
    return rv.build_rfc5424(f"{tag} {text}" if text else tag, msgid="SELFTEST",
                            sd=sd if sd is not None else {"aw@32473": {"tag": tag}}, **kw)


def http_request(port: int, method: str, path: str, body: bytes = b"", headers=None,
                 conn: http.client.HTTPConnection | None = None, chunked: bool = False):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    hdrs = dict(headers or {})
    if chunked:
        c.request(method, path, body=iter([body[:7], body[7:]]), headers=hdrs,
                  encode_chunked=True)
    else:
        c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, r.getheader("Content-Type"), data


# --------------------------------------------------------------------------------------------
# rsyslog
# --------------------------------------------------------------------------------------------

def msg_tag(raw: str) -> str:
    msg = rv.parse_rfc5424(raw)["msg"] or ""
    return msg.split(" ", 1)[0]


def assert_arrived(got: list[str], connections: list[list[bytes]], what: str, extra: int = 0
                   ) -> dict[str, str]:
    """Every message sent arrived exactly once, byte for byte, in the order of its connection
    (connections: the messages sent on each, in order); `extra` more from other clients.
    Every message parses as RFC 5424. Returns {first word of MSG: raw message}."""
    want = [m.decode("utf-8", "surrogateescape") for conn in connections for m in conn]
    for w in want:
        eq(got.count(w), 1, f"{what}: times {msg_tag(w)!r} arrived")
    eq(len(got), len(want) + extra, f"{what}: message count")
    for conn in connections:
        pos = [got.index(m.decode("utf-8", "surrogateescape")) for m in conn]
        eq(pos, sorted(pos), f"{what}: order within a connection")
    tags = {}
    for raw in got:
        tags[msg_tag(raw)] = raw
    eq(len(tags), len(got), f"{what}: distinct tags")
    return tags


def foreign_rsyslogd_listeners() -> list[str]:
    """rsyslogd processes that are not test instances (those run with -f <temp dir>/
    aw-rsyslog-*/rsyslog.conf, here or in a concurrent test) and hold a listening TCP or a
    bound UDP socket: a system rsyslogd must not be listening on the network."""
    inodes: dict[str, str] = {}
    for kind in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{kind}") as f:
                next(f)
                for line in f:
                    p = line.split()
                    if kind.startswith("udp") or p[3] == "0A":
                        inodes[p[9]] = f"{kind} {p[1]}"
        except FileNotFoundError:
            continue
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "rsyslogd":
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            conf = argv[argv.index(b"-f") + 1] if b"-f" in argv[:-1] else b""
            if os.path.basename(os.path.dirname(conf)).startswith(b"aw-rsyslog-"):
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    found.append(f"pid {pid}: {inodes[target[8:-1]]}")
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


@check
def rsyslog_plain_tls_udp_restart():
    with rv.Rsyslog(pki=PKI) as rs:
        assert rs.tls_driver in ("gtls", "ossl"), rs.tls_driver
        ports = (rs.tcp_port, rs.tls_port, rs.udp_port)
        eq(len(set(ports)), 3, "distinct ports")
        foreign = foreign_rsyslogd_listeners()
        assert not foreign, f"a system rsyslogd listens on network ports: {foreign}"

        special = {"aw@32473": {"tag": "tcp-sd", "q": 'a "quoted" word', "b": "back\\slash",
                                "r": "close]bracket", "all": '\\]"\\"]'},
                   "origin": {"ip": "127.0.0.1"}}
        big_tcp = tagged("tcp-big", "T" * (60 * 1024))
        tcp_msgs = [tagged("tcp-1", "first"), tagged("tcp-2", "multi\nline\nmessage"),
                    tagged("tcp-sd", "with sd", sd=special), big_tcp,
                    tagged("tcp-trailing-lf", "kept\n")]
        # one connection, octet-counted frames in awkward pieces
        stream = b"".join(rv.octet_frame(m) for m in tcp_msgs)
        with socket.create_connection(("127.0.0.1", rs.tcp_port), timeout=10) as s:
            for i in range(0, len(stream), 4093):
                s.sendall(stream[i:i + 4093])
        # control characters, non-UTF-8 bytes, JSON-special characters: kept byte for byte
        odd = rv.build_rfc5424(b"tab\there ctl\x01 del\x7f ff\xff\xfe u2028\xe2\x80\xa8 "
                               b'q"\\ / {}', bom=False)
        tcp_send(rs.tcp_port, rv.octet_frame(odd))
        # LF framing (non-transparent) on another connection
        lf_msg = tagged("tcp-lf", "plain lf framing")
        tcp_send(rs.tcp_port, lf_msg + b"\n")
        # logger (bsdutils): RFC 5424 + octet counting over TCP, and over UDP
        lg = ["logger", "--rfc5424", "-n", "127.0.0.1", "--msgid", "LOGGER", "--sd-id",
              "aw@32473", "--sd-param", 'tag="logger"']
        aw.run_client([*lg, "-T", "--octet-count", "-P", str(rs.tcp_port), "logger tcp"])
        aw.run_client([*lg, "-d", "-P", str(rs.udp_port), "logger udp"])

        conns = [tcp_msgs, [odd], [lf_msg]]
        got = rs.wait_for("tcp", 8, settle=0.3)
        tags = assert_arrived(got, conns, "tcp", extra=1)
        eq(tags["tcp-big"].encode(), big_tcp, "60 KiB message not truncated")
        sd = rv.parse_rfc5424(tags["tcp-sd"])
        eq(sd["sd"], special, "SD values round-trip with ] \" \\")
        eq((sd["msg"], sd["bom"]), ("tcp-sd with sd", True), "msg")
        eq(rv.parse_rfc5424(tags["tcp-2"])["msg"], "tcp-2 multi\nline\nmessage",
           "LF inside a frame")
        eq(rv.parse_rfc5424(tags["tcp-trailing-lf"])["msg"], "tcp-trailing-lf kept\n",
           "trailing LF kept")
        eq(tags["tab\there"].encode("utf-8", "surrogateescape"), odd, "odd bytes round-trip")
        parsed = rv.parse_rfc5424(tags["logger"])
        eq((parsed["msgid"], parsed["sd"]["aw@32473"]["tag"], parsed["msg"]),
           ("LOGGER", "logger", "logger tcp"), "logger over TCP")
        assert "timeQuality" in parsed["sd"], parsed["sd"]
        n_tcp = len(got)

        # TLS: Python ssl verifying the server against the CA (by name and by IP)
        big_tls = tagged("tls-big", "S" * (60 * 1024))
        tls_msgs = [tagged("tls-1", "over tls", sd=special), big_tls]
        tls_send(rs.tls_port, rs.client_context(),
                 b"".join(rv.octet_frame(m) for m in tls_msgs))
        ip_msg = tagged("tls-ip")
        tls_send(rs.tls_port, rs.client_context(), rv.octet_frame(ip_msg),
                 server_hostname="127.0.0.1")
        # a client that does not trust the CA must fail the handshake
        expect_raises(ssl.SSLCertVerificationError, tls_send, rs.tls_port,
                      ssl.create_default_context(), rv.octet_frame(tagged("tls-untrusted")),
                      what="TLS without the test CA")
        # openssl s_client, verifying too
        s_msg = tagged("tls-s_client")
        aw.run_client(["openssl", "s_client", "-connect", f"127.0.0.1:{rs.tls_port}",
                             "-servername", "localhost", "-verify_hostname", "localhost",
                             "-CAfile", rs.ca_path, "-verify_return_error", "-quiet",
                             "-no_ign_eof"], input=rv.octet_frame(s_msg), timeout=20)
        got = rs.wait_for("tls", 4, settle=0.3)
        tags = assert_arrived(got, [tls_msgs, [ip_msg], [s_msg]], "tls")
        eq(rv.parse_rfc5424(tags["tls-1"])["sd"], special, "SD over TLS")
        eq(tags["tls-big"].encode(), big_tls, "60 KiB over TLS")

        # UDP: one datagram = one message, trailing LF included; 60 KiB fits a datagram
        udp_msgs = [tagged("udp-1"), tagged("udp-lf", "x\n"), tagged("udp-big", "U" * 61000)]
        assert udp_msgs[1].endswith(b"x\n")
        for m in udp_msgs:
            udp_send(rs.udp_port, m)
        got = rs.wait_for("udp", len(udp_msgs) + 1, settle=0.3)
        tags = assert_arrived(got, [[m] for m in udp_msgs], "udp", extra=1)
        eq(rv.parse_rfc5424(tags["logger"])["msg"], "logger udp", "logger over UDP")

        # outage: stop -> ports gone; start -> the same ports, old messages kept once
        rs.stop()
        assert not rs.running
        assert refused(rs.tcp_port) and refused(rs.tls_port), "ports still open after stop()"
        assert not rv.udp_bound(rs.udp_port), "udp port still bound after stop()"
        rs.start()
        eq((rs.tcp_port, rs.tls_port, rs.udp_port), ports, "ports after restart")
        after = [tagged("after-tcp"), tagged("after-tls"), tagged("after-udp")]
        tcp_send(rs.tcp_port, rv.octet_frame(after[0]))
        tls_send(rs.tls_port, rs.client_context(), rv.octet_frame(after[1]))
        udp_send(rs.udp_port, after[2])
        eq(rs.wait_for("tcp", n_tcp + 1, settle=0.3)[n_tcp:], [after[0].decode()],
           "tcp after restart (old messages kept, none twice)")
        eq(rs.wait_for("tls", 5, settle=0.1)[4:], [after[1].decode()], "tls after restart")
        eq(rs.wait_for("udp", len(udp_msgs) + 2)[-1], after[2].decode(), "udp after restart")
        directory = rs.dir
    assert not os.path.exists(directory), "temp dir left behind"


@check
def rsyslog_quirks():
    """What receivers.py documents about rsyslog 8.2302: NUL -> "#000" (and the trailing LF
    goes), a frame over maxMessageSize is cut and its rest arrives as another message."""
    with rv.Rsyslog(pki=PKI, max_message_size=8192) as rs:
        tcp_send(rs.tcp_port, rv.octet_frame(b"<14>1 - - - - - - nul\x00here\n")
                 + rv.octet_frame(b"<14>1 - - - - - - " + b"L" * 10000)
                 + rv.octet_frame(b"<14>1 - - - - - - marker"))
        got = rs.wait_for("tcp", 4, settle=0.3)
        eq(got[0], "<14>1 - - - - - - nul#000here", "NUL quirk")
        eq((len(got[1]), len(got[2]), got[3]), (8192, 10018 - 8192 - 1, "<14>1 - - - - - - marker"),
           "oversize split (one byte lost at the cut)")
        assert "oversize message" in rs.internal_log(), rs.diagnostics()


def _client_cert_required(driver: str) -> None:
    with rv.Rsyslog(pki=PKI, require_client_cert=True, tls_driver=driver) as rs:
        anon = tagged(f"{driver}-no-cert")
        try:
            tls_send(rs.tls_port, rs.client_context(with_cert=False), rv.octet_frame(anon))
        except (ssl.SSLError, OSError):
            pass  # TLS 1.2 fails in the handshake, TLS 1.3 when the server reads or closes
        with_cert = tagged(f"{driver}-with-cert", "mutual tls")
        tls_send(rs.tls_port, rs.client_context(), rv.octet_frame(with_cert))
        got = rs.wait_for("tls", 1, settle=0.5)
        eq(got, [with_cert.decode()], f"{driver}: only the message with a client cert arrives")
        # plain TCP is unaffected
        tcp_send(rs.tcp_port, rv.octet_frame(tagged("plain")))
        eq(len(rs.wait_for("tcp", 1)), 1, "plain tcp with client-cert TLS")


@check
def rsyslog_client_cert_gtls():
    if "gtls" not in rv.rsyslog_tls_drivers():
        raise AssertionError("rsyslog-gnutls is not installed")
    _client_cert_required("gtls")


@check
def rsyslog_ossl_driver():
    if "ossl" not in rv.rsyslog_tls_drivers():
        print("    (rsyslog-openssl not installed: skipped)")
        return
    _client_cert_required("ossl")
    with rv.Rsyslog(pki=PKI, tls_driver="ossl") as rs:
        m = tagged("ossl-anon", "x" * 70000)
        tls_send(rs.tls_port, rs.client_context(), rv.octet_frame(m))
        eq(rs.wait_for("tls", 1, settle=0.2), [m.decode()], "ossl anonymous TLS, 70 KB")


# --------------------------------------------------------------------------------------------
# parse_rfc5424
# --------------------------------------------------------------------------------------------

@check
def rfc5424_parse_good():
    p = rv.parse_rfc5424(b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - '
                         b'ID47 [exampleSDID@32473 iut="3" eventSource="Application" '
                         b'eventID="1011"][examplePriority@32473 class="high"]')
    eq((p["pri"], p["facility"], p["severity"], p["version"]), (165, 20, 5, 1), "pri")
    eq((p["hostname"], p["app_name"], p["procid"], p["msgid"]),
       ("mymachine.example.com", "evntslog", None, "ID47"), "header")
    eq(p["sd"], {"exampleSDID@32473": {"iut": "3", "eventSource": "Application",
                                       "eventID": "1011"},
                 "examplePriority@32473": {"class": "high"}}, "sd")
    eq((p["msg"], p["bom"]), (None, False), "no MSG")
    eq(p["timestamp_dt"].microsecond, 3000, "fraction")
    p = rv.parse_rfc5424("<0>1 1985-04-12T19:20:50.52-04:00 - - - - - \ufeffhé")
    eq((p["pri"], p["timestamp"], p["hostname"], p["sd"], p["msg"], p["bom"]),
       (0, "1985-04-12T19:20:50.52-04:00", None, {}, "hé", True), "nil fields + BOM")
    eq(p["timestamp_dt"].utcoffset().total_seconds(), -4 * 3600, "offset")
    p = rv.parse_rfc5424(b"<191>1 - - - - - - ")
    eq((p["pri"], p["timestamp"], p["msg"], p["bom"]), (191, None, "", False), "empty MSG")
    p = rv.parse_rfc5424(b"<13>1 2024-02-29T23:59:59.123456+14:00 h a 1 m [a@1 x=\"\" x=\"2\"]"
                         b" \xff raw")
    eq(p["sd"], {"a@1": {"x": "2"}}, "repeated param: last value")
    eq(p["sd_list"], [("a@1", [("x", ""), ("x", "2")])], "sd_list keeps all")
    eq(p["msg_bytes"], b"\xff raw", "MSG-ANY bytes")
    p = rv.parse_rfc5424(r'<14>1 - - - - - [a@1 v="back\\ quote\" br\]"]')
    eq(p["sd"]["a@1"]["v"], 'back\\ quote" br]', "unescaping")
    p = rv.parse_rfc5424(r'<14>1 - - - - - [a@1 v="x\n"] m', strict=False)
    eq(p["sd"]["a@1"]["v"], "x\\n", "lenient: lone backslash kept")
    long_ok = "<14>1 - " + "h" * 255 + " " + "a" * 48 + " " + "p" * 128 + " " + "m" * 32 + " -"
    rv.parse_rfc5424(long_ok)
    # what build_rfc5424 makes parses back
    sd = {"x@1.2.3": {"k": 'v]"\\', "e": ""}, "meta": {"sequenceId": "7"}}
    p = rv.parse_rfc5424(rv.build_rfc5424("hello", sd=sd, procid="42"))
    eq((p["sd"], p["msg"], p["procid"], p["bom"]), (sd, "hello", "42", True), "build round trip")


BAD_RFC5424 = [
    (b"14>1 - - - - - -", "no PRI"),
    (b"<192>1 - - - - - -", "PRI > 191"),
    (b"<014>1 - - - - - -", "PRI leading zero"),
    (b"<1a>1 - - - - - -", "PRI not digits"),
    (b"<14>2 - - - - - -", "version 2"),
    (b"<14>01 - - - - - -", "version 01"),
    (b"<14> - - - - - -", "no version"),
    (b"<14>1 2003-10-11t22:14:15Z - - - - -", "lower-case t"),
    (b"<14>1 2003-10-11T22:14:15z - - - - -", "lower-case z"),
    (b"<14>1 2003-10-11T22:14:15.1234567Z - - - - -", "7 fractional digits"),
    (b"<14>1 2003-10-11T22:14:15. - - - - - -", "empty fraction"),
    (b"<14>1 2003-10-11T22:14:15 - - - - -", "no offset"),
    (b"<14>1 2003-10-11T22:14:60Z - - - - -", "leap second"),
    (b"<14>1 2003-02-30T22:14:15Z - - - - -", "Feb 30"),
    (b"<14>1 2003-13-01T22:14:15Z - - - - -", "month 13"),
    (b"<14>1 2003-10-11T24:00:00Z - - - - -", "hour 24"),
    (b"<14>1 2003-10-11T22:14:15+0100 - - - - -", "offset without colon"),
    (b"<14>1 2003-10-11T22:14:15+24:00 - - - - -", "offset hour 24"),
    (b"<14>1 03-10-11T22:14:15Z - - - - -", "2-digit year"),
    (b"<14>1 2003-10-11 22:14:15Z - - - - -", "space instead of T"),
    (b"<14>1 - " + b"h" * 256 + b" - - - -", "HOSTNAME 256"),
    (b"<14>1 - - " + b"a" * 49 + b" - - -", "APP-NAME 49"),
    (b"<14>1 - - - " + b"p" * 129 + b" - -", "PROCID 129"),
    (b"<14>1 - - - - " + b"m" * 33 + b" -", "MSGID 33"),
    ("<14>1 - hé - - - -".encode(), "non-ASCII hostname"),
    (b"<14>1 -  - - - -", "empty field (two SPs)"),
    (b"<14>1 - - - -", "header too short"),
    (b"<14>1 - - - - -", "no STRUCTURED-DATA"),
    (b"<14>1 - - - - - x", "SD neither - nor ["),
    (b"<14>1 - - - - - -msg", "no SP after nil SD"),
    (b"<14>1 - - - - - [a@1 x=\"1\"]msg", "no SP after SD"),
    (b"<14>1 - - - - - [a@1 x=\"1\"", "SD not closed"),
    (b"<14>1 - - - - - [a@1 x=\"1]", "PARAM-VALUE not closed"),
    (b"<14>1 - - - - - [a@1 x=1]", "unquoted value"),
    (b"<14>1 - - - - - [a@1 x]", "param without ="),
    (b"<14>1 - - - - - [a@1  x=\"1\"]", "two SPs in SD"),
    (b"<14>1 - - - - - [a@1 x=\"a]b\"]", "unescaped ] in value"),
    (b"<14>1 - - - - - [a@1 x=\"a\\nb\"]", "unescaped backslash"),
    (b"<14>1 - - - - - [a@1 x=\"\xff\"]", "non-UTF-8 value"),
    (b"<14>1 - - - - - [a@1][a@1]", "duplicate SD-ID"),
    (b"<14>1 - - - - - [mySD x=\"1\"]", "unregistered SD-ID without @"),
    (b"<14>1 - - - - - [a@b x=\"1\"]", "enterprise number not numeric"),
    (b"<14>1 - - - - - [@1 x=\"1\"]", "SD-ID empty name"),
    (b"<14>1 - - - - - [" + b"a" * 31 + b"@12 x=\"1\"]", "SD-ID 34 chars"),
    (b"<14>1 - - - - - [a@1 " + b"p" * 33 + b"=\"1\"]", "PARAM-NAME 33 chars"),
    (b"<14>1 - - - - - []", "empty SD-ID"),
    (b"<14>1 - - - - - - \xef\xbb\xbf\xff\xfe", "BOM then invalid UTF-8"),
]


@check
def rfc5424_parse_bad():
    for raw, why in BAD_RFC5424:
        reason = expect_raises(ValueError, rv.parse_rfc5424, raw, what=why)
        assert reason, f"{why}: empty reason"


# --------------------------------------------------------------------------------------------
# HTTP receiver + validators
# --------------------------------------------------------------------------------------------

HEC_EVENTS = [{"time": 1700000000.123, "host": "h1", "source": "agentwall",
               "sourcetype": "agentwall:event", "event": {"kind": "tls.data", "n": 1}},
              {"event": "plain string", "fields": {"pid": "42", "tags": ["a", "b"]}},
              {"time": 1700000001, "event": {"kind": "x"}}]


def hec_body(events, sep=b"\n") -> bytes:
    return sep.join(json.dumps(e).encode() for e in events)


BULK_GOOD = (b'{"create":{"_index":"agentwall-events","_id":"a1"}}\n{"kind":"tls.data","n":1}\n'
             b'{"index":{"_index":"agentwall-events"}}\n{"kind":"x","nested":{"a":[1,2]}}\n')


def otlp_logs_body() -> dict:
    return {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "agentwall"}},
                                    {"key": "host.name", "value": {"stringValue": "h1"}}]},
        "scopeLogs": [{"scope": {"name": "agentwall", "version": "0.1"}, "logRecords": [
            {"timeUnixNano": "1700000000123456789", "observedTimeUnixNano": "1700000000123456790",
             "severityNumber": 9, "severityText": "INFO", "body": {"stringValue": "hello"},
             "attributes": [
                 {"key": "pid", "value": {"intValue": "4242"}},
                 {"key": "ratio", "value": {"doubleValue": 0.5}},
                 {"key": "blocked", "value": {"boolValue": False}},
                 {"key": "hosts", "value": {"arrayValue": {"values": [
                     {"stringValue": "a"}, {"intValue": "-3"}]}}},
                 {"key": "ctx", "value": {"kvlistValue": {"values": [
                     {"key": "k", "value": {"stringValue": "v"}}]}}},
                 {"key": "raw", "value": {"bytesValue": "AAE="}}],
             "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "flags": 1}]}]}]}


def otlp_traces_body() -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "agentwall"}}]},
        "scopeSpans": [{"scope": {"name": "agentwall"}, "spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "parentSpanId": "", "name": "POST /v1/chat/completions", "kind": 3,
             "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000500000000",
             "attributes": [{"key": "http.status_code", "value": {"intValue": "200"}}],
             "events": [{"timeUnixNano": "1700000000100000000", "name": "blocked"}],
             "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c",
                        "spanId": "b7ad6b7169203331"}],
             "status": {"code": 2, "message": "denied"}}]}]}]}


@check
def http_receiver_plain():
    with rv.HttpReceiver(hec_token="tok-123") as hr:
        port = hr.port
        # HEC: gzip batch, concatenated objects, right token
        body = hec_body(HEC_EVENTS, sep=b"")
        st, ct, resp = http_request(port, "POST", "/services/collector/event",
                                    gzip.compress(body),
                                    {"Authorization": "Splunk tok-123",
                                     "Content-Encoding": "gzip",
                                     "Content-Type": "application/json"})
        eq((st, json.loads(resp)), (200, {"text": "Success", "code": 0}), "HEC answer")
        eq(ct, "application/json", "HEC content type")
        st, _, resp = http_request(port, "POST", "/services/collector/event", body,
                                   {"Authorization": "Splunk wrong"})
        eq((st, json.loads(resp)["code"]), (401, 4), "HEC wrong token")
        st, _, _ = http_request(port, "POST", "/services/collector/event", body)
        eq(st, 401, "HEC no token")
        reqs = hr.wait_for(3, path_prefix="/services/collector")
        eq([r.status for r in reqs], [200, 401, 401], "recorded statuses")
        eq(reqs[0].body, body, "gzip body decompressed")
        assert reqs[0].raw_body != body and gzip.decompress(reqs[0].raw_body) == body
        eq(reqs[0].header("content-encoding"), "gzip", "header lookup")
        eq(rv.check_hec_body(reqs[0].body), HEC_EVENTS, "check_hec_body events")

        # Elasticsearch bulk, keep-alive + chunked upload on one connection
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        st, ct, resp = http_request(port, "POST", "/_bulk?refresh=false", BULK_GOOD,
                                    {"Content-Type": "application/x-ndjson"}, conn=conn)
        doc = json.loads(resp)
        eq((st, doc["errors"], len(doc["items"])), (200, False, 2), "bulk answer")
        eq(list(doc["items"][0]), ["create"], "bulk item op")
        eq((doc["items"][0]["create"]["_id"], doc["items"][0]["create"]["status"]), ("a1", 201),
           "bulk item")
        st, _, resp = http_request(port, "POST", "/agentwall-events/_bulk", BULK_GOOD, conn=conn,
                                   chunked=True)
        eq(st, 200, "chunked bulk")
        conn.close()
        bulk = hr.requests("/agentwall-events/_bulk")
        eq(len(bulk), 1, "path_prefix filter")
        eq(bulk[0].body, BULK_GOOD, "chunked body reassembled")
        eq(hr.requests("/_bulk")[0].query, {"refresh": ["false"]}, "query parsed")
        pairs = rv.check_bulk_body(BULK_GOOD)
        eq([(list(a)[0], d["kind"]) for a, d in pairs], [("create", "tls.data"), ("index", "x")],
           "bulk pairs")

        # OTLP
        for path, body in (("/v1/logs", otlp_logs_body()), ("/v1/traces", otlp_traces_body())):
            st, ct, resp = http_request(port, "POST", path, json.dumps(body).encode(),
                                        {"Content-Type": "application/json"})
            eq((st, ct, resp), (200, "application/json", b"{}"), f"OTLP {path}")
        recs = rv.check_otlp_logs(hr.requests("/v1/logs")[0].body)
        eq(len(recs), 1, "log records")
        eq(rv.otlp_attrs(recs[0]["attributes"]),
           {"pid": 4242, "ratio": 0.5, "blocked": False, "hosts": ["a", -3],
            "ctx": {"k": "v"}, "raw": b"\x00\x01"}, "otlp_attrs")
        (res_attrs, scope, rec), = rv.check_otlp_logs(hr.requests("/v1/logs")[0].body,
                                                      with_context=True)
        eq((res_attrs["service.name"], scope["name"]), ("agentwall", "agentwall"), "context")
        spans = rv.check_otlp_traces(hr.requests("/v1/traces")[0].body)
        eq(spans[0]["name"], "POST /v1/chat/completions", "span")
        st, _, resp = http_request(port, "GET", "/anything")
        eq((st, resp), (200, b"{}"), "other path")

        # failure injection
        hr.fail_with = 503
        hr.retry_after = 1
        st, _, _ = http_request(port, "POST", "/v1/logs", b"{}")
        eq(st, 503, "fail_with=503")
        eq(hr.requests()[-1].status, 503, "503 recorded")
        hr.fail_with, hr.retry_after = None, None
        eq(http_request(port, "POST", "/v1/logs", b"{}")[0], 200, "back to normal")
        hr.fail(500, times=2)
        eq([http_request(port, "POST", "/_bulk", BULK_GOOD)[0] for _ in range(3)],
           [500, 500, 200], "fail(500, times=2)")

        # custom handler: bulk with a per-item error
        hr.handler = lambda req: (200, {"errors": True, "items": [
            {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}}]}
        ) if req.path == "/_bulk" else None
        eq(json.loads(http_request(port, "POST", "/_bulk", BULK_GOOD)[2])["errors"], True,
           "handler override")
        hr.handler = None

        # outage: stop closes the listener and kept-alive connections; start on the same port
        keep = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        eq(http_request(port, "GET", "/x", conn=keep)[0], 200, "keep-alive before stop")
        hr.stop()
        assert refused(port), "port open after stop()"
        try:
            http_request(port, "GET", "/x", conn=keep)
            raise AssertionError("kept-alive connection still served after stop()")
        except (OSError, http.client.HTTPException):
            pass
        keep.close()
        n_before = len(hr.requests())
        hr.start()
        eq(hr.port, port, "same port after restart")
        eq(http_request(port, "POST", "/v1/traces", b"{}")[0], 200, "after restart")
        eq(len(hr.wait_for(n_before + 1)), n_before + 1, "requests kept across restart")
        eq(len(hr.wait_for(lambda rs: any(r.path == "/v1/traces" for r in rs))) >= 1, True,
           "predicate wait")
        expect_raises(AssertionError, hr.wait_for, 1000, timeout=0.2, what="wait_for timeout")

        # bad gzip is refused and recorded
        st, _, _ = http_request(port, "POST", "/services/collector/event", b"not gzip",
                                {"Content-Encoding": "gzip", "Authorization": "Splunk tok-123"})
        eq(st, 400, "bad gzip")
        assert "decompress" in hr.requests()[-1].error


@check
def http_receiver_tls_curl():
    with rv.HttpReceiver(tls=True, pki=PKI, hec_token="t0k") as hr:
        assert hr.url.startswith("https://")
        gz = os.path.join(PKI.dir, "hec.json.gz")
        body = hec_body(HEC_EVENTS)
        with open(gz, "wb") as f:
            f.write(gzip.compress(body))
        argv = aw.curl_argv(PKI, hr.port, "-X", "POST", "-H", "Authorization: Splunk t0k",
                            "-H", "Content-Encoding: gzip", "-H", "Content-Type: application/json",
                            "--data-binary", f"@{gz}", "-w", "\n%{http_code}",
                            f"https://localhost:{hr.port}/services/collector/event")
        res = aw.run_client(argv)
        out, code = res.stdout.rsplit(b"\n", 1)
        eq((code, json.loads(out)), (b"200", {"text": "Success", "code": 0}), "curl HEC")
        (req,) = hr.wait_for(1)
        assert req.tls
        eq(rv.check_hec_body(req.body), HEC_EVENTS, "HEC over TLS")
        # OTLP with curl, by IP address (IP SAN)
        res = aw.run_client(["curl", "-sS", "--noproxy", "*", "--cacert", hr.ca_path,
                             "-H", "Content-Type: application/json",
                             "--data-binary", json.dumps(otlp_traces_body()),
                             "-D", "-", f"{hr.url}/v1/traces"])
        assert b"content-type: application/json" in res.stdout.lower(), res.describe()
        assert res.stdout.endswith(b"\r\n\r\n{}"), res.describe()
        rv.check_otlp_traces(hr.wait_for(2)[-1].body)
        # 503 through TLS; untrusted client refused
        hr.fail_with = 503
        res = aw.run_client(aw.curl_argv(PKI, hr.port, "-o", "/dev/null", "-w", "%{http_code}",
                                         f"https://localhost:{hr.port}/v1/logs"))
        eq(res.stdout, b"503", "curl 503")
        res = aw.run_client(["curl", "-sS", "--noproxy", "*", f"{hr.url}/v1/logs"], check=False)
        assert res.returncode != 0, "curl without the CA must fail"
        # keep-alive TLS connection (http.client), dropped by stop(); same port after start()
        hr.fail_with = None
        ctx = ssl.create_default_context(cafile=hr.ca_path)
        keep = http.client.HTTPSConnection("localhost", hr.port, context=ctx, timeout=5)
        eq(http_request(hr.port, "POST", "/v1/logs", b"{}", conn=keep)[0], 200, "https keep")
        port = hr.port
        hr.stop()
        try:
            http_request(port, "POST", "/v1/logs", b"{}", conn=keep)
            raise AssertionError("kept-alive TLS connection still served after stop()")
        except (OSError, http.client.HTTPException):
            pass
        keep.close()
        hr.start()
        eq(hr.port, port, "same port")
        keep = http.client.HTTPSConnection("localhost", hr.port, context=ctx, timeout=5)
        eq([http_request(hr.port, "GET", "/", conn=keep)[0] for _ in range(2)], [200, 200],
           "https after restart, keep-alive")
        keep.close()
        eq(len({r.client_port for r in hr.requests()[-2:]}), 1, "both on one connection")


def _bad(fn, body, why, **kw):
    msg = expect_raises(AssertionError, fn, body, what=why, **kw)
    assert msg, why


@check
def validators():
    eq(len(rv.check_hec_body(hec_body(HEC_EVENTS, sep=b"\n") + b"\n")), 3, "newline separated")
    eq(len(rv.check_hec_body(hec_body(HEC_EVENTS, sep=b"\r\n  "))), 3, "whitespace separated")
    for body, why in ((b"", "empty"), (b'{"time": 1}', "no event"),
                      (b'{"event": "x", "time": "1700000000"}', "time as string"),
                      (b'{"event": "x", "host": 1}', "host not string"),
                      (b'{"event": "x", "sourcetype": null}', "sourcetype null"),
                      (b'{"event": ""}', "blank event"), (b'{"event": null}', "null event"),
                      (b'{"event": "x"} [1]', "array"), (b'{"event": "x"}{"event":', "cut"),
                      (b'{"event": "x", "fields": {"a": {"b": 1}}}', "nested field"),
                      (b'{"event": "x", "time": NaN}', "NaN"),
                      (b'{"event": "x", "time": true}', "bool time"),
                      (b'{"event": "\xff"}', "not UTF-8")):
        _bad(rv.check_hec_body, body, f"HEC {why}")

    eq(len(rv.check_bulk_body(b'{"create":{"_id":"1"}}\n{}\n', default_index="idx")), 1,
       "index from the URL")
    for body, why in ((BULK_GOOD[:-1], "no trailing newline"), (b"", "empty"),
                      (b'{"delete":{"_index":"a","_id":"1"}}\n', "delete"),
                      (b'{"update":{"_index":"a","_id":"1"}}\n{"doc":{}}\n', "update"),
                      (b'{"create":{"_id":"1"}}\n{}\n', "no _index"),
                      (b'{"create":{"_index":"Agent"}}\n{}\n', "upper-case index"),
                      (b'{"create":{"_index":"a b"}}\n{}\n', "space in index"),
                      (b'{"create":{"_index":"_a"}}\n{}\n', "index starts with _"),
                      (b'{"create":{"_index":"a","_id":""}}\n{}\n', "empty _id"),
                      (b'{"create":{"_index":"a","_id":5}}\n{}\n', "numeric _id"),
                      (b'{"create":{"_index":"a","foo":1}}\n{}\n', "unknown meta"),
                      (b'{"create":{"_index":"a"},"index":{}}\n{}\n', "two actions"),
                      (b'{"create":{"_index":"a"}}\n[1]\n', "doc not object"),
                      (b'{"create":{"_index":"a"}}\n', "no doc"),
                      (b'{"create":{"_index":"a"}}\n{}\n\n', "blank line"),
                      (b'{"create":{"_index":"a"}}\r\n{}\r\n', "CRLF"),
                      (b'{"create":{"_index":"a"}}\n{"a":1}{"b":2}\n', "two docs on a line")):
        _bad(rv.check_bulk_body, body, f"bulk {why}")

    def mutate_log(fn):
        body = otlp_logs_body()
        fn(body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0], body)
        return json.dumps(body)

    rv.check_otlp_logs(json.dumps(otlp_logs_body()))
    log_cases = [
        (lambda r, b: r.update(timeUnixNano=1700000000123456789), "timeUnixNano as number"),
        (lambda r, b: r.update(timeUnixNano="1.7e18"), "timeUnixNano not decimal"),
        (lambda r, b: r.update(severityNumber="INFO"), "severityNumber string"),
        (lambda r, b: r.update(severityNumber=25), "severityNumber 25"),
        (lambda r, b: r.update(traceId="5B8EFFF798038103D269B633813FC60C"), "upper-case traceId"),
        (lambda r, b: r.update(traceId="AAECAwQFBgcICQoLDA0ODw=="), "base64 traceId"),
        (lambda r, b: r.update(spanId="eee19b7ec3c1b17"), "short spanId"),
        (lambda r, b: r.update(spanId="0000000000000000"), "zero spanId"),
        (lambda r, b: r.update(time_unix_nano="1"), "snake_case key"),
        (lambda r, b: r["attributes"].append({"key": "pid", "value": {"intValue": "1"}}),
         "duplicate key"),
        (lambda r, b: r["attributes"].append({"key": "n", "value": {"intValue": 5}}),
         "intValue number"),
        (lambda r, b: r["attributes"].append({"key": "n",
                                              "value": {"intValue": str(2 ** 63)}}),
         "intValue overflow"),
        (lambda r, b: r["attributes"].append({"key": "d", "value": {"doubleValue": "0.5"}}),
         "doubleValue string"),
        (lambda r, b: r["attributes"].append({"key": "b", "value": {"boolValue": "true"}}),
         "boolValue string"),
        (lambda r, b: r["attributes"].append({"key": "s", "value": {"stringValue": "a",
                                                                     "intValue": "1"}}),
         "two value kinds"),
        (lambda r, b: r["attributes"].append({"key": "s", "value": {}}), "empty AnyValue"),
        (lambda r, b: r["attributes"].append({"key": "s", "value": {"arrayValue": [1]}}),
         "arrayValue not {values}"),
        (lambda r, b: r["attributes"].append({"key": "", "value": {"stringValue": "a"}}),
         "empty key"),
        (lambda r, b: r["attributes"].append({"key": "s", "value": "plain"}), "bare value"),
        (lambda r, b: r.pop("timeUnixNano") and r.pop("observedTimeUnixNano"), "no time"),
        (lambda r, b: b.update(resource_logs=[]), "snake_case top level"),
        (lambda r, b: b["resourceLogs"][0].update(scopeLogs=[]), "empty scopeLogs"),
        (lambda r, b: b["resourceLogs"][0]["scopeLogs"][0].update(logRecords=[]),
         "empty logRecords"),
        (lambda r, b: b["resourceLogs"][0]["resource"].update(droppedAttributesCount="0"),
         "droppedAttributesCount string"),
    ]
    for fn, why in log_cases:
        _bad(rv.check_otlp_logs, mutate_log(fn), f"OTLP logs {why}")
    _bad(rv.check_otlp_logs, "{}", "OTLP logs empty object")
    _bad(rv.check_otlp_logs, json.dumps(otlp_traces_body()), "traces body as logs")

    def mutate_span(fn):
        body = otlp_traces_body()
        fn(body["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
        return json.dumps(body)

    span_cases = [
        (lambda s: s.update(spanId="eee19b7ec3c1b174aa"), "long spanId"),
        (lambda s: s.pop("traceId"), "no traceId"),
        (lambda s: s.update(traceId=""), "empty traceId"),
        (lambda s: s.pop("name"), "no name"),
        (lambda s: s.update(endTimeUnixNano="1"), "end before start"),
        (lambda s: s.update(kind="SPAN_KIND_CLIENT"), "kind as string"),
        (lambda s: s.update(parentSpanId="xyz"), "bad parentSpanId"),
        (lambda s: s.update(status={"code": "STATUS_CODE_ERROR"}), "status code string"),
        (lambda s: s["events"][0].update(timeUnixNano=5), "event time number"),
        (lambda s: s["links"][0].update(spanId="B7AD6B7169203331"), "link spanId upper"),
        (lambda s: s.update(trace_id="5b8efff798038103d269b633813fc60c"), "snake_case"),
    ]
    for fn, why in span_cases:
        _bad(rv.check_otlp_traces, mutate_span(fn), f"OTLP traces {why}")


# --------------------------------------------------------------------------------------------
# TcpSyslogCounter
# --------------------------------------------------------------------------------------------

@check
def tcp_syslog_counter():
    msgs = [tagged(f"c{i}", "x" * (i * 37 % 500)) for i in range(200)]
    msgs[5] = tagged("c5", "multi\nline")
    with rv.TcpSyslogCounter(keep=True) as ctr:
        at200 = ctr.reached(200)
        at203 = ctr.reached(203)
        stream = b"".join(rv.octet_frame(m) for m in msgs)
        with socket.create_connection(("127.0.0.1", ctr.port)) as s:
            for i in range(0, len(stream), 777):  # frames split across reads
                s.sendall(stream[i:i + 777])
                if i % (777 * 8) == 0:
                    time.sleep(0.001)
        assert at200.wait(10), f"200 messages not seen: {ctr.count}"
        assert not at203.is_set()
        lf = [b"<14>1 - - - - - - lf one", b"<14>1 - - - - - - lf two"]
        with socket.create_connection(("127.0.0.1", ctr.port)) as s:
            s.sendall(b"\n".join(lf) + b"\n" + rv.octet_frame(b"<14>1 - - - - - - oc") + b"\n")
        assert ctr.wait_for(203, 10), f"203 messages not seen: {ctr.count}"
        time.sleep(0.1)
        eq(ctr.count, 203, "count")
        eq(ctr.kept, [*msgs, *lf, b"<14>1 - - - - - - oc"], "messages")
        eq(ctr.bytes, sum(map(len, ctr.kept)), "message bytes")
        eq(ctr.empty_frames, 1, "stray LF after an octet-counted frame")
        eq(ctr.connections, 2, "connections")
        eq(ctr.errors, [], "errors")
        with socket.create_connection(("127.0.0.1", ctr.port)) as s:
            s.sendall(b"99999999999 x")
        deadline = time.monotonic() + 5
        while not ctr.errors and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ctr.errors and "octet count" in ctr.errors[0], ctr.errors
        port = ctr.port
    assert refused(port), "counter port open after stop()"


# --------------------------------------------------------------------------------------------

def main() -> int:
    global PKI
    only = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else None
    t0 = time.monotonic()
    passed = failed = 0
    PKI = aw.TestPKI()
    try:
        for fn in CHECKS:
            if only and only not in fn.__name__:
                continue
            t = time.monotonic()
            try:
                fn()
                passed += 1
                print(f"ok    {fn.__name__} ({time.monotonic() - t:.1f}s)", flush=True)
            except Exception:  # noqa: BLE001 -- report and go on
                failed += 1
                print(f"FAIL  {fn.__name__} ({time.monotonic() - t:.1f}s)\n"
                      f"{traceback.format_exc()}", flush=True)
    finally:
        PKI.cleanup()
        rv._close_live()
    print(f"receivers self-test took {time.monotonic() - t0:.1f}s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
