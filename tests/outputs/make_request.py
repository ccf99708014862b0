#!/usr/bin/env python3
"""Builds an ExportLogsServiceRequest with the official opentelemetry-proto
classes for the round-trip test: --count records over two resources and
scopes, with every kind of value ringway can carry back (strings, ints,
doubles, bools, arrays, maps, nested), severities, ids and flags. Writes the
serialized request to --request and, per record, the JSON line the receiver
would write for it ({"resource", "scope", "record"} as MessageToDict gives
them) to --expected.
"""
import argparse
import json

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def value(v):
    out = AnyValue()
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, int):
        out.int_value = v
    elif isinstance(v, float):
        out.double_value = v
    elif isinstance(v, str):
        out.string_value = v
    elif isinstance(v, list):
        out.array_value.values.extend(value(x) for x in v)
    elif isinstance(v, dict):
        out.kvlist_value.values.extend(KeyValue(key=k, value=value(x)) for k, x in v.items())
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--request", required=True)
    parser.add_argument("--expected", required=True)
    args = parser.parse_args()
    request = ExportLogsServiceRequest()
    groups = [
        ({"service.name": "api", "host.cpus": 4}, ("my.lib", "1.0")),
        ({"service.name": "db", "replica": True}, ("other.lib", "")),
    ]
    expected = []
    per_group = (args.count + 1) // 2
    n = 0
    for resource_attrs, (scope_name, scope_version) in groups:
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(
            KeyValue(key=k, value=value(v)) for k, v in resource_attrs.items())
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = scope_name
        scope_logs.scope.version = scope_version
        for _ in range(per_group):
            if n == args.count:
                break
            record = scope_logs.log_records.add()
            record.time_unix_nano = 1_700_000_000_000_000_000 + n * 1_000_003
            record.observed_time_unix_nano = 1_700_000_000_500_000_000 + n
            record.severity_number = [1, 5, 9, 13, 17, 21][n % 6]
            record.severity_text = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"][n % 6]
            if n % 5 == 4:
                record.body.CopyFrom(value({"event": "structured", "n": n, "ok": n % 2 == 0,
                                            "list": [1, "two", 3.5, [], {}]}))
            elif n % 7 == 6:
                pass  # no body
            else:
                record.body.string_value = 'record %d "quoted" \\ tab\t nl\n é 😀' % n
            record.attributes.extend([
                KeyValue(key="n", value=value(n)),
                KeyValue(key="negative", value=value(-n - 1)),
                KeyValue(key="big", value=value(2**62 + n)),
                KeyValue(key="ratio", value=value(n / 8 + 0.001)),
                KeyValue(key="whole", value=value(float(n))),
                KeyValue(key="flag", value=value(n % 3 == 0)),
                KeyValue(key="path", value=value("/v1/items/%d?x=%d" % (n, n * n))),
                KeyValue(key="nested", value=value({"a": {"b": [n, {"c": "deep"}]}})),
                KeyValue(key="empty", value=AnyValue()),
            ])
            if n % 4 != 3:
                record.trace_id = bytes((n + i) % 256 for i in range(16))
                record.span_id = bytes((n * 7 + i + 1) % 256 for i in range(8))
                record.flags = 1
            expected.append({
                "resource": MessageToDict(resource_logs.resource),
                "scope": MessageToDict(scope_logs.scope),
                "record": MessageToDict(record),
            })
            n += 1
    with open(args.request, "wb") as f:
        f.write(request.SerializeToString())
    with open(args.expected, "w", encoding="utf-8") as f:
        for entry in expected:
            f.write(json.dumps(entry) + "\n")


if __name__ == "__main__":
    main()
