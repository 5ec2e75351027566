"""Training-step benchmark on this machine: compile time, steady step time, images/s, peak RSS, XLA FLOPs and
achieved GFLOP/s (FLOPs counted with XLA's own convolutions, see xla_flops.py), for the demo config and the
official 256 / 512 models.

Each case runs in its own subprocess (clean peak RSS). Two programs per case:
  main      our full iteration minus lazy R1: Gmain (G fwd, D fwd, backward, Adam) + Dmain (G fwd, D on fakes and
            reals, backward, Adam) + EMA, no perceptual loss;
  official  the step measured for the official PyTorch code in ../shared/reference/official-baseline.md:
            G fwd + D(fake) + D(real) + backward of both, no PCP, no R1, no optimiser (38.3 s at 256, batch 2).

  python benchmarks/bench_train.py                          # demo + 256 (batch 1, 2)
  python benchmarks/bench_train.py --cases p512:1 --steps 2 # one case
  --malloc default      glibc's default malloc instead of the huge-page tunable `mat-jax train` uses (runtime.py)
  --conv xla            XLA's own convolution gradients instead of mat_jax/kernels/conv.py's (MAT_JAX_CONV_GRAD)
  --compute-dtype bfloat16   bf16 activations and matmuls with float32 master weights (train.compute_dtype)
  --remat none transformer all --grad-accum 1 2   sweep the memory knobs (model.remat x train.grad_accum_steps)
Memory: peak_device_gb is the device's own peak (`memory_stats()["peak_bytes_in_use"]`, GPU/TPU); the CPU backend
has no memory stats, so there only the process's peak RSS (peak_rss_gb) measures it.
Results go to stdout as a table and, with --json FILE, as JSON lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = {"demo": "configs/demo.py", "p256": "configs/places256.py", "p512": "configs/places512.py"}


def run_case(
    name: str, batch: int, steps: int, program: str, compute_dtype: str = "float32", remat: str = "none", accum: int = 1
) -> dict:
    import resource

    import jax
    import jax.numpy as jnp
    import numpy as np
    from xla_flops import reference_flops  # benchmarks/ (this script's folder)

    from mat_jax.config import load_config
    from mat_jax.train import loop, programs, sharding
    from mat_jax.train import steps as steps_mod

    config = load_config(
        REPO / CONFIGS[name],
        [
            f"train.global_batch_size={batch}",
            "train.mbstd_shards=1",
            "loss.pcp_ratio=0.0",
            f"train.compute_dtype={compute_dtype!r}",
            f"model.remat={remat!r}",
            f"train.grad_accum_steps={accum}",
        ],
    )
    mesh = sharding.make_mesh(1, jax.devices()[:1])
    recipe = loop.recipe_from_config(config, mesh)
    res = recipe.model.resolution
    rng = np.random.default_rng(0)
    batch_np = {
        "image": rng.uniform(-1, 1, (batch, res, res, 3)).astype(np.float32),
        "mask": (rng.uniform(size=(batch, res, res, 1)) > 0.5).astype(np.float32),
    }
    progs = programs.build(recipe, mesh, int(config.mesh.fsdp_min_size))
    state = progs.init(jax.random.key(0))
    jax.block_until_ready(state)

    def build(rec, prg):  # the step of this program for recipe `rec` (rec.model.conv: the convolution algorithm)
        if program == "main":
            return prg.main_step

        def official(state, batch):
            g, d = state["g"], state["d"]
            k_g, _ = steps_mod.iteration_keys(state)

            def loss(gp, dp):
                final, stage1, _ = steps_mod.run_generator(
                    rec, {"params": gp, "buffers": g["buffers"]}, batch["image"], batch["mask"], k_g
                )
                fake = steps_mod._d_logits(rec, dp, final, batch["mask"], stage1)  # {branch: [B, 1]}
                real = steps_mod._d_logits(rec, dp, batch["image"], batch["mask"], batch["image"])
                sp = jax.nn.softplus
                return sum(jnp.mean(sp(-fake[b])) + jnp.mean(sp(real[b])) for b in fake)

            return jax.grad(loss, argnums=(0, 1))(g["params"], d["params"])

        return jax.jit(official)

    fn = build(recipe, progs)
    args = (state, batch_np, None) if program == "main" else (state, batch_np)

    t0 = time.perf_counter()
    lowered = fn.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        out = compiled(*args)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t)
        if program == "main":
            args = (out[0], batch_np, None)
    step_s = float(np.median(times[1:] if len(times) > 1 else times))
    stats = jax.devices()[0].memory_stats() or {}  # None on the CPU backend
    peak_device = stats.get("peak_bytes_in_use")
    recipe_xla = dataclasses.replace(recipe, model=recipe.model.replace(conv="xla"))
    flops = reference_flops(
        build(recipe_xla, programs.build(recipe_xla, mesh, int(config.mesh.fsdp_min_size))), *args
    )  # after timing: traces the step again with XLA's convolutions
    return {
        "case": f"{name}:{batch}",
        "program": program,
        "params_G_M": round(sum(x.size for x in jax.tree.leaves(progs.abstract_state["g"]["params"])) / 1e6, 2),
        "trace_lower_s": round(t1 - t0, 1),
        "compile_s": round(t2 - t1, 1),
        "step_s": round(step_s, 3),
        "all_steps_s": [round(t, 3) for t in times],
        "images_per_s": round(batch / step_s, 3),
        "s_per_image": round(step_s / batch, 3),
        "xla_gflop": round(flops / 1e9, 1),
        "achieved_gflops": round(flops / 1e9 / step_s, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "peak_device_gb": None if peak_device is None else round(peak_device / 2**30, 2),
        "remat": remat,
        "grad_accum_steps": accum,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cases", nargs="*", default=["demo:8", "p256:1", "p256:2"], help=f"NAME:BATCH, NAME in {sorted(CONFIGS)}"
    )
    ap.add_argument("--programs", nargs="*", default=["main", "official"], choices=["main", "official"])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per case (median of all but the first)")
    ap.add_argument("--json", type=pathlib.Path, help="append JSON lines here")
    ap.add_argument(
        "--malloc",
        choices=["hugepage", "default"],
        default="hugepage",
        help="glibc malloc with transparent huge pages (as `mat-jax train` runs) or glibc's default",
    )
    ap.add_argument("--conv", choices=["auto", "xla"], default="auto", help="convolution gradients (MAT_JAX_CONV_GRAD)")
    ap.add_argument(
        "--compute-dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="train.compute_dtype (bfloat16: bf16 activations and matmuls, float32 master weights)",
    )
    ap.add_argument("--remat", nargs="*", default=["none"], choices=["none", "transformer", "all"], help="model.remat")
    ap.add_argument("--grad-accum", nargs="*", type=int, default=[1], help="train.grad_accum_steps values")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = ap.parse_args()
    if args.one:
        name, batch, program = args.one.split(":")
        row = run_case(name, int(batch), args.steps, program, args.compute_dtype, args.remat[0], args.grad_accum[0])
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    env = dict(os.environ)
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".jax_cache"))
    env["MAT_JAX_CONV_GRAD"] = args.conv
    env.pop("GLIBC_TUNABLES", None)
    if args.malloc == "hugepage":
        from mat_jax.runtime import malloc_env

        env = malloc_env(env) or env
    rows = []
    knobs = [(r, a) for r in args.remat for a in args.grad_accum]
    for case, program, (remat, accum) in ((c, p, k) for c in args.cases for p in args.programs for k in knobs):
        res = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                f"{case}:{program}",
                "--steps",
                str(args.steps),
                "--compute-dtype",
                args.compute_dtype,
                "--remat",
                remat,
                "--grad-accum",
                str(accum),
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
        if res.returncode or not line:
            print(f"{case} {program}: failed ({res.returncode})\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(line[0][7:])
        row.update(malloc=args.malloc, conv=args.conv, compute_dtype=args.compute_dtype)
        rows.append(row)
        print(
            f"{row['case']:8s} {row['program']:8s} compile {row['compile_s']:6.1f}s  step {row['step_s']:8.3f}s  "
            f"{row['images_per_s']:7.3f} img/s  {row['xla_gflop']:8.1f} GFLOP  {row['achieved_gflops']:6.1f} "
            f"GFLOP/s  RSS {row['peak_rss_gb']:5.2f} GB  device peak {row['peak_device_gb']} GB  "
            f"remat={remat} accum={accum} malloc={args.malloc} conv={args.conv} {args.compute_dtype}",
            flush=True,
        )
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
