"""Keeps a client process off the internet, and shows whether it tried: `environment()` points
its HTTP(S) proxy variables at a local server that refuses every request and CONNECT with
403 and records the host asked for, while 127.0.0.1 and localhost (the proxy under test) are
reached directly.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Refuser(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    attempts = []

    def log_message(self, *args):
        pass

    def refuse(self):
        Refuser.attempts.append(f"{self.command} {self.path}")
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_CONNECT = do_GET = do_POST = do_PUT = do_HEAD = refuse


def start():
    """Starts the refusing proxy; returns the server (`Refuser.attempts` lists what it refused)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuser)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def environment(server):
    url = f"http://127.0.0.1:{server.server_port}"
    names = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
    env = {name: url for name in names} | {name.lower(): url for name in names}
    return env | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

