"""The official PyTorch MAT, timed on this machine, for side-by-side comparison with bench_models.py and bench_train.py.

The official code is not part of mat-jax and is never imported by it: pass a checkout of fenglinglwb/MAT
(`networks/`, `torch_utils/`, `dnnlib/`) with --official-repo. Needs torch (the `[torch]` extra). `timm` is only
imported by the official networks for `DropPath`, `to_2tuple` and `trunc_normal_`; when it is not installed (it pulls
torchvision) a small stand-in module providing those three names is registered instead.

Cases, each in its own subprocess (clean peak RSS), float32, random weights, eager, --threads torch threads:
  g256:B / g512:B   G forward, eval, no_grad (bench_models.py's `G` rows)
  s256:B / s512:B   the train-style step of ../shared/reference/official-baseline.md and bench_train.py's `official`
                    program: G fwd + D(fake) + D(real) + backward of both, no PCP, no R1, no optimiser

  python benchmarks/bench_official.py --official-repo /path/to/MAT --cases s256:2 s512:1 --json official.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
import types

KINDS = {"g": "G forward", "s": "train step"}


def _register_timm_standin() -> None:
    """Registers `timm.models.layers` with the three names the official networks import, if timm is absent."""
    try:
        import timm.models.layers  # noqa: F401

        return
    except ImportError:
        pass
    import torch

    class DropPath(torch.nn.Module):
        """Per-sample stochastic depth (drop whole residual branches with probability drop_prob in training)."""

        def __init__(self, drop_prob: float | None = None):
            super().__init__()
            self.drop_prob = float(drop_prob or 0.0)

        def forward(self, x):
            if self.drop_prob == 0.0 or not self.training:
                return x
            keep = 1.0 - self.drop_prob
            mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
            return x * mask / keep

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (tuple, list)) else (x, x)

    layers = types.ModuleType("timm.models.layers")
    layers.DropPath, layers.to_2tuple, layers.trunc_normal_ = DropPath, to_2tuple, torch.nn.init.trunc_normal_
    models = types.ModuleType("timm.models")
    models.layers = layers
    timm = types.ModuleType("timm")
    timm.models = models
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers})


def run_case(repo: pathlib.Path, case: str, steps: int, threads: int) -> dict:
    import resource

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(repo))
    _register_timm_standin()
    from networks.mat import Discriminator, Generator

    kind, spec = case[0], case[1:]
    res, batch = (int(x) for x in spec.split(":"))
    torch.manual_seed(0)
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs={"num_layers": 8})
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, mbstd_group_size=min(8, batch))
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.uniform(-1, 1, (batch, 3, res, res)).astype(np.float32))
    mask = torch.from_numpy((rng.uniform(size=(batch, 1, res, res)) > 0.5).astype(np.float32))
    z = torch.randn(batch, 512)
    c = torch.zeros(batch, 0)

    if kind == "g":
        G.eval()

        def once():
            with torch.no_grad():
                G(image * mask, mask, z, c, noise_mode="const")
    else:
        G.train(), D.train()
        sp = torch.nn.functional.softplus

        def once():
            G.zero_grad(set_to_none=True), D.zero_grad(set_to_none=True)
            fake, fake_s1 = G(image * mask, mask, z, c, return_stg1=True)
            lf, lf1 = D(fake, mask, fake_s1, c)
            lr, lr1 = D(image, mask, image, c)
            loss = (sp(-lf) + sp(-lf1)).mean() + (sp(lr) + sp(lr1)).mean()
            loss.backward()

    times = []
    for _ in range(steps):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    step_s = float(np.median(times[1:] if len(times) > 1 else times))
    return {
        "case": case,
        "what": KINDS[kind],
        "resolution": res,
        "batch": batch,
        "threads": threads,
        "torch": torch.__version__,
        "step_s": round(step_s, 3),
        "all_steps_s": [round(t, 3) for t in times],
        "s_per_image": round(step_s / batch, 3),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--official-repo",
        type=pathlib.Path,
        required=True,
        help="a checkout of fenglinglwb/MAT (holds networks/mat.py)",
    )
    ap.add_argument(
        "--cases",
        nargs="*",
        default=["g256:1", "g512:1", "s256:2"],
        help="KIND RES:BATCH, KIND g (G forward) or s (train step), e.g. g512:1 s256:2",
    )
    ap.add_argument("--steps", type=int, default=3, help="timed repetitions (median of all but the first)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    ap.add_argument("--json", type=pathlib.Path, help="append JSON lines here")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = ap.parse_args()
    repo = args.official_repo.resolve()
    if not (repo / "networks" / "mat.py").is_file():
        ap.error(f"{repo} is not a checkout of the official MAT code: networks/mat.py is missing")
    for case in args.cases:
        if case[:1] not in KINDS or len(case[1:].split(":")) != 2:
            ap.error(f"bad case {case!r}: expected g or s, then RES:BATCH (e.g. s256:2)")
    if args.one:
        print("RESULT " + json.dumps(run_case(repo, args.one, args.steps, args.threads)), flush=True)
        return 0
    failed = 0
    for case in args.cases:
        res = subprocess.run(
            [
                sys.executable,
                __file__,
                "--official-repo",
                str(repo),
                "--one",
                case,
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
        )
        line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
        if res.returncode or not line:
            print(f"{case}: failed ({res.returncode})\n{res.stderr[-2000:]}", file=sys.stderr)
            failed += 1
            continue
        row = json.loads(line[0][7:])
        print(
            f"official {row['what']:10s} {row['resolution']:4d} batch {row['batch']}  {row['step_s']:8.3f} s  "
            f"{row['s_per_image']:8.3f} s/img  RSS {row['peak_rss_gb']:5.2f} GB  threads {row['threads']}  "
            f"torch {row['torch']}",
            flush=True,
        )
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps(row) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
