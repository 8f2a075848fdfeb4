#!/usr/bin/env python3
"""A webhook receiver that checks every delivery with the official Standard Webhooks library.

What an internal service behind the bridge's `http` sink does, and what the HTTP sink's tests
deliver to: it listens on a free port (HTTP/1.1, connections kept alive), prints
`{"listening": PORT}` first, then one JSON line per request: method, path, headers (lowercase
names), body (text, or body_base64), verified (true when `standardwebhooks` accepts the
signature with the secret given), error (why not), the status it answered, the time, and
the client port (one per connection).

Answers are 204 unless told otherwise. Each line on stdin is a command, acknowledged with a
`{"control": "ok"}` line once in force:

    {"answers": [{"status": 503, "count": 3}, {"status": 429, "retryAfter": "2"},
                 {"hang": 5}, {"status": 410, "body": "gone"},
                 {"status": 204, "delay": 0.01}, {"status": 204, "closeAfter": 0.2},
                 {"raw": "HTTP/1.1 200 OK\\r\\n...", "status": 200, "close": true}]}   queued, used in order
    {"answers": [{"status": 503, "count": -1}]}                  every request until the next command
    {"answers": []}                                               back to 204

    .build-tools/venv/bin/python scripts/webhook-receiver.py --secret whsec_...
    # HTTPS, asking for a client certificate: --certificate server.pem --key server.key --client-ca ca.pem

Needs standardwebhooks (scripts/install-test-tools.sh puts it in .build-tools/venv).
"""
import argparse
import base64
import json
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

lock = threading.Lock()
answers: list[dict] = []


def next_answer() -> dict:
    with lock:
        if not answers:
            return {"status": 204}
        answer = answers[0]
        count = answer.get("count", 1)
        if count > 0:
            if count == 1:
                answers.pop(0)
            else:
                answer["count"] = count - 1
        return dict(answer)


def emit(record: dict) -> None:
    with lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    webhook: Webhook | None = None

    def log_message(self, *args):  # quiet: stdout carries the records
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified, error = False, None
        if self.webhook is not None:
            try:
                self.webhook.verify(body, headers, json_parse=False)
                verified = True
            except WebhookVerificationError as failure:
                error = str(failure)
        answer = next_answer()
        record = {"method": "POST", "path": self.path, "headers": headers, "verified": verified, "error": error,
                  "time": time.time(), "client_port": self.client_address[1]}
        if isinstance(self.connection, ssl.SSLSocket):
            peer = self.connection.getpeercert() or {}
            record["client_cn"] = next((value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"), None)
        try:
            record["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            record["body_base64"] = base64.b64encode(body).decode()
        if "raw" in answer:
            # Bytes written as they are (any framing), then the connection closed if asked.
            record["answered"] = answer.get("status")
            emit(record)
            self.wfile.write(answer["raw"].encode())
            self.wfile.flush()
            self.close_connection = bool(answer.get("close"))
            return
        if "hang" in answer:
            record["answered"] = None
            emit(record)
            time.sleep(answer["hang"])
            self.close_connection = True
            return
        status = answer.get("status", 204)
        record["answered"] = status
        if "delay" in answer:
            time.sleep(answer["delay"])
        emit(record)
        payload = answer.get("body", "").encode()
        self.send_response(status)
        if "retryAfter" in answer:
            self.send_header("Retry-After", answer["retryAfter"])
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if "closeAfter" in answer:
            # Kept alive, then closed while idle, as a server's keep-alive timeout does.
            self.wfile.flush()
            connection, port = self.connection, self.client_address[1]

            def close_idle():
                connection.shutdown(socket.SHUT_RDWR)
                emit({"closed": port})

            threading.Timer(answer["closeAfter"], close_idle).start()


def control() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        with lock:
            answers[:] = [dict(answer) for answer in command.get("answers", [])]
        emit({"control": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", help="the whsec_ secret deliveries must be signed with")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--certificate", help="HTTPS: the server's certificate (PEM)")
    parser.add_argument("--key", help="HTTPS: the server's private key (PEM)")
    parser.add_argument("--client-ca", help="HTTPS: require a client certificate signed by this CA")
    args = parser.parse_args()
    Handler.webhook = Webhook(args.secret) if args.secret else None
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.certificate:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.certificate, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    emit({"listening": server.server_address[1]})
    threading.Thread(target=control, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
