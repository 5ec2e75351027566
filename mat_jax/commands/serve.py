"""`mat-jax serve`: a local web page to brush a mask over a photo and see K pluralistic fills of it.

Loads the checkpoint once (any format `mat-jax inpaint` reads; by default the demo run of the README's first
command, when it has a complete checkpoint), compiles the native square for K=1 and the page's default K, and serves
http://HOST:PORT/ until Ctrl-C. The page: open, drop or paste an image (or pick a bundled demo photo), brush the hole
(white = hole in the mask it sends), choose K and a seed, Inpaint; results come back at full resolution with the
known pixels untouched. The JSON API is documented in `mat_jax/serve/app.py`. There is no authentication: keep the
default --host 127.0.0.1 unless the network is yours.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="a local web page: brush a mask, see K pluralistic fills",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="any checkpoint `mat-jax inpaint` reads (an official .pkl, a mat-jax dir, a training run); "
        "default: the demo run, when it has a complete checkpoint",
    )
    p.add_argument("--net", choices=("G_ema", "G"), default="G_ema")
    p.add_argument("--step", type=int, default=None, help="checkpoint step of a training run (default: latest)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: a free one, printed)")
    p.add_argument("--max-side", type=int, default=2048, help="largest image side accepted, in pixels (default 2048)")
    p.set_defaults(func=run)


def default_checkpoint() -> str:
    """The demo run's directory when it has a complete checkpoint; otherwise a ValueError saying how to get one."""
    from mat_jax.train.run_dir import DEMO_WORKDIR, complete_steps, is_run

    if is_run(DEMO_WORKDIR) and complete_steps(DEMO_WORKDIR):
        return str(DEMO_WORKDIR)
    raise ValueError(
        f"no --checkpoint given and {DEMO_WORKDIR} holds no complete checkpoint: train the demo first (the "
        f"README's first command, `mat-jax train --config configs/demo.py --workdir {DEMO_WORKDIR}`, about 5-9 "
        "minutes on 2 CPU cores) or pass --checkpoint FILE (e.g. an official .pkl)"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    import jax

    from mat_jax.api import load_inpainter
    from mat_jax.commands import UsageError
    from mat_jax.serve import app, server

    if args.max_side < 1:
        raise UsageError(f"--max-side must be >= 1, got {args.max_side}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")

    def log(message: str) -> None:
        print(f"mat-jax serve: {message}", file=sys.stderr, flush=True)

    inpainter = load_inpainter(args.checkpoint or default_checkpoint(), net=args.net, step=args.step)
    log(f"using {inpainter.source}")
    device = jax.devices()[0]
    service = server.Service(
        inpainter, device=f"{device.platform} ({device.device_kind})", max_side=args.max_side, log=log
    )
    httpd = server.make_server(service, args.host, args.port)  # bind first: a busy port fails before compiling
    app.warm_up(inpainter, log=log)
    print(f"serving on {server.url_of(httpd)}  (Ctrl-C to stop)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        log("stopped")
    finally:
        httpd.server_close()
    return 0
