#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for latency-sentinel's integration tests.

Sits on 127.0.0.1 between the daemon (``aws.endpoint_url`` points here) and moto's server,
and forwards every request untouched (method, path, headers, body; the response's status,
headers and body bytes come back as moto sent them, ``Content-Encoding`` included). On a
seeded share of requests it injects a fault instead:

  throttle  AWS-shaped throttling in the service's own protocol:
              CloudWatch Logs (awsJson1_1, ``X-Amz-Target``): HTTP 400,
                ``{"__type": "ThrottlingException", "message": "Rate exceeded"}``
              Lambda (restJson1): HTTP 429, ``TooManyRequestsException``
              X-Ray (restJson1): HTTP 429, ``ThrottledException``
            each with the ``x-amzn-ErrorType`` header and ``x-amzn-RequestId``
  500       HTTP 500, ``InternalFailure`` in the service's JSON error shape
  503       HTTP 503 with a load balancer's HTML page (no AWS error code at all)
  slow      forwarded, after a delay under the daemon's call timeout (``--slow``)
  stall     held longer than the call timeout (``--stall``), then closed unanswered
  drop      connection closed before any response byte
  cut       moto's status line and headers, half its body, then the connection closed

Control (not forwarded; only the test calls these):

  GET  /__proxy/stats    {"requests": n, "faults": {api: {kind: n}}, "ok": {api: n},
                          "filter_log_events": {log_group: n}}
  POST /__proxy/config   JSON with any of fault_rate, weights ({kind: weight}),
                         force ([[api, kind], ...]: the next requests of api get these
                         faults, in order, before any random one)

Usage::

    python fault_proxy.py --upstream http://127.0.0.1:PORT --port 0 --port-file FILE \
        [--seed N] [--fault-rate 0.35] [--slow 1.2] [--stall 3.0]
"""
import argparse
import http.client
import json
import random
import socket
import sys
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"}

DEFAULT_WEIGHTS = {"throttle": 35, "500": 12, "503": 10, "slow": 15, "stall": 5, "drop": 13, "cut": 10}


class State:
    def __init__(self, seed, fault_rate, slow, stall):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.weights = dict(DEFAULT_WEIGHTS)
        self.force = []  # [(api, kind)]
        self.slow = slow
        self.stall = stall
        self.requests = 0
        self.faults = defaultdict(lambda: defaultdict(int))
        self.ok = defaultdict(int)
        self.filter_by_group = defaultdict(int)

    def choose(self, api):
        """The fault for this request, or None to forward it; decided under the lock so a
        seed gives one sequence of decisions."""
        with self.lock:
            self.requests += 1
            for i, (fapi, kind) in enumerate(self.force):
                if fapi == api:
                    del self.force[i]
                    return kind
            if self.rng.random() >= self.fault_rate:
                return None
            kinds = [k for k, w in self.weights.items() if w > 0]
            if not kinds:
                return None
            return self.rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]

    def count(self, api, kind, group):
        with self.lock:
            if kind is None:
                self.ok[api] += 1
            else:
                self.faults[api][kind] += 1
            if api == "FilterLogEvents" and group:
                self.filter_by_group[group] += 1

    def snapshot(self):
        with self.lock:
            return {
                "requests": self.requests,
                "faults": {a: dict(k) for a, k in self.faults.items()},
                "ok": dict(self.ok),
                "filter_log_events": dict(self.filter_by_group),
            }


def service_of(headers):
    """The signing name from SigV4's credential scope (logs, lambda, xray, ...)."""
    auth = headers.get("Authorization", "")
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
        return scope.split("/")[3]
    except IndexError:
        return ""


def api_of(method, path, headers):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1], "json"
    p = urlsplit(path).path
    if "/aliases" in p:
        return "ListAliases", "rest"
    name = p.strip("/").split("/")[-1] if p.strip("/") else method
    return {"TraceSummaries": "GetTraceSummaries", "Traces": "BatchGetTraces"}.get(name, name), "rest"


def error_payload(service, protocol, kind):
    """(status, headers, body) of an injected AWS error."""
    rid = str(uuid.uuid4())
    if kind == "503":
        body = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>\n"
        return 503, [("Content-Type", "text/html"), ("x-amzn-RequestId", rid)], body
    if kind == "throttle":
        if service == "lambda":
            code, status, extra = "TooManyRequestsException", 429, {"Type": "User", "Reason": "CallerRateLimitExceeded"}
        elif service == "xray":
            code, status, extra = "ThrottledException", 429, {}
        else:
            code, status, extra = "ThrottlingException", 400, {}
        message = "Rate exceeded"
    else:
        code, status, extra, message = "InternalFailure", 500, {}, "We encountered an internal error. Please try again."
    ctype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
    doc = {"__type": code, "message": message}
    doc.update(extra)
    return status, [("Content-Type", ctype), ("x-amzn-RequestId", rid), ("x-amzn-ErrorType", code)], json.dumps(doc).encode()


def make_handler(state, upstream):
    up = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def reply(self, status, headers, body):
            self.send_response_only(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def hang_up(self):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def control(self, body):
            if self.command == "GET" and self.path.startswith("/__proxy/stats"):
                return self.reply(200, [("Content-Type", "application/json")], json.dumps(state.snapshot()).encode())
            if self.command == "POST" and self.path.startswith("/__proxy/config"):
                cfg = json.loads(body or b"{}")
                with state.lock:
                    if "fault_rate" in cfg:
                        state.fault_rate = float(cfg["fault_rate"])
                    if "weights" in cfg:
                        state.weights = {k: float(v) for k, v in cfg["weights"].items()}
                    if "force" in cfg:
                        state.force.extend((a, k) for a, k in cfg["force"])
                return self.reply(200, [("Content-Type", "application/json")], b"{}")
            return self.reply(404, [], b"unknown control path\n")

        def handle_any(self):
            body = self.read_body()
            if self.path.startswith("/__proxy/"):
                return self.control(body)
            api, protocol = api_of(self.command, self.path, self.headers)
            service = service_of(self.headers)
            group = None
            if api == "FilterLogEvents":
                try:
                    group = json.loads(body).get("logGroupName")
                except ValueError:
                    pass
            kind = state.choose(api)
            state.count(api, kind, group)
            if kind in ("throttle", "500", "503"):
                return self.reply(*error_payload(service, protocol, kind))
            if kind == "drop":
                return self.hang_up()
            if kind == "stall":
                time.sleep(state.stall)
                return self.hang_up()
            if kind == "slow":
                time.sleep(state.slow * (0.5 + 0.5 * random.random()))
            status, headers, data = self.forward(body)
            if kind == "cut":
                self.send_response_only(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(max(len(data), 2)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                return self.hang_up()
            self.reply(status, headers, data)

        def forward(self, body):
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if body or self.command in ("POST", "PUT", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
                return resp.status, out, data
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--slow", type=float, default=1.2, help="longest 'slow' delay, seconds (keep under aws.call_timeout)")
    ap.add_argument("--stall", type=float, default=3.0, help="'stall' hold, seconds (make it longer than aws.call_timeout)")
    args = ap.parse_args()
    state = State(args.seed, args.fault_rate, args.slow, args.stall)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((args.host, args.port), make_handler(state, args.upstream))
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        import os
        os.replace(tmp, args.port_file)
    print(f"fault proxy on 127.0.0.1:{port} -> {args.upstream}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
