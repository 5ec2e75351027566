"""`mat-jax train` / `python -m mat_jax.train`: absl + ml_collections flags, the flax-examples convention.

  mat-jax train --config configs/demo.py --workdir runs/demo [--config.train.total_steps=100 ...]

Multi-host: pass --distributed (jax.distributed.initialize() auto-detects SLURM, TPU pods, ...) or the explicit
--coordinator_address / --num_processes / --process_id (e.g. several processes on one machine). Exit status (the
`mat-jax` convention): 0 when the run completed or was preempted (SIGTERM/SIGINT; a checkpoint was written), 1 when
the config or data cannot be used, 2 for a usage error, 3 after too many non-finite losses.
"""

from __future__ import annotations

import argparse

from mat_jax.commands import UsageError

HELP = "see `mat-jax train --help`"
USAGE = "mat-jax train --config configs/NAME.py --workdir DIR [--config.KEY=VALUE ...] [--distributed ...]"


def flag_values():
    """The flags of `mat-jax train` other than the `--config.KEY=VALUE` overrides (those go through
    `mat_jax.config.apply_overrides`, the same parser as `load_config`)."""
    from absl import flags

    fv = flags.FlagValues()
    flags.DEFINE_string(
        "config",
        None,
        "Training config file (configs/*.py); override fields with "
        "--config.section.key=value (a Python literal, or else the raw string).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "workdir",
        None,
        "Run directory: config.json, checkpoints/, samples/, metrics.jsonl, "
        "tensorboard/, train.log. An existing run there is resumed.",
        flag_values=fv,
    )
    flags.DEFINE_bool(
        "distributed", False, "Call jax.distributed.initialize() (auto-detected cluster).", flag_values=fv
    )
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (implies --distributed).", flag_values=fv)
    flags.DEFINE_integer("num_processes", None, "Number of processes (with --coordinator_address).", flag_values=fv)
    flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).", flag_values=fv)
    flags.DEFINE_integer("num_cpu_devices", 0, "If > 0, simulate this many CPU devices per process.", flag_values=fv)
    return fv


def parse(argv: list[str]):
    """(flags, config) of `argv` (program name first); UsageError naming the flag or config field at fault."""
    from absl import flags

    from mat_jax.config import ConfigError, load_config

    overrides = [a[len("--config.") :] for a in argv[1:] if a.startswith("--config.")]
    fv = flag_values()
    try:
        fv([argv[0], *(a for a in argv[1:] if not a.startswith("--config."))])
    except flags.Error as e:
        raise UsageError(f"{e}; {HELP}") from e
    if fv.config is None or not fv.workdir:
        raise UsageError(f"--config and --workdir are required; {HELP}")
    try:
        config = load_config(fv.config, overrides)
    except ConfigError as e:
        raise UsageError(f"{e}; {HELP}") from e
    return fv, config


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train MAT (absl flags: --config FILE --workdir DIR --config.k=v)",
        add_help=False,
        prefix_chars="\x00",
        usage=USAGE,
    )
    p.add_argument("argv", nargs=argparse.REMAINDER, help="absl flags, see `mat-jax train --help`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from absl import flags

    argv = ["mat-jax train", *args.argv]
    flags.FLAGS.mark_as_parsed()  # grain worker processes read global absl flags
    if any(a in ("-h", "--help", "-help") for a in argv[1:]):
        print(f"usage: {USAGE}\n\n{__doc__}\n{flag_values().get_help()}")
        return 0
    fv, config = parse(argv)

    import jax

    if fv.num_cpu_devices > 0:
        jax.config.update("jax_num_cpu_devices", fv.num_cpu_devices)
    distributed = fv.distributed or fv.coordinator_address is not None
    if distributed:
        jax.distributed.initialize(
            coordinator_address=fv.coordinator_address, num_processes=fv.num_processes, process_id=fv.process_id
        )
    from mat_jax.train import loop

    try:
        result = loop.train(config, fv.workdir)
    except loop.NonFiniteLossError as e:
        loop.log.error("%s", e)  # into train.log as well; mat_jax.cli reports it and exits 3
        raise
    finally:
        if distributed:
            jax.distributed.shutdown()
    loop.log.info("done: %s", result)
    return 0
