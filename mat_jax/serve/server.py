"""The HTTP front of `mat-jax serve`: stdlib `ThreadingHTTPServer`, JSON routes over `serve.app`, the page's files.

Routes: `GET /` (the page), `GET /static/<file>`, `GET /api/info`, `GET /api/demo-photos` (names, licenses, URLs),
`GET /api/demo-photos/<name>.png`, `POST /api/inpaint`. Requests are handled on threads (the page stays responsive
while a fill runs) but model calls are serialised by one lock: one batched forward at a time. Errors are JSON,
{"error": ..., "field": ...} with 400 (413 for a body over the limit), 404 for an unknown path; the server keeps
serving after any of them. Binds where it is told (127.0.0.1 by default): there is no authentication.
"""

from __future__ import annotations

import functools
import http.server
import importlib.resources
import json
import threading
import time
import traceback
import urllib.parse

from mat_jax.data.demo_data import DEMO_LICENSES, demo_images
from mat_jax.inference import Inpainter
from mat_jax.serve import app


def photo_url(name: str) -> str:
    return f"/api/demo-photos/{name}.png"


PHOTO_PATHS = {photo_url(n): n for n in DEMO_LICENSES}  # the bundled demo photos (mat_jax.data.demo_data)
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}


def static_file(name: str) -> bytes | None:
    """The bytes of a shipped page file (package data of mat_jax.serve), None when there is no such file."""
    if "/" in name or name.startswith(".") or not name.endswith(tuple(STATIC_TYPES)):
        return None
    res = importlib.resources.files("mat_jax.serve").joinpath("static", name)
    return res.read_bytes() if res.is_file() else None


@functools.lru_cache(maxsize=None)
def demo_photo_png(name: str) -> bytes:
    return app.png_bytes(demo_images((name,))[name])


class Service:
    """One loaded inpainter behind a lock, with the limits of this server."""

    def __init__(self, inpainter: Inpainter, *, device: str, max_side: int, log=print):
        self.inpainter, self.device, self.max_side, self.log = inpainter, device, max_side, log
        self.lock = threading.Lock()

    def info(self) -> dict:
        return app.info(self.inpainter, device=self.device, max_side=self.max_side)

    def inpaint(self, body: bytes) -> dict:
        req = app.parse_request(app.parse_body(body), c_dim=self.inpainter.cfg.c_dim, max_side=self.max_side)
        h, w = req.image_HxWx3.shape[:2]
        t0 = time.perf_counter()
        with self.lock:
            out = app.inpaint(self.inpainter, req)
        self.log(
            f"inpainted {w}x{h} (grid {out['grid'][1]}x{out['grid'][0]}), K={len(req.seeds)}, "
            f"seeds {req.seeds[0]}..{req.seeds[-1]}, {time.perf_counter() - t0:.2f}s"
        )
        return out


def make_handler(service: Service):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "mat-jax-serve"

        def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
            service.log(f"{self.address_string()} {format % args}")

        def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def send_json(self, status: int, obj: dict) -> None:
            self.send_bytes(status, json.dumps(obj).encode(), "application/json")

        def not_found(self, path: str) -> None:
            self.send_json(404, {"error": f"no such path: {path}", "field": "path"})

        def do_GET(self):  # noqa: N802 - the stdlib's name
            path = urllib.parse.urlparse(self.path).path
            if path in ("/", "/index.html"):
                self.send_bytes(200, static_file("index.html"), STATIC_TYPES[".html"])
            elif path.startswith("/static/") and (data := static_file(path[len("/static/") :])) is not None:
                self.send_bytes(200, data, STATIC_TYPES["." + path.rsplit(".", 1)[-1]])
            elif path == "/api/info":
                self.send_json(200, service.info())
            elif path == "/api/demo-photos":
                photos = [{"name": n, "license": v, "url": photo_url(n)} for n, v in DEMO_LICENSES.items()]
                self.send_json(200, {"photos": photos})
            elif path in PHOTO_PATHS:
                self.send_bytes(200, demo_photo_png(PHOTO_PATHS[path]), "image/png")
            else:
                self.not_found(path)

        def do_POST(self):  # noqa: N802
            path = urllib.parse.urlparse(self.path).path
            if path != "/api/inpaint":
                return self.not_found(path)
            try:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    raise app.RequestError("body", "bad Content-Length header") from None
                app.check_body_size(length)  # refuse before reading it
                self.send_json(200, service.inpaint(self.rfile.read(length)))
            except app.RequestError as e:
                if e.field == "body":
                    self.close_connection = True  # an unread body must not be parsed as the next request
                self.send_json(e.status, e.payload())
            except ValueError as e:  # the library refused the inputs (validated already; a safety net with a message)
                self.send_json(400, {"error": str(e), "field": "body"})
            except Exception as e:  # noqa: BLE001 - a bug: logged with its traceback, the page gets a message
                service.log(traceback.format_exc())
                self.send_json(500, {"error": f"internal error: {type(e).__name__}: {e}", "field": None})

    return Handler


def make_server(service: Service, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A bound server (port 0: a free one, read it back from `server.server_address`); call serve_forever()."""
    server = http.server.ThreadingHTTPServer((host, port), make_handler(service))
    server.daemon_threads = True
    return server


def url_of(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
