"""Writes realistic Lambda log traffic into moto's server with boto3, and returns what a
correct collector must store: {"env|function|operation|source": count}.

Used by the Rust integration tests (through `Moto::boto`). Every format the tailer reads
appears: the seed's print(json.dumps(...)) lines in TEXT mode, the Python runtime prefix,
JSON log format records (platform.start/report, app records with `message` strings),
Powertools logger lines with an alias-qualified function_arn, EMF, and junk.
"""
import io
import json
import time
import uuid
import zipfile
from collections import Counter

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _zip(body):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lambda_function.py", body)
    return buf.getvalue()


def setup_function(lam, iam, name):
    """Creates NAME with version 1 behind PROD and version 2 behind Dev."""
    try:
        role = iam.create_role(RoleName="lambda-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        }))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="lambda-role")["Role"]["Arn"]
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="lambda_function.handler",
                        Code={"ZipFile": _zip("def handler(e, c):\n    return 1\n")})
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="PROD", FunctionVersion=v1)
    lam.update_function_code(FunctionName=name, ZipFile=_zip("def handler(e, c):\n    return 2\n"))
    v2 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="Dev", FunctionVersion=v2)
    return {"PROD": v1, "Dev": v2}


def stream_name(version, day="2026/11/22"):
    return f"{day}/[{version}]{uuid.uuid4().hex}"


def seed(event_type, abbr, **kw):
    d = {"level": "INFO", "event_type": event_type, "function_name": abbr}
    d.update(kw)
    return json.dumps(d)


class Writer:
    def __init__(self, logs):
        self.logs = logs
        self.expected = Counter()

    def put(self, group, stream, lines, start_ms):
        try:
            self.logs.create_log_group(logGroupName=group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        try:
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        events = [{"timestamp": start_ms + i, "message": m} for i, m in enumerate(lines)]
        self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def expect(self, env, function, operation, source, n=1):
        self.expected[f"{env}|{function}|{operation}|{source}"] += n

    # --- one invocation in each format -------------------------------------------------
    def text_invocation(self, function, abbr, env, version, stream, start_ms, bedrock_s, cold):
        rid = str(uuid.uuid4())
        init = "\tInit Duration: 412.50 ms" if cold else ""
        lines = [
            f"START RequestId: {rid} Version: {version}\n",
            seed("START", abbr, message="Function started"),
            seed("TIMING", abbr, metric="BedrockCallDuration", value_sec=bedrock_s),
            f"[INFO]\t2026-11-22T10:00:00.000Z\t{rid}\t" + seed("TIMING", abbr, metric="SecretsManagerDuration", value_sec=0.031),
            seed("END", abbr, message="Function completed", total_function_duration=bedrock_s + 0.3),
            f"END RequestId: {rid}\n",
            f"REPORT RequestId: {rid}\tDuration: {(bedrock_s + 0.3) * 1000:.2f} ms\tBilled Duration: 3126 ms\tMemory Size: 1024 MB\tMax Memory Used: 102 MB{init}\t\n"
            f"XRAY TraceId: 1-{int(start_ms / 1000):08x}-{uuid.uuid4().hex[:24]}\tSegmentId: 31255c3b19bd3637\tSampled: true\n",
        ]
        self.put(f"/aws/lambda/{function}", stream, lines, start_ms)
        for op, src in [("BedrockCallDuration", "logs"), ("SecretsManagerDuration", "logs"),
                        ("total_function_duration", "logs"), ("Lambda.Duration", "report")]:
            self.expect(env, function, op, src)
        if cold:
            self.expect(env, function, "Lambda.InitDuration", "report")
        return rid

    def json_invocation(self, function, abbr, env, version, stream, start_ms, cold):
        rid = str(uuid.uuid4())
        metrics = {"durationMs": 1233.96, "billedDurationMs": 1698, "memorySizeMB": 256, "maxMemoryUsedMB": 123}
        if cold:
            metrics["initDurationMs"] = 463.512
        lines = [
            json.dumps({"time": "2026-11-22T07:30:28.235Z", "type": "platform.start",
                        "record": {"requestId": rid, "version": version}}),
            json.dumps({"timestamp": "2026-11-22T07:30:29.443Z", "level": "INFO", "requestId": rid, "logger": "root",
                        "message": seed("TIMING", abbr, metric="DynamoDBPutDuration", value_sec=0.042)}),
            json.dumps({"time": "2026-11-22T07:30:29.470Z", "type": "platform.report",
                        "record": {"requestId": rid, "metrics": metrics, "status": "success"}}),
        ]
        self.put(f"/aws/lambda/{function}", stream, lines, start_ms)
        self.expect(env, function, "DynamoDBPutDuration", "logs")
        self.expect(env, function, "Lambda.Duration", "report")
        if cold:
            self.expect(env, function, "Lambda.InitDuration", "report")

    def powertools_and_emf(self, function, env, version, stream, start_ms):
        rid = str(uuid.uuid4())
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:{env}"
        lines = [
            f"START RequestId: {rid} Version: {version}\n",
            json.dumps({"level": "INFO", "location": "handler:62",
                        "message": {"event_type": "TIMING", "metric": "ConnectCallDuration", "value_sec": 1.25},
                        "timestamp": "2026-11-22 17:45:15,695+0000", "service": "atlas", "cold_start": False,
                        "function_name": function, "function_memory_size": "256", "function_arn": arn,
                        "function_request_id": rid, "xray_trace_id": "1-66312e29-264cecca790badd378afa449"}),
            json.dumps({"_aws": {"Timestamp": start_ms, "CloudWatchMetrics": [{"Namespace": "Atlas", "Dimensions": [["service"]],
                        "Metrics": [{"Name": "SalesforceLatency", "Unit": "Milliseconds"}, {"Name": "Calls", "Unit": "Count"}]}]},
                        "service": "atlas", "SalesforceLatency": [120.0, 135.5], "Calls": [1.0]}),
            f"END RequestId: {rid}\n",
            f"REPORT RequestId: {rid}\tDuration: 1500.00 ms\tBilled Duration: 1500 ms\tMemory Size: 256 MB\tMax Memory Used: 90 MB\tStatus: timeout\n",
        ]
        self.put(f"/aws/lambda/{function}", stream, lines, start_ms)
        self.expect(env, function, "ConnectCallDuration", "logs")
        self.expect(env, function, "SalesforceLatency", "emf", 2)
        self.expect(env, function, "Lambda.Duration", "report")

    def junk(self, function, stream, start_ms):
        lines = [
            "just an ordinary application log line",
            seed("TIMING", "X", metric="BedrockCallDuration", value_sec="abc"),
            '{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDur',
            '{"level": "INFO", "event_type": "TIMING", "metric": "BedrockCallDuration", "value_sec": NaN}',
            '{"level": "INFO", "event_type": "TIMING", "metric": "BedrockCallDuration", "value_sec": -1.5}',
        ]
        self.put(f"/aws/lambda/{function}", stream, lines, start_ms)
        return 4  # rejected lines


def write_phase(logs, versions, start_ms, n, bedrock_s=2.5, cold=True):
    """n invocations per (function, env) in each format; returns the Writer."""
    w = Writer(logs)
    for env in ("PROD", "Dev"):
        v = versions["GenerateDynamicScenarioHandler"][env]
        s = stream_name(v)
        for i in range(n):
            w.text_invocation("GenerateDynamicScenarioHandler", "GDSH", env, v, s, start_ms + i * 100, bedrock_s, cold and i == 0)
        v = versions["InvokeOutboundCallHandler"][env]
        s = stream_name(v)
        for i in range(n):
            if env == "Dev":
                w.json_invocation("InvokeOutboundCallHandler", "IOCH", env, v, s, start_ms + i * 100, cold and i == 0)
            else:
                w.powertools_and_emf("InvokeOutboundCallHandler", env, v, s, start_ms + i * 100)
    return w
