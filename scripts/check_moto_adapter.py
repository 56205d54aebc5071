#!/usr/bin/env python3
"""Self-test of scripts/moto_server.py (moto + the latency-sentinel adapter).

Run it with the test venv's python (``scripts/test-env.sh python``):

    "$(scripts/test-env.sh python)" scripts/check_moto_adapter.py [--verbose]

It starts the launcher on port 0, waits for its port file, then checks:

* CloudWatch over Smithy RPC v2 CBOR, by raw HTTP (urllib + cbor2): a
  gzip-compressed PutMetricData with Values/Counts arrays, Dimensions, Unit,
  Timestamp, StorageResolution and a StatisticValues datum; GetMetricStatistics
  (SampleCount, Sum, ...), GetMetricData, ListMetrics; the error shape.
* The same data read back by botocore's own rpc-v2-cbor client (an independent
  CBOR parser) and by boto3's default (awsJson) client.
* X-Ray: segments put with boto3 ``put_trace_segments``; GetTraceSummaries by
  raw HTTP, with a FilterExpression, must answer 200 with ``Users`` lists;
  BatchGetTraces; Get/UpdateTraceSegmentDestination.
* CloudWatch Logs: create_log_group / put_log_events / filter_log_events.
* Lambda: publish_version / create_alias / list_aliases / list_versions_by_function.
* Every JSON response the boto3 clients above receive is type-checked against the
  botocore model (a list where the model says list, a number where it says
  double, ...), the way the Rust SDK's strict deserializers would.

Prints one line per check and "N passed, N failed"; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid

import boto3
import botocore.session
import cbor2
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "AKIDSENTINELTEST", "sentinel-test-secret"

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, cond: bool, detail: str = "") -> bool:
    RESULTS.append((name, bool(cond), detail))
    print(f"{'ok  ' if cond else 'FAIL'} {name}{'' if cond or not detail else ' -- ' + detail}", flush=True)
    return bool(cond)


TYPE_PROBLEMS: list[str] = []
TYPE_CHECKED: list[str] = []


def _type_walk(v, shape, path: str) -> None:
    """Flag JSON values whose type a strict client (the Rust SDK) would reject."""
    if v is None:
        return
    t = shape.type_name
    if t in ("integer", "long"):
        good = isinstance(v, int) and not isinstance(v, bool)
    elif t in ("double", "float"):
        good = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif t == "timestamp":
        good = isinstance(v, (int, float, str)) and not isinstance(v, bool)
    else:
        good = isinstance(v, {"structure": dict, "map": dict, "list": list, "string": str,
                              "boolean": bool, "blob": str}.get(t, object))
    if not good:
        TYPE_PROBLEMS.append(f"{path}: model says {t} ({shape.name}), got {json.dumps(v)[:60]}")
        return
    if t == "structure":
        for k, x in v.items():
            if k in shape.members:
                _type_walk(x, shape.members[k], f"{path}.{k}")
    elif t == "list":
        for i, x in enumerate(v):
            _type_walk(x, shape.member, f"{path}[{i}]")
    elif t == "map":
        for k, x in v.items():
            _type_walk(x, shape.value, f"{path}{{{k}}}")


def _type_hook(operation_model, response_dict, **_kw) -> None:
    body = response_dict.get("body") or b""
    if operation_model.output_shape is None or response_dict.get("status_code", 200) >= 300:
        return
    try:
        doc = json.loads(body) if body.strip() else None
    except ValueError:
        return  # not JSON (XML / CBOR): parsed strictly by botocore itself
    if doc is None:
        return
    name = f"{operation_model.service_model.service_name}.{operation_model.name}"
    TYPE_CHECKED.append(name)
    _type_walk(doc, operation_model.output_shape, name)


def aws(service: str, base: str):
    """A boto3 client on the emulator whose JSON responses are type-checked against the model."""
    client = boto3.client(service, region_name=REGION, endpoint_url=base,
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    client.meta.events.register("before-parse", _type_hook)
    return client


class Raw:
    """Signed raw HTTP to the emulator."""

    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, service: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        req = AWSRequest("POST", self.base + path, data=body, headers=dict(headers))
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, REGION).add_auth(req)
        hdrs = {k: v for k, v in req.headers.items()}
        ureq = urllib.request.Request(self.base + path, data=body, headers=hdrs, method="POST")
        try:
            with urllib.request.urlopen(ureq, timeout=30) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def cbor(self, op: str, doc: dict, compress: bool = False) -> tuple[int, dict, bytes]:
        body = cbor2.dumps(doc)
        headers = {
            "Content-Type": "application/cbor",
            "Accept": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "x-amzn-query-mode": "true",
        }
        if compress:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return self.post(
            "monitoring", f"/service/GraniteServiceVersion20100801/operation/{op}", body, headers
        )


def start_server(verbose: bool) -> tuple[subprocess.Popen, str, str]:
    tmp = tempfile.mkdtemp(prefix="moto-check-")
    port_file = os.path.join(tmp, "port")
    cmd = [sys.executable, os.path.join(HERE, "moto_server.py"), "--host", "127.0.0.1",
           "--port", "0", "--port-file", port_file]
    if verbose:
        cmd.append("--verbose")
    log = open(os.path.join(tmp, "server.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT if not verbose else None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            port = open(port_file).read().strip()
            if port:
                return proc, f"http://127.0.0.1:{port}", tmp
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    log.close()
    sys.stderr.write(open(os.path.join(tmp, "server.log")).read())
    raise SystemExit("moto_server.py did not write its port file")


def cbor_cloudwatch_client(base: str):
    """botocore's own rpc-v2-cbor client for CloudWatch (the model forced to CBOR)."""
    model = copy.deepcopy(
        botocore.session.get_session().get_component("data_loader").load_service_model("cloudwatch", "service-2"))
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    data_dir = tempfile.mkdtemp(prefix="cbor-model-")
    version_dir = os.path.join(data_dir, "cloudwatch", model["metadata"]["apiVersion"])
    os.makedirs(version_dir)
    with open(os.path.join(version_dir, "service-2.json"), "w") as fh:
        json.dump(model, fh)
    session = botocore.session.get_session()  # fresh: its loader has cached nothing yet
    session.get_component("data_loader").search_paths.insert(0, data_dir)
    client = session.create_client(
        "cloudwatch", region_name=REGION, endpoint_url=base,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1}),
    )
    return client


def check_cloudwatch(base: str) -> None:
    raw = Raw(base)
    ns = f"Sentinel/Check{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=30)
    dims = [{"Name": "Operation", "Value": "Bedrock.InvokeModel"}]

    # PutMetricData, gzip-compressed, with Values/Counts and StatisticValues.
    status, headers, body = raw.cbor("PutMetricData", {
        "Namespace": ns,
        "MetricData": [
            {
                "MetricName": "Latency",
                "Dimensions": dims,
                "Timestamp": cbor2.CBORTag(1, now.timestamp() + 0.25),
                "Values": [0.25, 1.5, 3.0],
                "Counts": [2.0, 1.0, 3.0],
                "Unit": "Seconds",
                "StorageResolution": 60,
            },
            {
                "MetricName": "Aggregated",
                "Timestamp": cbor2.CBORTag(1, now.timestamp()),
                "StatisticValues": {"SampleCount": 4.0, "Sum": 10.0, "Minimum": 1.0, "Maximum": 4.0},
                "Unit": "Milliseconds",
            },
        ],
    }, compress=True)
    check("cbor PutMetricData (gzip) -> 200", status == 200, f"{status} {body[:300]!r}")
    check("cbor PutMetricData response has smithy-protocol: rpc-v2-cbor",
          headers.get("smithy-protocol") == "rpc-v2-cbor", str(headers))
    check("cbor PutMetricData (no output shape) has an empty body", body == b"", repr(body[:100]))

    window = {"StartTime": cbor2.CBORTag(1, (now - dt.timedelta(minutes=5)).timestamp()),
              "EndTime": cbor2.CBORTag(1, (now + dt.timedelta(minutes=5)).timestamp())}

    status, headers, body = raw.cbor("GetMetricStatistics", {
        "Namespace": ns, "MetricName": "Latency", "Dimensions": dims, "Period": 600,
        "Statistics": ["SampleCount", "Sum", "Average", "Minimum", "Maximum"], **window,
    })
    check("cbor GetMetricStatistics -> 200 application/cbor",
          status == 200 and headers.get("content-type") == "application/cbor"
          and headers.get("smithy-protocol") == "rpc-v2-cbor", f"{status} {headers} {body[:300]!r}")
    doc = cbor2.loads(body) if status == 200 else {}
    points = doc.get("Datapoints") or []
    check("GetMetricStatistics returns one datapoint", len(points) == 1, repr(doc))
    if points:
        p = points[0]
        check("SampleCount == 6 (Counts 2+1+3), encoded as a CBOR float",
              isinstance(p.get("SampleCount"), float) and p["SampleCount"] == 6.0, repr(p))
        check("Sum == 11.0 (0.25*2 + 1.5 + 3*3), CBOR float",
              isinstance(p.get("Sum"), float) and abs(p["Sum"] - 11.0) < 1e-9, repr(p))
        check("Minimum 0.25 / Maximum 3.0 / Average 11/6",
              p.get("Minimum") == 0.25 and p.get("Maximum") == 3.0
              and abs(p.get("Average", 0) - 11.0 / 6) < 1e-9, repr(p))
        check("Datapoint Timestamp is a CBOR tag-1 time",
              isinstance(p.get("Timestamp"), dt.datetime), repr(p.get("Timestamp")))
        check("Datapoint Unit is Seconds", p.get("Unit") == "Seconds", repr(p))
    # Raw bytes: tag 1 (0xc1) followed by a double (0xfb).
    check("timestamps are encoded as tag 1 + float64 (c1 fb ...)", b"\xc1\xfb" in body, body.hex()[:120])

    status, _, body = raw.cbor("GetMetricStatistics", {
        "Namespace": ns, "MetricName": "Aggregated", "Period": 600,
        "Statistics": ["SampleCount", "Sum", "Minimum", "Maximum"], **window,
    })
    doc = cbor2.loads(body) if status == 200 else {}
    pts = doc.get("Datapoints") or [{}]
    check("StatisticValues datum reads back (SampleCount 4, Sum 10, Min 1, Max 4)",
          status == 200 and pts[0].get("SampleCount") == 4.0 and pts[0].get("Sum") == 10.0
          and pts[0].get("Minimum") == 1.0 and pts[0].get("Maximum") == 4.0, f"{status} {doc!r}")

    status, _, body = raw.cbor("GetMetricData", {
        "MetricDataQueries": [{
            "Id": "q1",
            "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Latency", "Dimensions": dims},
                           "Period": 600, "Stat": "Sum"},
            "ReturnData": True,
        }],
        "ScanBy": "TimestampAscending",
        **window,
    })
    doc = cbor2.loads(body) if status == 200 else {}
    res = (doc.get("MetricDataResults") or [{}])[0]
    check("cbor GetMetricData -> Sum 11.0 as float, Timestamps as tag-1 times",
          status == 200 and res.get("Values") == [11.0] and isinstance(res["Values"][0], float)
          and all(isinstance(t, dt.datetime) for t in res.get("Timestamps") or [None])
          and res.get("StatusCode") == "Complete", f"{status} {doc!r}")

    status, _, body = raw.cbor("ListMetrics", {"Namespace": ns})
    doc = cbor2.loads(body) if status == 200 else {}
    names = sorted((m.get("MetricName"), tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
                   for m in doc.get("Metrics", []))
    check("cbor ListMetrics lists both metrics with dimensions",
          names == [("Aggregated", ()), ("Latency", (("Operation", "Bedrock.InvokeModel"),))],
          f"{status} {doc!r}")

    # Errors.
    status, headers, body = raw.cbor("GetMetricStatistics", {
        "Namespace": ns, "MetricName": "Latency", "Period": 60, **window})
    err = cbor2.loads(body) if body else {}
    check("cbor error: 400, __type = absolute shape id, message, x-amzn-query-error",
          status == 400
          and err.get("__type") == "com.amazonaws.cloudwatch#InvalidParameterCombinationException"
          and "Statistics" in (err.get("message") or "")
          and headers.get("x-amzn-query-error") == "InvalidParameterCombination;Sender"
          and headers.get("smithy-protocol") == "rpc-v2-cbor"
          and headers.get("content-type") == "application/cbor",
          f"{status} {headers} {err!r}")
    # Something moto cannot do (a percentile in GetMetricData makes moto raise): still an
    # rpc-v2-cbor answer, never werkzeug's HTML 500 page.
    status, headers, body = raw.cbor("GetMetricData", {
        "MetricDataQueries": [{"Id": "p", "MetricStat": {
            "Metric": {"Namespace": ns, "MetricName": "Latency", "Dimensions": dims},
            "Period": 600, "Stat": "p95"}}], **window})
    err = cbor2.loads(body) if body else {}
    check("cbor: a moto crash comes back as a CBOR error (or moto now supports it)",
          headers.get("smithy-protocol") == "rpc-v2-cbor"
          and (status == 200 or (status == 500 and err.get("__type") == "com.amazonaws.cloudwatch#InternalServiceFault")),
          f"{status} {err!r}")
    status, headers, body = raw.cbor("NoSuchOperation", {})
    err = cbor2.loads(body) if body else {}
    check("cbor unknown operation -> 404 with __type",
          status == 404 and str(err.get("__type", "")).endswith("#UnknownOperationException"),
          f"{status} {err!r}")

    # botocore's own rpc-v2-cbor client reads what was written.
    try:
        cw = cbor_cloudwatch_client(base)
        check("botocore client really uses rpc-v2-cbor",
              cw.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor",
              cw.meta.service_model.resolved_protocol)
        cw.put_metric_data(Namespace=ns, MetricData=[{
            "MetricName": "ViaBotocoreCbor", "Values": [2.0, 4.0], "Counts": [1.0, 1.0], "Unit": "Seconds",
            "Timestamp": now}])
        out = cw.get_metric_statistics(Namespace=ns, MetricName="ViaBotocoreCbor", Period=600,
                                       StartTime=now - dt.timedelta(minutes=5),
                                       EndTime=now + dt.timedelta(minutes=5),
                                       Statistics=["SampleCount", "Sum"])
        dps = out.get("Datapoints") or [{}]
        check("botocore cbor client: put + GetMetricStatistics (SampleCount 2, Sum 6)",
              dps[0].get("SampleCount") == 2.0 and dps[0].get("Sum") == 6.0
              and isinstance(dps[0].get("Timestamp"), dt.datetime), repr(out))
        out = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=dims, Period=600,
                                       StartTime=now - dt.timedelta(minutes=5),
                                       EndTime=now + dt.timedelta(minutes=5),
                                       Statistics=["SampleCount", "Sum"])
        dps = out.get("Datapoints") or [{}]
        check("botocore cbor client reads the raw-CBOR data (SampleCount 6, Sum 11)",
              dps[0].get("SampleCount") == 6.0 and dps[0].get("Sum") == 11.0, repr(out))
        # > 10 KiB of CBOR: botocore gzip-compresses PutMetricData itself (requestcompression).
        big = [{"MetricName": "Bulk", "Values": [float(v) for v in range(150)], "Timestamp": now}
               for _ in range(20)]
        cw.put_metric_data(Namespace=ns, MetricData=big)
        out = cw.get_metric_statistics(Namespace=ns, MetricName="Bulk", Period=600,
                                       StartTime=now - dt.timedelta(minutes=5),
                                       EndTime=now + dt.timedelta(minutes=5),
                                       Statistics=["SampleCount", "Sum"])
        dps = out.get("Datapoints") or [{}]
        check("botocore cbor client: 20x150-value PutMetricData (sent gzip) -> SampleCount 3000",
              dps[0].get("SampleCount") == 3000.0 and dps[0].get("Sum") == 20 * sum(range(150)), repr(out))
        try:
            cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Period=60,
                                     StartTime=now - dt.timedelta(minutes=5),
                                     EndTime=now + dt.timedelta(minutes=5))
            check("botocore cbor client gets a modelled error", False, "no error raised")
        except cw.exceptions.InvalidParameterCombinationException as e:
            check("botocore cbor client gets a modelled error (InvalidParameterCombinationException)",
                  True, str(e))
        except Exception as e:  # noqa: BLE001
            check("botocore cbor client gets a modelled error", False, f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001
        check("botocore cbor client", False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")

    # boto3's default client (awsJson, straight to moto) sees the same data.
    cwj = aws("cloudwatch", base)
    out = cwj.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=dims, Period=600,
                                    StartTime=now - dt.timedelta(minutes=5),
                                    EndTime=now + dt.timedelta(minutes=5), Statistics=["SampleCount", "Sum"])
    dps = out.get("Datapoints") or [{}]
    check("boto3 (awsJson) reads the CBOR-written data (SampleCount 6, Sum 11)",
          dps[0].get("SampleCount") == 6.0 and dps[0].get("Sum") == 11.0, repr(out))


def xray_ids(start: float) -> str:
    return f"1-{int(start):08x}-{uuid.uuid4().hex[:24]}"


def check_xray(base: str) -> None:
    raw = Raw(base)
    xr = aws("xray", base)
    t0 = time.time() - 60
    trace_id = xray_ids(t0)
    root = {"name": "orders-api", "id": uuid.uuid4().hex[:16], "trace_id": trace_id,
            "start_time": t0, "end_time": t0 + 1.25,
            "origin": "AWS::Lambda::Function",
            "http": {"response": {"status": 200}},
            "subsegments": [{"name": "Bedrock", "id": uuid.uuid4().hex[:16],
                             "start_time": t0 + 0.1, "end_time": t0 + 1.1, "namespace": "aws",
                             "aws": {"operation": "InvokeModel"}}]}
    child = {"name": "orders-worker", "id": uuid.uuid4().hex[:16], "trace_id": trace_id,
             "parent_id": root["id"], "start_time": t0 + 0.2, "end_time": t0 + 0.9}
    out = xr.put_trace_segments(TraceSegmentDocuments=[json.dumps(root), json.dumps(child)])
    check("xray put_trace_segments (boto3): nothing unprocessed",
          out.get("UnprocessedTraceSegments") == [], repr(out))

    body = json.dumps({"StartTime": t0 - 60, "EndTime": time.time() + 60,
                       "FilterExpression": 'service("orders-api")', "Sampling": False}).encode()
    status, headers, resp = raw.post("xray", "/TraceSummaries", body, {"Content-Type": "application/json"})
    doc = json.loads(resp) if status == 200 else {}
    summaries = doc.get("TraceSummaries") or []
    check("raw GetTraceSummaries with FilterExpression -> 200 (expression stripped)",
          status == 200, f"{status} {resp[:300]!r}")
    check("GetTraceSummaries finds the trace", any(s.get("Id") == trace_id for s in summaries), repr(doc))
    check("every TraceSummary has Users as a list",
          bool(summaries) and all(isinstance(s.get("Users"), list) for s in summaries), repr(summaries))

    out = xr.get_trace_summaries(StartTime=t0 - 60, EndTime=time.time() + 60)
    check("boto3 GetTraceSummaries finds the trace",
          any(s.get("Id") == trace_id for s in out.get("TraceSummaries", [])), repr(out))
    out = xr.batch_get_traces(TraceIds=[trace_id])
    segs = (out.get("Traces") or [{}])[0].get("Segments") or []
    docs = [json.loads(s["Document"]) for s in segs]
    check("BatchGetTraces returns both segment documents as put",
          sorted(d["id"] for d in docs) == sorted([root["id"], child["id"]])
          and any(d.get("subsegments") for d in docs), repr(out))

    out = xr.get_trace_segment_destination()
    expected = os.environ.get("MOTO_XRAY_DESTINATION", "XRay") or "XRay"
    check(f"GetTraceSegmentDestination -> {expected}/ACTIVE",
          out.get("Destination") == expected and out.get("Status") == "ACTIVE", repr(out))
    out = xr.update_trace_segment_destination(Destination="CloudWatchLogs")
    out2 = xr.get_trace_segment_destination()
    check("UpdateTraceSegmentDestination(CloudWatchLogs) sticks",
          out.get("Destination") == "CloudWatchLogs" and out2.get("Destination") == "CloudWatchLogs",
          f"{out!r} {out2!r}")
    xr.update_trace_segment_destination(Destination=expected)


def check_logs(base: str) -> None:
    logs = aws("logs", base)
    group = f"/aws/lambda/sentinel-check-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="2026/01/01/[$LATEST]abc")
    now_ms = int(time.time() * 1000)
    messages = [
        'START RequestId: r1 Version: $LATEST',
        '{"level":"INFO","msg":"TIMING","operation":"Bedrock.InvokeModel","duration_ms":812}',
        'REPORT RequestId: r1\tDuration: 1234.56 ms\tBilled Duration: 1235 ms',
    ]
    events = [{"timestamp": now_ms - 3000 + i, "message": m} for i, m in enumerate(messages)]
    out = logs.put_log_events(logGroupName=group, logStreamName="2026/01/01/[$LATEST]abc", logEvents=events)
    check("logs put_log_events accepted", "rejectedLogEventsInfo" not in out or not out["rejectedLogEventsInfo"],
          repr(out))
    out = logs.filter_log_events(logGroupName=group, startTime=now_ms - 60000, endTime=now_ms + 60000)
    got = [(e["timestamp"], e["message"]) for e in out.get("events", [])]
    check("logs filter_log_events returns the events (timestamp, message) in order",
          got == [(e["timestamp"], e["message"]) for e in events], repr(got))
    out = logs.filter_log_events(logGroupName=group, filterPattern="REPORT",
                                 startTime=now_ms - 60000, endTime=now_ms + 60000)
    check("logs filter_log_events filterPattern=REPORT",
          [e["message"] for e in out.get("events", [])] == [messages[2]], repr(out.get("events")))


def check_lambda(base: str) -> None:
    import io
    import zipfile

    iam = aws("iam", base)
    lam = aws("lambda", base)
    role = iam.create_role(RoleName=f"sentinel-check-{uuid.uuid4().hex[:6]}",
                           AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(event, context):\n    return 1\n")
    name = f"sentinel-check-{uuid.uuid4().hex[:6]}"
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
                        Code={"ZipFile": buf.getvalue()})
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="PROD", FunctionVersion=v1)
    lam.create_alias(FunctionName=name, Name="Dev", FunctionVersion="$LATEST")
    aliases = sorted((a["Name"], a["FunctionVersion"]) for a in lam.list_aliases(FunctionName=name)["Aliases"])
    check("lambda publish_version / create_alias / list_aliases",
          aliases == [("Dev", "$LATEST"), ("PROD", v1)], repr(aliases))
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]
    check("lambda list_versions_by_function", versions == ["$LATEST", v1], repr(versions))
    conf = lam.get_function_configuration(FunctionName=name, Qualifier="PROD")
    check("lambda get_function_configuration(Qualifier=PROD) resolves the version",
          conf.get("Version") == v1, repr(conf.get("Version")))


def main() -> int:
    parser = argparse.ArgumentParser(description="self-test of scripts/moto_server.py")
    parser.add_argument("--verbose", action="store_true", help="let the server log to stderr")
    args = parser.parse_args()
    proc, base, tmp = start_server(args.verbose)
    print(f"moto_server.py pid {proc.pid} at {base}", flush=True)
    try:
        for part in (check_cloudwatch, check_xray, check_logs, check_lambda):
            try:
                part(base)
            except Exception as e:  # noqa: BLE001
                check(part.__name__, False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        check(f"{len(TYPE_CHECKED)} JSON responses ({', '.join(sorted(set(TYPE_CHECKED)))}) "
              "match the model's types", bool(TYPE_CHECKED) and not TYPE_PROBLEMS, "; ".join(TYPE_PROBLEMS))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    passed = sum(1 for _, ok, _ in RESULTS if ok)
    failed = len(RESULTS) - passed
    if failed and not args.verbose:
        log = os.path.join(tmp, "server.log")
        if os.path.exists(log):
            sys.stderr.write("--- server log (tail) ---\n")
            sys.stderr.write("".join(open(log).readlines()[-60:]))
    print(f"check_moto_adapter: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
