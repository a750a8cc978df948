#!/usr/bin/env python3
"""A small upstream that says which version answered and echoes the request headers it received.

Usage: upstream.py NAME PORT. Behaviour can be changed while it runs (for failure tests):
POST /__control with JSON {"error_rate": 0.5, "delay_ms": 200}. GET /__stats counts the requests it
answered by method, users' apart from mirror copies (whose host ends in -shadow), with the last
copied body.
"""
import json
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])
behaviour = {"error_rate": 0.0, "delay_ms": 0}
stats = {"user": {}, "mirror": {}, "last_mirror_body": None}
stats_lock = threading.Lock()


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
        if self.command != "HEAD":
            self.wfile.write(data)

    def answer(self, body=b""):
        if behaviour["delay_ms"]:
            time.sleep(behaviour["delay_ms"] / 1000)
        status = 503 if random.random() < behaviour["error_rate"] else 200
        # Header values arrive decoded as latin-1: non-UTF-8 bytes survive the echo.
        headers = {k.lower(): v for k, v in self.headers.items()}
        kind = "mirror" if headers.get("host", "").split(":")[0].endswith("-shadow") else "user"
        with stats_lock:
            stats[kind][self.command] = stats[kind].get(self.command, 0) + 1
            if kind == "mirror" and body:
                stats["last_mirror_body"] = body.decode("latin-1")
        self.reply(status, {"version": NAME, "headers": headers})

    def body(self):
        return self.rfile.read(int(self.headers.get("content-length", 0) or 0))

    def do_GET(self):
        if self.path == "/__stats":
            with stats_lock:
                return self.reply(200, stats)
        self.answer(self.body())

    def do_POST(self):
        body = self.body()
        if self.path == "/__control":
            behaviour.update({k: v for k, v in json.loads(body or b"{}").items() if k in behaviour})
            self.reply(200, behaviour)
        else:
            self.answer(body)

    def do_HEAD(self):
        self.answer()

    def do_OPTIONS(self):
        self.answer()

    def do_PUT(self):
        self.answer(self.body())

    def do_DELETE(self):
        self.answer(self.body())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Python's default listen backlog is 5: a burst of new connections from Envoy would overflow it, the
    # dropped SYNs time out (Envoy's connect_timeout) and users see 503s no version sent.
    request_queue_size = 1024

    def get_request(self):
        # Nagle's algorithm holds the body (a second small write) until the headers are acked, which a
        # peer delaying its ack answers 40 ms late; servers in production turn it off, and so does this.
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr

    def handle_error(self, request, client_address):
        # A client (Envoy shutting down, a cancelled mirror copy) that leaves before the answer is
        # not an error of this server.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)



Server(("127.0.0.1", PORT), Handler).serve_forever()
