#!/usr/bin/env python3
"""A minimal OTLP trace receiver: prints every span it receives as one JSON line.

Listens for OTLP/HTTP (POST /v1/traces, protobuf or JSON bodies, the JSON with hex ids as
OTLP specifies) and OTLP/gRPC
(TraceService/Export) on free ports, prints `listening http=PORT grpc=PORT` first, then one
line per span: name, kind, trace_id, span_id, parent_span_id (hex), service_name, status,
trace_state, times, scope, the resource's attributes and the span's. The tests run it to
check the bridge's spans; it also shows them locally:

    .build-tools/venv/bin/python scripts/otlp-receiver.py
    # config: "tracing": {"otlpEndpoint": "http://127.0.0.1:HTTP_PORT"}

Needs opentelemetry-proto and grpcio (scripts/install-test-tools.sh puts them in
.build-tools/venv).
"""
import base64
import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

lock = threading.Lock()
batches = 0


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def parse_json(body, request):
    """OTLP's JSON encoding: protobuf's JSON mapping, except that trace and span ids are hex
    (not base64), as the OTLP specification says and collectors expect."""
    document = json.loads(body)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    json_format.ParseDict(document, request)


def emit(request, transport, peer=None):
    global batches
    with lock:
        batches += 1
        batch = batches
    lines = []
    for resource_spans in request.resource_spans:
        resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                lines.append(json.dumps({
                    "transport": transport,
                    "batch": batch,
                    "peer": peer,
                    "service_name": resource.get("service.name"),
                    "name": span.name,
                    "kind": span.kind,
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "status_code": span.status.code,
                    "status_message": span.status.message,
                    "trace_state": span.trace_state,
                    "start_time_unix_nano": span.start_time_unix_nano,
                    "end_time_unix_nano": span.end_time_unix_nano,
                    "scope": scope_spans.scope.name,
                    "resource": resource,
                    "attributes": {a.key: value(a.value) for a in span.attributes},
                }))
    with lock:
        for line in lines:
            print(line)
        sys.stdout.flush()


class HTTPHandler(BaseHTTPRequestHandler):
    # Keeps connections alive, as collectors do (the exporter sends its batches on one).
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = trace_service_pb2.ExportTraceServiceRequest()
        if self.path != "/v1/traces":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            parse_json(body, request)
            transport = "http/json"
        else:
            request.ParseFromString(body)
            transport = "http/protobuf"
        emit(request, transport, "%s:%d" % self.client_address[:2])
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        emit(request, "grpc")
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    http = ThreadingHTTPServer(("127.0.0.1", 0), HTTPHandler)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening http={http.server_address[1]} grpc={grpc_port}", flush=True)
    http.serve_forever()


if __name__ == "__main__":
    main()
