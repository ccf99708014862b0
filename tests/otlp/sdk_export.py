#!/usr/bin/env python3
"""Exports log records to an OTLP/HTTP endpoint with the official OpenTelemetry
Python SDK (opentelemetry-sdk + opentelemetry-exporter-otlp-proto-http), the
way an instrumented application does: LoggerProvider -> BatchLogRecordProcessor
-> OTLPLogExporter.

Record i has body "<prefix>-<i>", a severity from SEVERITIES[i % 4], the
attributes {"i": i, "kind": "test", "ratio": 0.5, "ok": True} (plus "pad" with
--pad), and every 10th record carries a span context (trace id
TRACE_HIGH << 64 | (i + 1), span id i + 1, sampled).

Client-side loss is counted, not assumed away: every export() call of the
exporter (after the exporter's own retries) is recorded as success or failure
with its record count, and records the batch processor never handed to the
exporter (queue overflow) are counted as queue_dropped. The last stdout line
is one JSON object:
  {"emitted":N,"exported_ok":n,"export_failed":m,"queue_dropped":d,
   "export_calls":c,"failed_calls":f,"retries_logged":r}
The exit code is 0 whenever that line is printed; the caller judges the counts.

The SDK's own log messages (WARNING and up) go to stderr, each prefixed
"sdk_export.py: "; a retry the exporter schedules (after a 429, 503, ...) is
printed as "sdk_export.py: exporter retry: ..." the moment it is decided, and
counted in "retries_logged". That count is a lower bound: the SDK's own
DuplicateFilter drops a message repeated within the same 20 s window, but the
first retry of a run is always printed.
"""

import argparse
import json
import logging
import os
import sys
import threading
import time

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    set_span_in_context,
)

SEVERITIES = [
    (SeverityNumber.DEBUG, "DEBUG"),
    (SeverityNumber.INFO, "INFO"),
    (SeverityNumber.WARN, "WARN"),
    (SeverityNumber.ERROR, "ERROR"),
]
TRACE_HIGH = 0x5B8EFFF798038103


class CountingExporter(LogRecordExporter):
    """Wraps the real exporter and records the outcome of every export()."""

    def __init__(self, inner):
        self.inner = inner
        self.lock = threading.Lock()
        self.exported_ok = 0
        self.export_failed = 0
        self.export_calls = 0
        self.failed_calls = 0

    def export(self, batch):
        try:
            result = self.inner.export(batch)
        except Exception as error:  # counted as a failure, never hidden
            print(f"sdk_export.py: export raised {error!r}", file=sys.stderr)
            result = LogRecordExportResult.FAILURE
        with self.lock:
            self.export_calls += 1
            if result == LogRecordExportResult.SUCCESS:
                self.exported_ok += len(batch)
            else:
                self.export_failed += len(batch)
                self.failed_calls += 1
        return result

    def force_flush(self, timeout_millis=30_000):
        return self.inner.force_flush(timeout_millis)

    def shutdown(self):
        self.inner.shutdown()


class SdkLogEcho(logging.Handler):
    """Echoes the SDK's warnings to stderr at once and counts export retries."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.retries = 0

    def emit(self, record):
        message = record.getMessage()
        # opentelemetry-exporter-otlp 1.45.2 logs "Transient error ... retrying in Ns."
        if "retrying in" in message:
            self.retries += 1
            print(f"sdk_export.py: exporter retry: {message}", file=sys.stderr, flush=True)
        else:
            print(f"sdk_export.py: {record.levelname} {record.name}: {message}",
                  file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="e.g. http://127.0.0.1:4318/v1/logs")
    parser.add_argument("--count", type=int, required=True, help="records to emit")
    parser.add_argument("--prefix", default="record", help="body is PREFIX-<i>")
    parser.add_argument("--gzip", action="store_true", help="Content-Encoding: gzip")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="exporter deadline per batch in seconds, retries included")
    parser.add_argument("--schedule-delay-ms", type=float, default=100.0)
    parser.add_argument("--batch", type=int, default=512, help="max_export_batch_size")
    parser.add_argument("--pad", type=int, default=0, help="add a 'pad' attribute of this many bytes")
    parser.add_argument("--host-name", default="ringway-test-host")
    parser.add_argument("--certificate-file", help="CA file that verifies an https endpoint")
    parser.add_argument("--client-certificate-file", help="client certificate for mutual TLS")
    parser.add_argument("--client-key-file", help="client key for mutual TLS")
    parser.add_argument("--header", action="append", default=[],
                        help="'Name: Value' sent with every request (repeatable)")
    args = parser.parse_args()

    echo = SdkLogEcho()
    logging.getLogger("opentelemetry").addHandler(echo)

    if args.certificate_file:
        # requests lets these variables override a session's own CA file
        # (the exporter's certificate_file): drop them so it is used.
        for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            os.environ.pop(variable, None)
    headers = dict(header.split(": ", 1) for header in args.header)
    exporter = OTLPLogExporter(
        endpoint=args.endpoint,
        certificate_file=args.certificate_file,
        client_certificate_file=args.client_certificate_file,
        client_key_file=args.client_key_file,
        headers=headers or None,
        timeout=args.timeout,
        compression=Compression.Gzip if args.gzip else Compression.NoCompression,
    )
    counting = CountingExporter(exporter)
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "sdk-test", "host.name": args.host_name})
    )
    processor = BatchLogRecordProcessor(
        counting,
        schedule_delay_millis=args.schedule_delay_ms,
        max_export_batch_size=args.batch,
        # Larger than the record count: the processor's queue never overflows.
        max_queue_size=max(2048, args.count + args.batch),
    )
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("ringway.sdk_test", version="1.0.0")

    pad = "p" * args.pad
    for i in range(args.count):
        severity_number, severity_text = SEVERITIES[i % 4]
        attributes = {"i": i, "kind": "test", "ratio": 0.5, "ok": True}
        if pad:
            attributes["pad"] = pad
        context = None
        if i % 10 == 0:
            span = NonRecordingSpan(
                SpanContext(
                    trace_id=(TRACE_HIGH << 64) | (i + 1),
                    span_id=i + 1,
                    is_remote=False,
                    trace_flags=TraceFlags(TraceFlags.SAMPLED),
                )
            )
            context = set_span_in_context(span)
        now = time.time_ns()
        logger.emit(
            timestamp=now,
            observed_timestamp=now,
            context=context,
            severity_number=severity_number,
            severity_text=severity_text,
            body=f"{args.prefix}-{i}",
            attributes=attributes,
        )

    provider.force_flush()
    provider.shutdown()
    with counting.lock:
        handed = counting.exported_ok + counting.export_failed
        print(json.dumps({
            "emitted": args.count,
            "exported_ok": counting.exported_ok,
            "export_failed": counting.export_failed,
            "queue_dropped": args.count - handed,
            "export_calls": counting.export_calls,
            "failed_calls": counting.failed_calls,
            "retries_logged": echo.retries,
        }), flush=True)


if __name__ == "__main__":
    main()
