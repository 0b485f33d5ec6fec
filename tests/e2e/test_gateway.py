"""test_gateway.py - the gateway's own behaviour: routing errors, limits,
content types, request ids, CORS, health and metrics, timeouts."""
import json
import re
import socket
import threading
import time

from common import check, expect, fresh


def test_unknown_path_and_method(stack):
    r = expect(stack.request("GET", "/nope"), 404)
    check(r.header("content-type") == "application/json" and "error" in r.json(), r)
    r = expect(stack.request("DELETE", "/api/items/1"), 405)
    check(r.header("allow") == "GET, PUT", r.headers)
    check("error" in r.json(), r)


def test_trailing_slash(stack):
    expect(stack.request("GET", "/api/items/"), 200)
    expect(stack.request("GET", "/api/items/?archived=false"), 200)


def raw_response(out):
    """Status, headers (lower-case names) and body of one raw HTTP/1.1 answer."""
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in
                   (line.partition(":") for line in lines[1:]))
    return int(lines[0].split()[1]), headers, body


def test_body_limits_and_types(stack):
    out = stack.raw(b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b"\r\nContent-Length: 1048577\r\nX-Request-Id: big-1\r\n"
                    b"Origin: http://localhost:3000\r\n\r\n" + b"x" * 1024)
    status, headers, body = raw_response(out)
    check(status == 413 and headers.get("content-type") == "application/json", out[:300])
    check(json.loads(body) == {"error": "The request body is larger than 1048576 bytes."}, body)
    check(headers.get("x-request-id") == "big-1" and
          headers.get("access-control-allow-origin") == "http://localhost:3000", headers)
    # The error body of the route's API: the library's is Chalice's.
    out = stack.raw(b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b"\r\nContent-Length: 2000000\r\n\r\n")
    status, headers, body = raw_response(out)
    check(status == 413 and set(json.loads(body)) == {"Code", "Message"}, out[:300])
    check(re.fullmatch(r"[0-9a-f]{32}", headers.get("x-request-id", "")), headers)
    r = stack.request("POST", "/api/items", "x" * (1024 * 1024),
                      {"Content-Type": "application/json"})
    expect(r, 400)  # exactly the limit reaches the service, which refuses bad JSON
    r = expect(stack.request("POST", "/api/items", "hello", {"Content-Type": "text/plain"}),
               415)
    check("JSON" in r.json()["error"], r)
    expect(stack.request("POST", "/api/items", '{"a":1}',
                         {"Content-Type": "application/json; charset=utf-8"}), 400)


def test_malformed_http(stack):
    out = stack.raw(b"GARBAGE\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400"), out[:80])
    out = stack.raw(b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b"\r\nContent-Length: 12abc\r\n\r\n{}")
    status, headers, body = raw_response(out)
    check(status == 400 and headers.get("content-type") == "application/json" and
          "malformed" in json.loads(body)["error"], out[:300])
    out = stack.raw(b"GET /api/items HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400"), out[:80])
    expect(stack.request("GET", "/livez"), 200)


def test_request_id(stack):
    r = stack.request("GET", "/api/items", headers={"X-Request-Id": "abc-123"})
    check(r.header("x-request-id") == "abc-123", r.headers)
    r = stack.request("GET", "/api/items")
    check(re.fullmatch(r"[0-9a-f]{32}", r.header("x-request-id") or ""), r.headers)
    r = stack.request("GET", "/api/items", headers={"X-Request-Id": "bad id!"})
    check(re.fullmatch(r"[0-9a-f]{32}", r.header("x-request-id") or ""), r.headers)
    stack.request("GET", "/api/items/1", headers={"X-Request-Id": "trace-me-42"})
    logs = stack.tail_logs(200)
    check(logs.count("trace-me-42") >= 2, "the id is in the gateway's and tracker's logs")


def test_cors(stack):
    r = stack.request("GET", "/api/items", headers={"Origin": "http://localhost:3000"})
    check(r.header("access-control-allow-origin") == "http://localhost:3000", r.headers)
    check(r.header("vary") == "Origin", r.headers)
    r = stack.request("GET", "/api/items")
    check(r.header("access-control-allow-origin") == "*" and r.header("vary") is None,
          r.headers)
    r = expect(stack.request("GET", "/nope", headers={"Origin": "http://a"}), 404)
    check(r.header("access-control-allow-origin") == "http://a", r.headers)
    r = expect(stack.request("OPTIONS", "/api/items", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}), 200)
    check(r.header("access-control-allow-methods") ==
          "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT", r.headers)
    check(r.header("access-control-allow-headers") == "content-type", r.headers)
    check(r.header("access-control-allow-origin") == "http://localhost:3000", r.headers)
    check(r.header("allow") == "GET, POST, OPTIONS", r.headers)
    r = expect(stack.request("OPTIONS", "/api/items/3:archive",
                             headers={"Origin": "http://x", "Access-Control-Request-Method":
                                      "PUT"}), 200)
    check(r.header("access-control-allow-headers") is None, r.headers)
    expect(stack.request("OPTIONS", "/nope"), 404)


def test_health_and_metrics(stack):
    expect(stack.request("GET", "/livez"), 200)
    r = expect(stack.request("GET", "/readyz"), 200)
    check(r.json()["status"] == "ok", r)
    stack.request("GET", "/api/items")
    r = expect(stack.request("GET", "/metrics"), 200)
    check(r.header("content-type").startswith("text/plain; version=0.0.4"), r.headers)
    check('gateway_http_requests_total{route="GET /api/items",code="200"}' in r.body, r.body)
    check("gateway_http_request_duration_seconds_bucket{le=\"+Inf\"}" in r.body, r.body)
    check(r.body.endswith("\n"), "ends with a newline")
    for line in r.body.splitlines():
        check(line.startswith("#") or re.fullmatch(
            r"[a-z_]+(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? [0-9.e+-]+", line), line)


@fresh(GATEWAY_TIMEOUT_MS=300)
def test_slow_service_gives_504(stack):
    s = stack.psql_session()
    try:
        s.stdin.write("BEGIN; LOCK TABLE work_items IN ACCESS EXCLUSIVE MODE;\n"
                      "SELECT 'locked';\n")
        s.stdin.flush()
        check(s.stdout.readline().strip() == "locked", "lock taken")
        t0 = time.monotonic()
        r = stack.request("GET", "/api/items")
        took = time.monotonic() - t0
        expect(r, 504)
        check(0.25 <= took < 1.5, "504 after about 300 ms, took %.3fs" % took)
    finally:
        s.stdin.write("ROLLBACK;\n\\q\n")
        s.stdin.flush()
        s.wait(10)
    expect(stack.request("GET", "/api/items"), 200)


def test_many_concurrent_requests(stack):
    errors = []

    def worker():
        try:
            for _ in range(50):
                r = stack.request("GET", "/api/items?archived=true")
                if r.status != 200:
                    errors.append(r)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(not errors, errors[:3])


class NatsPeer:
    """A bare NATS client over the text protocol, for playing a responder."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.f = self.sock.makefile("rb")
        self.f.readline()  # INFO
        self.send(b'CONNECT {"verbose":false,"headers":true}\r\n')

    def send(self, data):
        self.sock.sendall(data)

    def sync(self):
        """Returns once the server has processed everything sent so far."""
        self.send(b"PING\r\n")
        while self.f.readline().strip() != b"PONG":
            pass

    def next_msg(self):
        """(subject, reply, headers, payload) of the next MSG/HMSG."""
        while True:
            words = self.f.readline().split()
            if not words:
                raise AssertionError("connection closed")
            if words[0] == b"PING":
                self.send(b"PONG\r\n")
            if words[0] in (b"MSG", b"HMSG"):
                break
        hlen = int(words[-2]) if words[0] == b"HMSG" else 0
        total = int(words[-1])
        data = self.f.read(total + 2)[:total]
        nfixed = 4 if words[0] == b"HMSG" else 3
        reply = words[3].decode() if len(words) > nfixed + 1 else None
        headers = {}
        for line in data[:hlen].split(b"\r\n")[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.decode()] = v.strip().decode()
        return words[1].decode(), reply, headers, data[hlen:]

    def close(self):
        self.sock.close()


@fresh
def test_replies_to_reply_to_and_to_the_reply_subject(stack):
    """The gateway asks for answers on Reply-To (taken on its loop) and still
    takes them on the NATS reply subject, from a responder that knows only
    standard NATS."""
    stack.stop("inventory")
    peer = NatsPeer(stack.nats_port)
    peer.send(b"SUB inventory.instance.get inventory 1\r\n")
    peer.sync()
    for mode in ("reply-to", "reply subject"):
        got = {}

        def respond():
            subject, reply, headers, _ = peer.next_msg()
            got.update(headers=headers, reply=reply)
            to = headers["Reply-To"] if mode == "reply-to" else reply
            body = b'{"mode": "%s"}' % mode.encode()
            hdr = b"NATS/1.0\r\nStatus: 200\r\n\r\n"
            peer.send(b"HPUB %s %d %d\r\n%s%s\r\n"
                      % (to.encode(), len(hdr), len(hdr) + len(body), hdr, body))
            peer.sync()

        t = threading.Thread(target=respond)
        t.start()
        r = expect(stack.request("GET", "/ec2/i-1", timeout=5), 200)
        t.join(5)
        check(r.json() == {"mode": mode}, r)
        inbox, token = got["reply"].rsplit(".", 1)
        check(got["headers"].get("Reply-To") == "%s.r.%s" % (inbox, token), got)
    peer.close()


def test_services_answer_on_reply_to(stack):
    peer = NatsPeer(stack.nats_port)
    peer.send(b"SUB _INBOX.t.> 1\r\n")
    hdr = b"NATS/1.0\r\nMethod: GET\r\nPath: /api/items\r\nX-Request-Id: t1\r\n" \
          b"Reply-To: _INBOX.t.fast\r\n\r\n"
    peer.send(b"HPUB tracker.items.list _INBOX.t.plain %d %d\r\n%s\r\n"
              % (len(hdr), len(hdr), hdr))
    subject, _, headers, body = peer.next_msg()
    check(subject == "_INBOX.t.fast", subject)
    check(body.startswith(b"["), body)
    # And without Reply-To, on the NATS reply subject.
    hdr = hdr.replace(b"Reply-To: _INBOX.t.fast\r\n", b"")
    peer.send(b"HPUB tracker.items.list _INBOX.t.plain %d %d\r\n%s\r\n"
              % (len(hdr), len(hdr), hdr))
    subject, _, headers, body = peer.next_msg()
    check(subject == "_INBOX.t.plain", subject)
    peer.close()


@fresh(GATEWAY_MAX_LARGE_REPLIES=1000)
def test_replies_in_parts(stack):
    """A reply over NATS's max_payload comes as numbered parts (Bus-Part
    "i/n", Bus-Size on part 1, the other headers with part 1): the gateway
    puts them back together, answers 502 when one is missing, out of order or
    the sizes disagree, and when the whole is over GATEWAY_MAX_LARGE_REPLIES;
    a failed reply's bytes are released for the next."""
    stack.stop("inventory")
    peer = NatsPeer(stack.nats_port)
    peer.send(b"SUB inventory.instance.get inventory 1\r\n")
    peer.sync()

    def hpub(to, headers, body):
        hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                          for k, v in headers) + b"\r\n"
        peer.send(b"HPUB %s %d %d\r\n%s%s\r\n"
                  % (to.encode(), len(hdr), len(hdr) + len(body), hdr, body))

    def ask(parts, size=None):
        """GET /ec2/i-1 answered with 'parts': (part header, body) pairs."""
        def respond():
            _, _, headers, _ = peer.next_msg()
            for i, (part, body) in enumerate(parts):
                h = [("Bus-Part", part)]
                if i == 0:
                    total = sum(len(b) for _, b in parts) if size is None else size
                    h = [("Status", "201"), ("Content-Type", "text/plain")] + h + \
                        [("Bus-Size", str(total))]
                hpub(headers["Reply-To"], h, body)
            peer.sync()

        t = threading.Thread(target=respond)
        t.start()
        r = stack.request("GET", "/ec2/i-1", timeout=5)
        t.join(5)
        return r

    r = expect(ask([("1/3", b"abc" * 100), ("2/3", "é€".encode() * 50), ("3/3", b"xyz")]),
               201)
    check(r.body == (b"abc" * 100 + "é€".encode() * 50 + b"xyz").decode(), r)
    check(r.header("content-type") == "text/plain", r.headers)
    for parts, size in (([("1/3", b"a"), ("3/3", b"c")], None),  # part 2 missing
                        ([("2/2", b"b"), ("1/2", b"a")], None),  # out of order
                        ([("1/2", b"a"), ("2/2", b"bc")], 2),    # more than announced
                        ([("1/2", b"a"), ("2/2", b"b")], 3),     # less than announced
                        ([("1/2", b"a"), ("2/3", b"b")], None),  # counts disagree
                        ([("x/2", b"a"), ("2/2", b"b")], None)):
        r = expect(ask(parts, size), 502)
        check(list(r.json().values()) == ["The service sent an invalid reply."], (parts, size, r))
    r = expect(ask([("1/2", b"a" * 600), ("2/2", b"b" * 401)]), 502)
    check("too large" in r.json()["error_message"], r)
    # Nothing is held from the refused ones: the bound's whole 1000 bytes fit.
    r = expect(ask([("1/2", b"a" * 600), ("2/2", b"b" * 400)]), 201)
    check(r.body == "a" * 600 + "b" * 400, r)
    check(stack.alive("gateway"), "the gateway is still up")
    peer.close()
