"""What the test servers share: a threaded HTTP/1.1 server on a free loopback port that
hands every request to `handle(request, method)`, answers JSON, and can lose an answer
(the connection closed after the work was done, as a timeout looks to the client)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonServer:
    methods: tuple[str, ...] = ("GET",)
    path = ""

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        for method in self.methods:
            setattr(Handler, f"do_{method}",
                    lambda h, m=method: server.handle(h, m))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def body(request: BaseHTTPRequestHandler) -> bytes:
        length = int(request.headers.get("Content-Length") or 0)
        return request.rfile.read(length) if length else b""

    @staticmethod
    def send(request: BaseHTTPRequestHandler, status: int, answer: object,
             headers: dict[str, str] | None = None) -> None:
        data = json.dumps(answer).encode() if answer is not None else b""
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            request.send_header(k, v)
        request.end_headers()
        request.wfile.write(data)

    @staticmethod
    def lose_answer(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        request.connection.shutdown(2)
