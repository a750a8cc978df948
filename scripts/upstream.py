#!/usr/bin/env python3
"""A small upstream that says which version answered and echoes the request headers it received.

Usage: upstream.py NAME PORT. Behaviour can be changed while it runs (for failure tests):
POST /__control with JSON {"error_rate": 0.5, "delay_ms": 200}.
"""
import json
import random
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])
behaviour = {"error_rate": 0.0, "delay_ms": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-served-by", NAME)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if behaviour["delay_ms"]:
            time.sleep(behaviour["delay_ms"] / 1000)
        status = 503 if random.random() < behaviour["error_rate"] else 200
        # Header values arrive decoded as latin-1: non-UTF-8 bytes survive the echo.
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.reply(status, {"version": NAME, "headers": headers})

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/__control":
            behaviour.update({k: body[k] for k in ("error_rate", "delay_ms") if k in body})
            self.reply(200, behaviour)
        else:
            self.do_GET()


ThreadingHTTPServer.daemon_threads = True
# Python's default listen backlog is 5: a burst of new connections from Envoy would overflow it, the
# dropped SYNs time out (Envoy's connect_timeout) and users see 503s no version sent.
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
