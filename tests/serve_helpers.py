"""A tiny random MAT behind a real `mat-jax serve` server on a free loopback port, for the serve tests."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
from model_configs import TINY
from PIL import Image

from mat_jax.inference import Inpainter
from mat_jax.models import Generator
from mat_jax.serve import app, server


def tiny_inpainter() -> Inpainter:
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    variables = jax.jit(Generator(TINY).init)(
        keys, jnp.zeros((1, 64, 64, 3)), jnp.ones((1, 64, 64, 1)), jnp.zeros((1, TINY.z_dim))
    )
    return Inpainter(TINY, variables, source="a tiny random MAT (tests)")


@contextlib.contextmanager
def running_server(inpainter: Inpainter, max_side: int = 256):
    """(base URL, log lines) of a server in a thread on 127.0.0.1:<free port>, warmed up for K=1 and the default K."""
    lines: list[str] = []
    service = server.Service(inpainter, device="cpu (tests)", max_side=max_side, log=lines.append)
    app.warm_up(inpainter, log=lines.append)
    httpd = server.make_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url_of(httpd), lines
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def png_b64(array: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def decode_png_b64(text: str) -> np.ndarray:
    if text.startswith("data:"):
        text = text.split(",", 1)[1]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def photo(w: int, h: int) -> np.ndarray:
    from mat_jax.data.demo_data import demo_images

    return np.asarray(Image.fromarray(demo_images(("coffee",))["coffee"]).resize((w, h), Image.BICUBIC))


def hole(w: int, h: int) -> np.ndarray:
    """[H, W] bool: a box hole in the middle, True = hole."""
    m = np.zeros((h, w), bool)
    m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
    return m


def request(url: str, body: bytes | dict | None = None, method: str | None = None):
    """(status, JSON answer) of a request; HTTP errors are answers too."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
