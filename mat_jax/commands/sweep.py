"""`mat-jax sweep SPEC --out DIR`: expand an ablation spec into one run directory per point and train them.

  mat-jax sweep configs/ablations/demo_sweep.py --out runs/demo_study                 # locally, one after another
  mat-jax sweep configs/ablations/demo_sweep.py --out runs/demo_study --dry-run       # print the commands only
  mat-jax sweep SPEC --out /shared/runs/study --launcher slurm                        # one sbatch --array command
  mat-jax sweep SPEC --out /shared/runs/study --launcher tpu                          # one launch/tpu_pod.sh per point

Every point's config is resolved and checked before anything runs (a bad combination fails naming the point and the
fields). Re-running skips finished points and resumes interrupted ones. The spec format: mat_jax/study/sweep.py.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="expand an ablation spec (variants / grid x seeds) into runs and launch them",
        description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", help="sweep spec file (get_sweep(); see mat_jax/study/sweep.py)")
    p.add_argument("--out", required=True, help="sweep directory: one run directory per point, points.txt")
    p.add_argument("--launcher", choices=("local", "slurm", "tpu", "gke"), default="local")
    p.add_argument("--dry-run", action="store_true", help="write the run directories, print the commands, run nothing")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override for every point (repeatable)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mat_jax.study import sweep

    points = sweep.expand(args.spec, args.out, args.set)
    configs = sweep.check(points)
    sweep.prepare(points, configs, args.out)
    states = [sweep.progress(p, c) for p, c in zip(points, configs, strict=True)]
    todo = [i for i, (state, _) in enumerate(states) if state != "finished"]
    for p, (state, step) in zip(points, states, strict=True):
        print(f"{p.name}: {state}" + (f" (step {step})" if step else ""))
    if args.launcher == "gke":
        print("# no GKE manifest in launch/: each command below is the job a GKE TPU workload would run")
    if args.dry_run or args.launcher != "local":
        for line in sweep.commands(points, args.launcher, args.out, todo, python=sys.executable):
            print(line)
        return 0
    sweep.run_local(points, configs, lambda p: subprocess.call(sweep.train_argv(p, sys.executable)))
    print(f"sweep done: {len(points)} runs in {args.out}; compare them with: mat-jax compare {args.out}")
    return 0
