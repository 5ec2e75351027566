"""Training-step benchmark on any backend: compile time, steady step time, images/s per device and per host, XLA
FLOPs per image, achieved TFLOP/s, MFU against the device's peak (benchmarks/hardware.py: spec sheets for A100,
H100, H200, TPU v4/v5e/v5p; the measured matmul peak on CPU), peak memory (device peak on GPU/TPU, RSS on CPU),
for each case x dtype, and with --project a multi-device projection (benchmarks/projection.py).

Each case runs in its own subprocess (clean peak memory). Programs:
  main      our full iteration minus lazy R1: Gmain (G fwd, D fwd, backward, Adam) + Dmain (G fwd, D on fakes and
            reals, backward, Adam) + EMA; the perceptual loss only with --pcp RATIO (random VGG19 weights);
  r1        the lazy R1 step (every optimizer.d_reg_interval iterations; --project amortises it into the iteration);
  official  the step measured for the official PyTorch code in ../shared/reference/official-baseline.md:
            G fwd + D(fake) + D(real) + backward of both, no PCP, no R1, no optimiser (38.3 s at 256, batch 2).
FLOPs are XLA's count with XLA's own convolutions (xla_flops.py); MFU = FLOPs / step / devices / peak(dtype).

  python benchmarks/bench_train.py                                    # demo + 256 (batch 1, 2), float32
  python benchmarks/bench_train.py --cases p512:1 p512:4 --dtypes float32 bfloat16 --programs main
  python benchmarks/bench_train.py --cases p512:1 --programs main r1 --pcp 0.1 --project 2 4 8
  --cases NAME:BATCH    BATCH per device; --devices N runs data parallel on the first N local devices
  --malloc default      glibc's default malloc instead of the huge-page tunable `mat-jax train` uses (runtime.py)
  --conv xla            XLA's own convolution gradients instead of mat_jax/kernels/conv.py's (MAT_JAX_CONV_GRAD)
  --remat none transformer all --grad-accum 1 2   sweep the memory knobs (model.remat x train.grad_accum_steps)
Results go to stdout as tables; --json FILE appends JSON lines, --markdown FILE appends markdown tables.
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

import hardware  # benchmarks/ (this script's folder)
import projection
import report
from report import Col

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = {"demo": "configs/demo.py", "p256": "configs/places256.py", "p512": "configs/places512.py"}
PROGRAMS = ("main", "r1", "official")


def _official_step(rec):
    """G fwd + D(fake) + D(real) + backward of both for recipe `rec` (no PCP, no R1, no optimiser)."""
    import jax
    import jax.numpy as jnp

    from mat_jax.train import steps as steps_mod

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


def run_case(
    name: str,
    batch: int,
    steps: int,
    program: str,
    dtype: str = "float32",
    remat: str = "none",
    accum: int = 1,
    devices: int = 1,
    pcp: float = 0.0,
    peak: tuple[float, str] | None = None,
) -> dict:
    """Time `program` of config `name` at `batch` images per device on the first `devices` local devices (MFU
    against `peak` = (FLOP/s, source), or hardware.peak_flops found here)."""
    import jax
    import numpy as np
    from xla_flops import reference_flops

    from mat_jax.config import load_config
    from mat_jax.train import loop, programs, sharding
    from mat_jax.train.vgg import random_vgg19_params

    devs = jax.local_devices()[:devices]
    if len(devs) < devices:
        raise ValueError(f"--devices {devices}: this host has {len(devs)} {devs[0].platform} device(s)")
    global_batch = batch * devices
    config = load_config(
        REPO / CONFIGS[name],
        [
            f"train.global_batch_size={global_batch}",
            f"train.mbstd_shards={devices}",  # minibatch-std groups within each device's images (official: per GPU)
            f"loss.pcp_ratio={pcp}",
            f"train.compute_dtype={dtype!r}",
            f"model.remat={remat!r}",
            f"train.grad_accum_steps={accum}",
        ],
    )
    mesh = sharding.make_mesh(1, devs)
    recipe = loop.recipe_from_config(config, mesh)
    res = recipe.model.resolution
    rng = np.random.default_rng(0)
    batch_np = {
        "image": rng.uniform(-1, 1, (global_batch, res, res, 3)).astype(np.float32),
        "mask": (rng.uniform(size=(global_batch, res, res, 1)) > 0.5).astype(np.float32),  # 1 = known pixel
    }
    batch_dev = {k: jax.device_put(v, sharding.batch_sharding(mesh)) for k, v in batch_np.items()}  # timed: no copy
    vgg = jax.device_put(random_vgg19_params(jax.random.key(1)), sharding.replicated(mesh)) if pcp > 0 else None
    progs = programs.build(recipe, mesh, int(config.mesh.fsdp_min_size))
    state = progs.init(jax.random.key(0))
    jax.block_until_ready(state)

    def build(rec, prg):  # the step of this program for recipe `rec` (rec.model.conv: the convolution algorithm)
        return {"main": prg.main_step, "r1": prg.r1_step, "official": _official_step(rec)}[program]

    fn = build(recipe, progs)
    args = (state, batch_dev, vgg) if program == "main" else (state, batch_dev)

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
        if program != "official":  # the state is donated: step on the new one
            args = (out[0], *args[1:])
    step_s = float(np.median(times[1:] if len(times) > 1 else times))
    memory = hardware.peak_memory_fields(devs)  # before anything else allocates
    machine = hardware.run_fields(devs, dtype, peak)
    recipe_xla = dataclasses.replace(recipe, model=recipe.model.replace(conv="xla"))
    flops = reference_flops(
        build(recipe_xla, programs.build(recipe_xla, mesh, int(config.mesh.fsdp_min_size))), *args
    )  # after timing: traces the step again with XLA's convolutions
    count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
    g_params, d_params = count(progs.abstract_state["g"]["params"]), count(progs.abstract_state["d"]["params"])
    return {
        "case": f"{name}:{batch}",
        "config": name,
        "program": program,
        "batch_per_device": batch,
        "global_batch": global_batch,
        "params_G_M": round(g_params / 1e6, 2),
        "params_D_M": round(d_params / 1e6, 2),
        "grad_bytes": 4 * (d_params if program == "r1" else g_params + d_params),  # float32 masters -> grads
        "d_reg_interval": int(config.optimizer.d_reg_interval),
        "trace_lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "step_s": step_s,
        "all_steps_s": [round(t, 4) for t in times],
        "xla_flops": flops,
        "remat": remat,
        "grad_accum_steps": accum,
        "pcp_ratio": pcp,
        **machine,
        **memory,
        **report.speed(flops, step_s, global_batch, devices, machine["local_devices"], machine["peak_flops"]),
    }


TRAIN_COLS = [
    Col("case", "case"),
    Col("program", "program"),
    Col("dtype", "dtype"),
    Col("dev", "devices"),
    Col("remat", "remat"),
    Col("accum", "grad_accum_steps"),
    Col("pcp", "pcp_ratio"),
    Col("compile s", "compile_s", ".1f"),
    Col("step s", "step_s", ".3f"),
    *report.SPEED_COLS,
]


def iteration_row(main: dict, rows: list[dict]) -> dict:
    """The whole iteration of a `main` row: + its lazy R1 step / d_reg_interval when an r1 row of the same case,
    dtype and knobs was measured (program "main+r1/I"), else the main row itself."""
    same = ("case", "dtype", "devices", "remat", "grad_accum_steps")
    r1 = [r for r in rows if r["program"] == "r1" and all(r[k] == main[k] for k in same)]
    if not r1:
        return main
    r1, interval = r1[0], main["d_reg_interval"]
    step = main["step_s"] + r1["step_s"] / interval
    flops = main["xla_flops"] + r1["xla_flops"] / interval
    out = dict(main, program=f"main+r1/{interval}", step_s=step, xla_flops=flops)
    out["grad_bytes"] = main["grad_bytes"] + r1["grad_bytes"] / interval
    out.update(report.speed(flops, step, out["global_batch"], out["devices"], out["local_devices"], out["peak_flops"]))
    return out


def project(rows: list[dict], ns: list[int], chips: list, mfus: list[float], dtypes: list[str], env: dict) -> list:
    """(title, lines, rows, cols) of the two projection tables from the single-device main rows: scaling of each
    measured iteration, and each (case, knobs) projected on `chips` in each of `dtypes` (XLA's FLOP count is the
    same in both compute dtypes; the dtype's own row is used where it was measured)."""
    iters = [iteration_row(r, rows) for r in rows if r["program"] == "main" and r["devices"] == 1]
    for r in iters:
        r["knobs"] = f"remat={r['remat']} accum={r['grad_accum_steps']} pcp={r['pcp_ratio']}"
    measured = {}  # (bytes, n) -> seconds, or None where this machine has fewer than n devices
    for r in iters:
        for n in ns:
            key = (int(r["grad_bytes"]), n)
            if key not in measured:
                measured[key] = 0.0 if n == 1 else projection.allreduce_in_subprocess(key[0], n, r["platform"], env)
    scaling, groups = [], {}
    for r in iters:
        chip = hardware.lookup(r["device_kind"])
        scaling += projection.scaling_rows(r, ns, {n: measured[(int(r["grad_bytes"]), n)] for n in ns}, chip)
        groups.setdefault((r["case"], r["program"], r["knobs"]), {})[r["dtype"]] = r
    accel = []
    for by_dtype in groups.values():
        for dtype in dtypes:
            accel += projection.accelerator_rows(
                by_dtype.get(dtype) or next(iter(by_dtype.values())), chips, mfus, ns, dtype
            )
    here = sorted({f"{r['device_kind']} ({r['platform']}; host {r['host']})" for r in iters})
    chip_notes = [f"{c.name}: {c.interconnect}, ring bandwidth {c.allreduce_bw / 1e9:.0f} GB/s per chip" for c in chips]
    return [
        (
            "Scaling: measured 1-device step + all-reduce of the G+D float32 gradients",
            [
                f"1-device step measured on {', '.join(here)}; all-reduce measured on N of this machine's devices "
                "(CPU: N simulated devices on its cores) where it has N, else projected with the ring model "
                "2(N-1)/N x bytes / bandwidth for this chip (hardware.py; none for a CPU)",
                "no overlap of the all-reduce with the backward pass assumed",
            ],
            scaling,
            projection.SCALING_COLS,
        ),
        (
            "Projected accelerators (not measured): step = images x XLA FLOPs per image / (peak x assumed MFU) + ring"
            " all-reduce",
            chip_notes + [projection.OFFICIAL],
            accel,
            projection.accelerator_cols(ns),
        ),
    ]


def _child_cmd(case: str, program: str, dtype: str, remat: str, accum: int, args, peak: list) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--one",
        f"{case}:{program}",
        "--steps",
        str(args.steps),
        "--dtypes",
        dtype,
        "--remat",
        remat,
        "--grad-accum",
        str(accum),
        "--devices",
        str(args.devices),
        "--pcp",
        str(args.pcp),
        "--peak",
        json.dumps(peak),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cases", nargs="*", default=["demo:8", "p256:1", "p256:2"], help=f"NAME:BATCH, NAME in {sorted(CONFIGS)}"
    )
    ap.add_argument("--programs", nargs="*", default=["main", "official"], choices=PROGRAMS)
    ap.add_argument("--dtypes", nargs="*", default=["float32"], choices=["float32", "bfloat16"], help="compute dtypes")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per case (median of all but the first)")
    ap.add_argument("--devices", type=int, default=1, help="data parallel on the first N local devices")
    ap.add_argument("--pcp", type=float, default=0.0, help="loss.pcp_ratio with random VGG19 weights (0 = off)")
    ap.add_argument("--json", type=pathlib.Path, help="append JSON lines here")
    ap.add_argument("--markdown", type=pathlib.Path, help="append the tables here as markdown")
    ap.add_argument(
        "--malloc",
        choices=["hugepage", "default"],
        default="hugepage",
        help="glibc malloc with transparent huge pages (as `mat-jax train` runs) or glibc's default",
    )
    ap.add_argument("--conv", choices=["auto", "xla"], default="auto", help="convolution gradients (MAT_JAX_CONV_GRAD)")
    ap.add_argument("--remat", nargs="*", default=["none"], choices=["none", "transformer", "all"], help="model.remat")
    ap.add_argument("--grad-accum", nargs="*", type=int, default=[1], help="train.grad_accum_steps values")
    ap.add_argument("--project", nargs="*", type=int, default=[], help="device counts N of the projection tables")
    ap.add_argument("--project-chips", nargs="*", default=["H100 SXM", "H200 SXM", "A100 SXM"], help="hardware.py")
    ap.add_argument("--assume-mfu", nargs="*", type=float, default=[0.3, 0.5], help="MFUs of the projected chips")
    ap.add_argument("--project-dtypes", nargs="*", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case in this process
    ap.add_argument("--peak", type=json.loads, help=argparse.SUPPRESS)  # internal: [FLOP/s, source] for --one
    args = ap.parse_args()
    if args.one:
        name, batch, program = args.one.split(":")
        knobs = dict(dtype=args.dtypes[0], remat=args.remat[0], accum=args.grad_accum[0], devices=args.devices)
        row = run_case(name, int(batch), args.steps, program, pcp=args.pcp, peak=args.peak, **knobs)
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    try:  # unknown names fail before anything runs
        chips = [hardware.by_name(c) for c in args.project_chips]
    except ValueError as e:
        ap.error(f"--project-chips: {e}")
    for case in args.cases:
        name, _, batch = case.partition(":")
        if name not in CONFIGS or not batch.isdigit():
            ap.error(f"--cases {case!r}: expected NAME:BATCH with NAME in {sorted(CONFIGS)}")
    env = dict(os.environ)
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".jax_cache"))
    env["MAT_JAX_CONV_GRAD"] = args.conv
    env.pop("GLIBC_TUNABLES", None)
    if args.malloc == "hugepage":
        from mat_jax.runtime import malloc_env

        env = malloc_env(env) or env
    peaks = hardware.peaks_in_subprocess(args.dtypes, env)  # one peak per dtype for the whole sweep
    rows = []
    knobs = [(d, r, a) for d in args.dtypes for r in args.remat for a in args.grad_accum]
    for case, program, (dtype, remat, accum) in ((c, p, k) for c in args.cases for p in args.programs for k in knobs):
        cmd = _child_cmd(case, program, dtype, remat, accum, args, peaks[dtype])
        res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
        if res.returncode or not line:
            print(f"{case} {program} {dtype}: failed ({res.returncode})\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(line[0][7:])
        row.update(malloc=args.malloc, conv=args.conv)
        rows.append(row)
        print(
            f"{row['case']} {program} {dtype} remat={remat} accum={accum}: step {row['step_s']:.3f} s, "
            f"{row['images_per_s_device']:.3f} img/s/device, MFU {row['mfu']:.1%}",
            flush=True,
        )
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    if not rows:
        return 1
    tables = [("bench_train: measured", report.hardware_lines(rows), rows, TRAIN_COLS)]
    if args.project:
        tables += project(rows, args.project, chips, args.assume_mfu, args.project_dtypes, env)
    for title, lines, trows, cols in tables:
        print(f"\n{title}\n" + "".join(f"  {x}\n" for x in lines) + report.table(trows, cols))
        if args.markdown:
            report.write_markdown(args.markdown, title, lines, report.table(trows, cols, markdown=True))
    return 0 if len(rows) == len(args.cases) * len(args.programs) * len(knobs) else 1


if __name__ == "__main__":
    sys.exit(main())
