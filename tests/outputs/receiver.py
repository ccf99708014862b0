#!/usr/bin/env python3
"""A test receiver for ringway's network outputs, independent of ringway.

Serves HTTP/1.1 (keep-alive) on 127.0.0.1 and prints "ready PORT" once
bound. Each POST gets the next status of --script (then 200s); only a 200
keeps what it carried:

  --mode otlp    the body is an ExportLogsServiceRequest, decoded with the
                 official opentelemetry-proto classes; every LogRecord is
                 written to --out as one JSON line
                 {"resource": {...}, "scope": {...}, "record": {...}}
                 (google.protobuf.json_format.MessageToDict).
  --mode ndjson  the body is NDJSON; its lines are appended to --out as is.

Content-Encoding: gzip bodies are inflated first. Every request is logged
to --log as one JSON line {"t": time, "status": N, "records": N,
"gzip": bool, "content_type": "...", "authorization": "..." or null,
"user_agent": "..."}.

With --tls-cert FILE --tls-key FILE (PEM) it serves HTTPS (Python's ssl
module, i.e. OpenSSL) instead.

--script is comma-separated statuses, e.g. "503/1,500" (503 with
Retry-After: 1, then 500, then 200 for ever); "400*" answers 400 for ever.
"""
import argparse
import gzip
import ssl
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=["otlp", "ndjson"], default="otlp")
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--script", default="")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()

    forever = args.script.endswith("*")
    steps = [s for s in args.script.rstrip("*").split(",") if s]
    lock = threading.Lock()
    out = open(args.out, "a", encoding="utf-8")
    log = open(args.log, "a", encoding="utf-8")

    def next_step():
        with lock:
            if not steps:
                return 200, None
            step = steps[0] if forever else steps.pop(0)
        status, _, retry_after = step.partition("/")
        return int(status), (retry_after or None)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            gzipped = self.headers.get("Content-Encoding", "") == "gzip"
            if gzipped:
                body = gzip.decompress(body)
            status, retry_after = next_step()
            records = 0
            lines = []
            if status == 200:
                if args.mode == "otlp":
                    request = ExportLogsServiceRequest()
                    request.ParseFromString(body)
                    for resource_logs in request.resource_logs:
                        resource = MessageToDict(resource_logs.resource)
                        for scope_logs in resource_logs.scope_logs:
                            scope = MessageToDict(scope_logs.scope)
                            for record in scope_logs.log_records:
                                lines.append(json.dumps({
                                    "resource": resource,
                                    "scope": scope,
                                    "record": MessageToDict(record),
                                }) + "\n")
                    reply = ExportLogsServiceResponse().SerializeToString()
                else:
                    lines = [line + "\n" for line in body.decode("utf-8").split("\n") if line]
                    reply = b""
                records = len(lines)
            else:
                reply = b"no: scripted %d" % status
            with lock:
                out.writelines(lines)
                out.flush()
                log.write(json.dumps({
                    "t": time.time(),
                    "status": status,
                    "records": records,
                    "gzip": gzipped,
                    "content_type": self.headers.get("Content-Type", ""),
                    "authorization": self.headers.get("Authorization"),
                    "user_agent": self.headers.get("User-Agent", ""),
                }) + "\n")
                log.flush()
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
