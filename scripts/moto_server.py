#!/usr/bin/env python3
"""Launch moto's server (the AWS emulator) for latency-sentinel's tests.

Runs moto's own WSGI app (the same one its ``moto_server`` entry point runs:
``DomainDispatcherApplication(create_backend_app)`` served by werkzeug with
``MotoRequestHandler``, threaded) behind a small middleware that closes the gaps
between moto 5.x and the current AWS SDK for Rust:

* CloudWatch over Smithy RPC v2 CBOR.  ``aws-sdk-cloudwatch`` >= 1.100 sends
  ``POST /service/GraniteServiceVersion20100801/operation/<Op>`` with
  ``smithy-protocol: rpc-v2-cbor``, ``Content-Type: application/cbor`` and a CBOR
  body (gzip-compressed for PutMetricData when ``Content-Encoding: gzip``).  moto
  5.2 has no CBOR parser or serializer, but its CloudWatch backend speaks the
  awsJson1_0 protocol (botocore's CloudWatch model lists ``json``; moto parses
  and serializes from that model).  The middleware decodes the CBOR, converts it
  shape by shape (botocore's CloudWatch model) into an awsJson1_0 request
  (``X-Amz-Target: GraniteServiceVersion20100801.<Op>``), and converts moto's
  JSON answer back to CBOR with the types the Smithy model demands (doubles as
  CBOR floats, integers as CBOR integers, timestamps as tag 1 epoch seconds,
  blobs as byte strings).  Errors come back as a CBOR map with ``__type`` (the
  absolute shape id, ``com.amazonaws.cloudwatch#<ErrorShape>``) and ``message``,
  the HTTP status moto gave, and the ``x-amzn-query-error`` header of the
  awsQueryCompatible trait (the SDK takes the error code from it).

* X-Ray:
  - GetTraceSummaries: moto returns ``"Users": {}`` in each summary where the
    model has a list; the Rust SDK rejects it.  Rewritten to ``[]``.
  - GetTraceSummaries with a FilterExpression makes moto answer HTTP 500
    ("Not implemented yet").  The FilterExpression is stripped before moto sees
    the request: FILTERING IS THEN NOT APPLIED BY THE EMULATOR, every trace in
    the time window is returned.
  - GetTraceSegmentDestination / UpdateTraceSegmentDestination: moto lacks
    them; answered here.  The destination starts as ``XRay`` (``Status: ACTIVE``),
    or as the value of the environment variable
    ``MOTO_XRAY_DESTINATION`` (``XRay`` or ``CloudWatchLogs``); an
    UpdateTraceSegmentDestination call changes it for the life of the server.

  - PutTraceSegments: a segment sent again with the same id (``in_progress``
    first, then complete, as the SDKs do for long segments) replaces the earlier
    copy in moto's backend (moto would store both and keep the trace unfinished
    for good).  Done by patching moto's ``SegmentCollection.put_segment`` in this
    process, not in the middleware.

* IAM enforcement (moto's ``/moto-api/reset-auth``, or ``INITIAL_NO_AUTH_ACTION_COUNT``):
  moto answers a denied or unsigned call with an XML ``ErrorResponse`` whatever the
  service's protocol; for the JSON protocols (CloudWatch Logs' awsJson1_1, the REST-JSON
  of Lambda and X-Ray) AWS answers JSON with the code in ``__type`` and the
  ``x-amzn-ErrorType`` header, and the Rust SDK finds no code in XML.  While enforcement
  is on, such errors are rewritten to that JSON (same status, code and message).  For STS and IAM
  (awsQuery) moto wraps the error in ``<Errors>`` as EC2 does, where AWS sends
  ``<ErrorResponse><Error>…</Error>``: rewritten too, so an SDK reads the code (an
  ``AccessDenied`` from AssumeRole).

Everything else goes to moto untouched.  (UpdateTraceSegmentDestination answers
``Status: ACTIVE`` at once, where AWS first reports ``PENDING``.)

Known moto 5.2 gaps NOT fixed here (checked with boto3 against this launcher):

* CloudWatch: percentile stats (p95, p99.9, tm99, ...) in GetMetricData make moto
  raise (answered as a 500 InternalServiceFault); GetMetricStatistics drops
  ExtendedStatistics silently; GetMetricData with Dimensions ignores the
  Namespace; GetMetricStatistics without Dimensions also matches dimensioned
  data; buckets start at StartTime (GetMetricData) or at the first datum
  (GetMetricStatistics), not on period boundaries; fractional Counts are
  truncated and each count is stored as one sample; ListMetrics lists a metric
  once per PutMetricData.
* Logs: filterPattern knows only plain terms (every word a case-sensitive
  substring) and one "quoted phrase"; any other pattern ({ $.x = 1 }, ?a ?b,
  -a, [w1, w2], %re%) matches every event.  FilterLogEvents returns events
  grouped by stream unless interleaved=true (AWS always interleaves), ignores
  logStreamNamePrefix, and does not accept logGroupIdentifier.
  DescribeLogGroups ignores logGroupNamePattern.
* Lambda: a function ARN as FunctionName breaks ListAliases (404) and
  ListVersionsByFunction (empty list); ListAliases ignores FunctionVersion and
  MaxItems; ListVersionsByFunction and ListFunctions ignore MaxItems.
* X-Ray: GetTraceSummaries ignores TimeRangeType and Sampling, truncates
  StartTime/EndTime to whole seconds and keeps a trace only when
  StartTime < its first segment's start and its last-started segment's end <
  EndTime; Duration is that span truncated to whole seconds, ResponseTime is
  always 1, HasError/HasFault/HasThrottle are true when the key is present even
  if false.  A trace is finished (listed by GetTraceSummaries, Id set in
  BatchGetTraces) only once its last-started segment has an end_time; until
  then it is absent from GetTraceSummaries and its Id is null in
  BatchGetTraces.  BatchGetTraces returns every document as put;
  UnprocessedTraceIds lists only unknown ids.  No paging anywhere.

Usage::

    python scripts/moto_server.py --host 127.0.0.1 --port 0 --port-file /tmp/moto.port [--verbose]

``--port 0`` picks a free port; the bound port is written to PORT-FILE
(atomically: written to a temporary file, then renamed) once the socket is
listening, so a test can poll for the file.  ``--verbose`` logs one line per
request the middleware translated or answered, and werkzeug's access log, to
stderr.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import gzip
import io
import json
import os
import re
import signal
import struct
import sys
import threading
import time
import uuid
import zlib
from typing import Any, Callable, Iterable

# ---------------------------------------------------------------------------
# CBOR encoding.  cbor2 decodes requests; responses are encoded here so that the
# encoding is exactly what the Smithy model asks for: definite lengths, doubles
# as 64-bit floats (the Rust SDK's decoder rejects an integer where a double is
# modelled), Smithy ``float`` as 32-bit floats (it rejects a 64-bit float there),
# timestamps as tag 1 over a 64-bit float.
# ---------------------------------------------------------------------------


class F32(float):
    """A float to be encoded as a CBOR single-precision float."""


class Tag:
    def __init__(self, tag: int, value: Any) -> None:
        self.tag = tag
        self.value = value


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([(major << 5) | n])
    if n < 0x100:
        return bytes([(major << 5) | 24, n])
    if n < 0x10000:
        return bytes([(major << 5) | 25]) + struct.pack(">H", n)
    if n < 0x100000000:
        return bytes([(major << 5) | 26]) + struct.pack(">I", n)
    return bytes([(major << 5) | 27]) + struct.pack(">Q", n)


def cbor_encode(value: Any) -> bytes:
    out = bytearray()
    _cbor_encode_into(out, value)
    return bytes(out)


def _cbor_encode_into(out: bytearray, v: Any) -> None:
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, Tag):
        out += _cbor_head(6, v.tag)
        _cbor_encode_into(out, v.value)
    elif isinstance(v, F32):
        out.append(0xFA)
        out += struct.pack(">f", float(v))
    elif isinstance(v, float):
        out.append(0xFB)
        out += struct.pack(">d", v)
    elif isinstance(v, int):
        if v >= 0:
            out += _cbor_head(0, v)
        else:
            out += _cbor_head(1, -1 - v)
    elif isinstance(v, str):
        b = v.encode("utf-8")
        out += _cbor_head(3, len(b))
        out += b
    elif isinstance(v, (bytes, bytearray)):
        out += _cbor_head(2, len(v))
        out += v
    elif isinstance(v, (list, tuple)):
        out += _cbor_head(4, len(v))
        for item in v:
            _cbor_encode_into(out, item)
    elif isinstance(v, dict):
        out += _cbor_head(5, len(v))
        for k, item in v.items():
            _cbor_encode_into(out, str(k))
            _cbor_encode_into(out, item)
    else:
        raise TypeError(f"cannot CBOR-encode {type(v).__name__}")


# ---------------------------------------------------------------------------
# Shape-driven conversion between decoded CBOR, awsJson documents and CBOR.
# ---------------------------------------------------------------------------


def _to_epoch(v: Any) -> float:
    """A timestamp in any form moto or a client may use -> epoch seconds."""
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.timezone.utc)
        return v.timestamp()
    if isinstance(v, bool):
        raise ValueError("boolean is not a timestamp")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
        from botocore.utils import parse_timestamp

        return parse_timestamp(v).timestamp()
    # cbor2 leaves tags it does not know as CBORTag(tag, value)
    tag = getattr(v, "tag", None)
    if tag == 1:
        return float(v.value)
    raise ValueError(f"not a timestamp: {v!r}")


def _generic_to_json(v: Any) -> Any:
    """Best effort for members the model does not know (newer SDK than botocore)."""
    if isinstance(v, dict):
        return {str(k): _generic_to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_generic_to_json(x) for x in v]
    if isinstance(v, _dt.datetime):
        return _to_epoch(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if getattr(v, "tag", None) == 1:
        return _to_epoch(v)
    if type(v).__name__ == "UndefinedType":
        return None
    return v


def request_cbor_to_json(v: Any, shape: Any) -> Any:
    """Decoded CBOR input -> the awsJson document moto's JSON parser reads."""
    if v is None or type(v).__name__ == "UndefinedType":
        return None
    if shape is None:
        return _generic_to_json(v)
    t = shape.type_name
    if t == "structure":
        if not isinstance(v, dict):
            raise ValueError(f"{shape.name}: expected a map")
        out = {}
        for k, x in v.items():
            member = shape.members.get(k)
            conv = request_cbor_to_json(x, member) if member is not None else _generic_to_json(x)
            if conv is not None:
                out[k] = conv
        return out
    if t == "list":
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{shape.name}: expected a list")
        return [request_cbor_to_json(x, shape.member) for x in v]
    if t == "map":
        if not isinstance(v, dict):
            raise ValueError(f"{shape.name}: expected a map")
        return {str(k): request_cbor_to_json(x, shape.value) for k, x in v.items()}
    if t == "timestamp":
        return round(_to_epoch(v), 3)
    if t == "blob":
        if isinstance(v, (bytes, bytearray)):
            return base64.b64encode(bytes(v)).decode("ascii")
        return v
    if t in ("double", "float"):
        return float(v)
    if t in ("integer", "long", "short", "byte"):
        return int(v)
    if t == "boolean":
        return bool(v)
    return v


def response_json_to_cbor(v: Any, shape: Any) -> Any:
    """moto's awsJson output -> values typed for the CBOR encoder; None = omit."""
    if v is None or shape is None:
        return None
    t = shape.type_name
    if t == "structure":
        if not isinstance(v, dict):
            return None
        out = {}
        for k, x in v.items():
            member = shape.members.get(k)
            if member is None:
                continue  # not in the model: the SDK would skip it anyway
            conv = response_json_to_cbor(x, member)
            if conv is not None:
                out[k] = conv
        return out
    if t == "list":
        if not isinstance(v, (list, tuple)):
            return None
        items = [response_json_to_cbor(x, shape.member) for x in v]
        return [x for x in items if x is not None]
    if t == "map":
        if not isinstance(v, dict):
            return None
        out = {}
        for k, x in v.items():
            conv = response_json_to_cbor(x, shape.value)
            if conv is not None:
                out[str(k)] = conv
        return out
    if t == "timestamp":
        return Tag(1, float(_to_epoch(v)))
    if t == "blob":
        if isinstance(v, str):
            return base64.b64decode(v)
        return bytes(v)
    if t == "double":
        return float(v)
    if t == "float":
        return F32(float(v))
    if t in ("integer", "long", "short", "byte"):
        return int(v)
    if t == "boolean":
        if isinstance(v, str):
            return v.lower() == "true"
        return bool(v)
    return str(v) if not isinstance(v, str) else v


# ---------------------------------------------------------------------------
# The middleware.
# ---------------------------------------------------------------------------

RPCV2_PATH = re.compile(r"^(?:/.*)?/service/([^/]+)/operation/([^/]+)/?$")

# Smithy service shape name -> (botocore service name, Smithy namespace).
RPCV2_SERVICES = {
    "GraniteServiceVersion20100801": ("cloudwatch", "com.amazonaws.cloudwatch"),
}

XRAY_DESTINATIONS = ("XRay", "CloudWatchLogs")
XRAY_PATHS = {
    "/TraceSummaries",
    "/Traces",
    "/GetTraceSegmentDestination",
    "/UpdateTraceSegmentDestination",
}

# The awsQueryCompatible error codes moto would never produce itself.
_QUERY_ERROR_FALLBACK = {
    "InternalServiceFault": "InternalServiceError",
}


def _credential_scope_service(environ: dict) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    m = re.search(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    return m.group(1).lower() if m else None


def _read_body(environ: dict) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            n = int(length)
        except ValueError:
            n = -1
        if n >= 0:
            return stream.read(n) if n else b""
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


def _decompress(body: bytes, encoding: str) -> bytes:
    for enc in [e.strip().lower() for e in encoding.split(",") if e.strip()][::-1]:
        if enc in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif enc == "deflate":
            body = zlib.decompress(body)
        elif enc == "identity":
            pass
        else:
            raise ValueError(f"unsupported Content-Encoding {enc}")
    return body


def _call(app: Callable, environ: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
        captured["status"] = status
        captured["headers"] = headers
        return lambda data: captured.setdefault("written", []).append(data)

    result = app(environ, start_response)
    try:
        chunks = list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    body = b"".join(captured.get("written", [])) + b"".join(chunks)
    status = int(str(captured.get("status", "500")).split(" ", 1)[0])
    return status, list(captured.get("headers", [])), body


_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


XML_ERROR = re.compile(rb"<Code>([^<]*)</Code>\s*<Message>([^<]*)</Message>", re.S)


def _json_protocol(environ: dict) -> bool:
    """Whether a request is for a service whose errors are JSON (not awsQuery/XML)."""
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("Logs_"):
        return True
    return _credential_scope_service(environ) in ("logs", "lambda", "xray")


def _status_line(code: int) -> str:
    return f"{code} {_REASONS.get(code, 'Status')}"


class SentinelAdapter:
    """WSGI middleware around moto's app; see the module docstring."""

    def __init__(self, app: Callable, verbose: bool = False) -> None:
        self.app = app
        self.verbose = verbose
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        dest = os.environ.get("MOTO_XRAY_DESTINATION", "XRay") or "XRay"
        if dest not in XRAY_DESTINATIONS:
            raise SystemExit(
                f"MOTO_XRAY_DESTINATION must be one of {', '.join(XRAY_DESTINATIONS)}, not {dest!r}"
            )
        self.xray_destination = dest

    # -- helpers -----------------------------------------------------------

    def log(self, msg: str) -> None:
        if self.verbose:
            sys.stderr.write(f"[moto-adapter] {msg}\n")
            sys.stderr.flush()

    def model(self, service: str) -> Any:
        with self._lock:
            if service not in self._models:
                import botocore.session

                self._models[service] = botocore.session.get_session().get_service_model(service)
            return self._models[service]

    # -- dispatch ----------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        from moto import settings

        if settings.INITIAL_NO_AUTH_ACTION_COUNT != float("inf"):
            if _json_protocol(environ):
                return self.json_errors(environ, start_response)
            if _credential_scope_service(environ) in ("sts", "iam"):
                return self.query_errors(environ, start_response)
        return self.dispatch(environ, start_response)

    def query_errors(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Dispatches, then turns moto's EC2-style ``<Errors><Error>`` into the awsQuery
        error AWS sends (``<ErrorResponse><Error>…</Error><RequestId/>``), which the SDKs
        parse for its code (STS refusing an AssumeRole, say)."""
        status, headers, body = _call(self.dispatch, environ)
        m = XML_ERROR.search(body) if status >= 400 and b"<Errors>" in body else None
        if m is None:
            start_response(_status_line(status), headers)
            return [body]
        code, message = m.group(1).decode(), m.group(2).decode()
        self.log(f"XML error {status} {code} -> awsQuery")
        doc = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
            "<RequestId>%s</RequestId></ErrorResponse>" % (code, message, uuid.uuid4())
        ).encode()
        start_response(_status_line(status), [("Content-Type", "text/xml"), ("Content-Length", str(len(doc)))])
        return [doc]

    def json_errors(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Dispatches, then turns an XML ErrorResponse into the JSON error AWS sends."""
        status, headers, body = _call(self.dispatch, environ)
        m = XML_ERROR.search(body) if body.lstrip().startswith(b"<") else None
        if m is None:
            start_response(_status_line(status), headers)
            return [body]
        code, message = m.group(1).decode(), m.group(2).decode()
        self.log(f"XML error {status} {code} -> JSON")
        doc = json.dumps({"__type": code, "message": message}).encode()
        start_response(
            _status_line(status),
            [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code), ("Content-Length", str(len(doc)))],
        )
        return [doc]

    def dispatch(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "POST":
            m = RPCV2_PATH.match(path)
            if m and (
                environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor"
                or environ.get("CONTENT_TYPE", "").lower().startswith("application/cbor")
            ):
                return self.rpcv2_cbor(environ, start_response, m.group(1), m.group(2))
            if path in XRAY_PATHS:
                scope = _credential_scope_service(environ)
                if scope in (None, "xray"):
                    return self.xray(environ, start_response, path)
        return self.app(environ, start_response)

    # -- CloudWatch: Smithy RPC v2 CBOR -> awsJson1_0 -----------------------

    def rpcv2_cbor(
        self, environ: dict, start_response: Callable, service_seg: str, op_name: str
    ) -> Iterable[bytes]:
        import cbor2

        service_shape = service_seg.split(".")[-1]
        started = time.monotonic()
        if service_shape not in RPCV2_SERVICES:
            return self._cbor_error(
                start_response, 404, "smithy.framework#UnknownOperationException",
                f"service {service_seg} is not emulated over rpc-v2-cbor", None,
                f"rpcv2-cbor {service_seg}.{op_name}",
            )
        service, namespace = RPCV2_SERVICES[service_shape]
        model = self.model(service)
        label = f"{service} rpcv2-cbor {op_name}"
        try:
            op = model.operation_model(op_name)
        except Exception:
            return self._cbor_error(
                start_response, 404, f"{namespace}#UnknownOperationException",
                f"unknown operation {op_name}", None, label,
            )

        raw = _read_body(environ)
        encoding = environ.get("HTTP_CONTENT_ENCODING", "")
        try:
            body = _decompress(raw, encoding) if encoding else raw
            decoded = cbor2.loads(body) if body else {}
            doc = request_cbor_to_json(decoded, op.input_shape) if op.input_shape else {}
        except Exception as err:  # malformed request
            return self._cbor_error(
                start_response, 400, f"{namespace}#InvalidParameterValueException",
                f"could not decode rpc-v2-cbor request: {err}", "InvalidParameterValue;Sender",
                label,
            )
        json_body = json.dumps(doc or {}).encode("utf-8")

        inner = dict(environ)
        inner["PATH_INFO"] = "/"
        inner["RAW_URI"] = "/"
        inner["REQUEST_URI"] = "/"
        inner["QUERY_STRING"] = ""
        inner["CONTENT_TYPE"] = "application/x-amz-json-1.0"
        inner["CONTENT_LENGTH"] = str(len(json_body))
        inner["HTTP_X_AMZ_TARGET"] = f"{model.metadata['targetPrefix']}.{op_name}"
        inner["HTTP_ACCEPT"] = "application/x-amz-json-1.0"
        inner["wsgi.input"] = io.BytesIO(json_body)
        inner.pop("HTTP_CONTENT_ENCODING", None)
        inner.pop("HTTP_SMITHY_PROTOCOL", None)
        inner.pop("HTTP_TRANSFER_ENCODING", None)
        inner.pop("wsgi.input_terminated", None)
        if not inner.get("HTTP_AUTHORIZATION"):
            # moto picks the backend from the SigV4 credential scope; an unsigned
            # request (curl, a raw test) gets a scope naming the service.
            signing = model.metadata.get("signingName") or model.metadata["endpointPrefix"]
            inner["HTTP_AUTHORIZATION"] = (
                "AWS4-HMAC-SHA256 Credential=AKIAEMULATOR/20200101/us-east-1/"
                f"{signing}/aws4_request, SignedHeaders=host, Signature=0"
            )

        suffix = f"(gzip {len(raw)}B->{len(body)}B) " if encoding else ""
        try:
            status, headers, out = _call(self.app, inner)
        except Exception as err:  # moto's Flask app runs with debug on: its crashes propagate
            if self.verbose:
                import traceback

                traceback.print_exc(file=sys.stderr)
            return self._cbor_error(
                start_response, 500, f"{namespace}#InternalServiceFault",
                f"moto raised {type(err).__name__}: {err} (not supported by the emulator?)",
                "InternalServiceError;Receiver", label, None, None, suffix,
            )
        hdrs = {k.lower(): v for k, v in headers}
        request_id = hdrs.get("x-amzn-requestid")

        if status == 200:
            try:
                parsed = json.loads(out.decode("utf-8")) if out.strip() else {}
                payload = None
                if op.output_shape is not None:
                    payload = cbor_encode(response_json_to_cbor(parsed, op.output_shape) or {})
            except Exception as err:
                return self._cbor_error(
                    start_response, 500, f"{namespace}#InternalServiceFault",
                    f"emulator could not translate moto's response: {err}",
                    "InternalServiceError;Receiver", label, request_id,
                )
            resp_headers = [("smithy-protocol", "rpc-v2-cbor")]
            if request_id:
                resp_headers.append(("x-amzn-RequestId", request_id))
            if payload is not None:
                resp_headers.append(("Content-Type", "application/cbor"))
                resp_headers.append(("Content-Length", str(len(payload))))
            else:
                payload = b""
                resp_headers.append(("Content-Length", "0"))
            start_response(_status_line(200), resp_headers)
            self.log(
                f"{label} {suffix}-> awsJson1_0 -> 200 ({len(payload)}B cbor, "
                f"{(time.monotonic() - started) * 1000:.0f}ms)"
            )
            return [payload]

        # moto answered an error: re-shape it as an rpc-v2-cbor error.
        type_name, message, members = None, None, {}
        try:
            err_doc = json.loads(out.decode("utf-8"))
            if isinstance(err_doc, dict):
                type_name = err_doc.get("__type") or err_doc.get("code") or err_doc.get("Code")
                message = err_doc.get("message") or err_doc.get("Message")
                members = err_doc
        except Exception:
            text = out.decode("utf-8", "replace")
            code = re.search(r"<Code>([^<]+)</Code>", text)
            msg = re.search(r"<Message>([^<]*)</Message>", text)
            type_name = code.group(1) if code else None
            message = msg.group(1) if msg else re.sub(r"<[^>]+>|\s+", " ", text).strip()[:500]
        short = (type_name or "").split("#")[-1].split(":")[0]
        shape = None
        if short:
            try:
                candidate = model.shape_for(short)
                if candidate.metadata.get("exception"):
                    shape = candidate
            except Exception:
                shape = None
            if shape is None:
                # moto may have used the query error code; find the shape with it
                for es in model.error_shapes:
                    if es.metadata.get("error", {}).get("code") == short:
                        shape, short = es, es.name
                        break
        if not short:
            short = "InternalServiceFault" if status >= 500 else "InvalidParameterValueException"
        query_error = hdrs.get("x-amzn-query-error")
        if not query_error:
            meta = shape.metadata.get("error", {}) if shape is not None else {}
            code = meta.get("code") or _QUERY_ERROR_FALLBACK.get(short, short)
            fault = "Sender" if (meta.get("senderFault") if meta else status < 500) else "Receiver"
            query_error = f"{code};{fault}"
        extra = {}
        if shape is not None:
            converted = response_json_to_cbor(members, shape) or {}
            extra = {k: v for k, v in converted.items() if k.lower() != "message"}
        return self._cbor_error(
            start_response, status, f"{namespace}#{short}", message or short, query_error,
            label, request_id, extra, suffix,
        )

    def _cbor_error(
        self,
        start_response: Callable,
        status: int,
        type_id: str,
        message: str,
        query_error: str | None,
        label: str,
        request_id: str | None = None,
        extra: dict | None = None,
        suffix: str = "",
    ) -> Iterable[bytes]:
        doc = {"__type": type_id}
        doc.update(extra or {})
        doc["message"] = message
        payload = cbor_encode(doc)
        headers = [
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Type", "application/cbor"),
            ("Content-Length", str(len(payload))),
        ]
        if query_error:
            headers.append(("x-amzn-query-error", query_error))
        if request_id:
            headers.append(("x-amzn-RequestId", request_id))
        start_response(_status_line(status), headers)
        self.log(f"{label} {suffix}-> {status} {type_id}: {message[:200]}")
        return [payload]

    # -- X-Ray -------------------------------------------------------------

    def _json_response(self, start_response: Callable, status: int, doc: Any) -> Iterable[bytes]:
        payload = json.dumps(doc).encode("utf-8")
        start_response(
            _status_line(status),
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    def xray(self, environ: dict, start_response: Callable, path: str) -> Iterable[bytes]:
        if path == "/GetTraceSegmentDestination":
            with self._lock:
                dest = self.xray_destination
            self.log(f"xray GetTraceSegmentDestination answered by adapter -> {dest}")
            return self._json_response(start_response, 200, {"Destination": dest, "Status": "ACTIVE"})

        if path == "/UpdateTraceSegmentDestination":
            try:
                req = json.loads(_read_body(environ) or b"{}")
            except ValueError:
                req = {}
            dest = req.get("Destination") if isinstance(req, dict) else None
            if dest not in XRAY_DESTINATIONS:
                return self._json_response(
                    start_response, 400,
                    {"__type": "InvalidRequestException",
                     "message": f"Destination must be one of {', '.join(XRAY_DESTINATIONS)}"},
                )
            with self._lock:
                self.xray_destination = dest
            self.log(f"xray UpdateTraceSegmentDestination answered by adapter -> {dest}")
            return self._json_response(start_response, 200, {"Destination": dest, "Status": "ACTIVE"})

        if path == "/TraceSummaries":
            raw = _read_body(environ)
            note = ""
            try:
                req = json.loads(raw) if raw else {}
            except ValueError:
                req = None
            if isinstance(req, dict) and req.get("FilterExpression") is not None:
                # moto raises "Not implemented yet" (HTTP 500) for any filter
                # expression.  Strip it: the emulator then does NOT filter, it
                # returns every trace in the time window.
                req.pop("FilterExpression")
                raw = json.dumps(req).encode("utf-8")
                note = " FilterExpression stripped (not applied by the emulator)"
            inner = dict(environ)
            inner["wsgi.input"] = io.BytesIO(raw)
            inner["CONTENT_LENGTH"] = str(len(raw))
            inner.pop("HTTP_TRANSFER_ENCODING", None)
            inner.pop("wsgi.input_terminated", None)
            status, headers, out = _call(self.app, inner)
            fixed = 0
            if status == 200:
                try:
                    doc = json.loads(out)
                    for summary in doc.get("TraceSummaries") or []:
                        users = summary.get("Users")
                        if users is not None and not isinstance(users, list):
                            # moto: "Users": {} -- the model says list<TraceUser>
                            summary["Users"] = []
                            fixed += 1
                    out = json.dumps(doc).encode("utf-8")
                except (ValueError, AttributeError):
                    pass
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(out))))
            start_response(_status_line(status), headers)
            self.log(f"xray GetTraceSummaries -> {status}; Users fixed in {fixed} summaries{note}")
            return [out]

        # /Traces (BatchGetTraces) and anything else: moto as is.
        return self.app(environ, start_response)


# ---------------------------------------------------------------------------
# Server.
# ---------------------------------------------------------------------------


def _patch_xray_segment_replace() -> None:
    """Make a re-sent X-Ray segment (same trace, same id) replace the stored copy.

    moto 5.2 inserts every PutTraceSegments document into its trace's sorted
    segment list; an ``in_progress`` segment sent again complete is kept twice,
    and since ``bisect.insort_left`` puts the newer copy before the older one
    (equal start times), the trace's last segment stays open and the trace is
    never finished.  AWS keeps one document per segment id.
    """
    try:
        from moto.xray import models as xray_models
    except ImportError:  # moto without X-Ray: nothing to patch
        return
    collection = xray_models.SegmentCollection
    if getattr(collection.put_segment, "_sentinel_replaces", False):
        return
    original = collection.put_segment

    def put_segment(self: Any, segment: Any) -> None:
        trace = self._traces[segment.trace_id]
        before = len(trace["segments"])
        trace["segments"] = [s for s in trace["segments"] if s.id != segment.id]
        if len(trace["segments"]) != before:
            # Recomputed by moto's own code from the remaining and the new segment.
            trace["finished"] = False
        original(self, segment)

    put_segment._sentinel_replaces = True  # type: ignore[attr-defined]
    collection.put_segment = put_segment


def _write_port_file(path: str, port: int) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(f"{port}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--port-file", help="write the bound port here once listening (atomic rename)")
    parser.add_argument("--verbose", action="store_true", help="log translated requests and access lines to stderr")
    args = parser.parse_args(argv)

    import logging

    from werkzeug.serving import make_server

    try:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    except ImportError:  # older layout
        from moto.moto_server.werkzeug_app import (  # type: ignore[no-redef]
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.ERROR)

    if "MOTO_PORT" not in os.environ and args.port:
        os.environ["MOTO_PORT"] = str(args.port)

    _patch_xray_segment_replace()
    moto_app = DomainDispatcherApplication(create_backend_app)
    moto_app.debug = True  # type: ignore[attr-defined]  (as moto's own moto_server)
    app = SentinelAdapter(moto_app, verbose=args.verbose)

    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.socket.getsockname()[1]
    if "MOTO_PORT" not in os.environ:
        # moto uses it to build URLs that point back at itself
        os.environ["MOTO_PORT"] = str(port)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        _write_port_file(args.port_file, port)
    sys.stderr.write(f"moto_server: listening on http://{args.host}:{port} (pid {os.getpid()})\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
