"""`mat-jax train` / `python -m mat_jax.train`: absl + ml_collections flags, the flax-examples convention.

  mat-jax train --config configs/demo.py --workdir runs/demo [--config.train.total_steps=100 ...]

Multi-host: pass --distributed (jax.distributed.initialize() auto-detects SLURM, TPU pods, ...) or the explicit
--coordinator_address / --num_processes / --process_id (e.g. several processes on one machine). Exit status (the
`mat-jax` convention): 0 when the run completed or was preempted (SIGTERM/SIGINT; a checkpoint was written), 1 when
the config or data cannot be used, 2 for a usage error, 3 after too many non-finite losses, 4 when a peer process of
a multi-process run was lost (within --heartbeat_timeout_s; the message names the last complete checkpoint, and
relaunching all processes resumes from it). If process 0 is lost, jax ends the others itself (status 134).
"""

from __future__ import annotations

import argparse
import contextlib
import functools

from mat_jax import cli
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
    flags.DEFINE_integer(
        "heartbeat_timeout_s",
        100,
        "Multi-process: a process that sends no heartbeat for this long counts as lost, and the others exit with "
        "status 4 within about this time (jax's default; shorter notices a lost host sooner, too short mistakes a "
        "stalled one for lost).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "initialization_timeout_s",
        300,
        "Multi-process: how long each process waits at start-up for all to connect to the coordinator.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "shutdown_timeout_s",
        300,
        "Multi-process: how long a finished process waits for the others to finish too.",
        flag_values=fv,
    )
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
    from mat_jax.train import hosts

    distributed = fv.distributed or fv.coordinator_address is not None
    if distributed:
        hosts.initialize(
            fv.coordinator_address,
            fv.num_processes,
            fv.process_id,
            heartbeat_timeout_s=fv.heartbeat_timeout_s,
            initialization_timeout_s=fv.initialization_timeout_s,
            shutdown_timeout_s=fv.shutdown_timeout_s,
        )
    from mat_jax.train import loop

    watch = (
        hosts.watched(functools.partial(_peer_lost, fv), heartbeat_timeout_s=fv.heartbeat_timeout_s)
        if distributed
        else contextlib.nullcontext()
    )
    with watch:
        try:
            result = loop.train(config, fv.workdir)
        except loop.NonFiniteLossError as e:
            loop.log.error("%s", e)  # into train.log as well; mat_jax.cli reports it and exits 3
            raise
    # An error leaves without jax's shutdown: its barrier would wait for the others, which may be blocked in a step.
    if distributed:
        hosts.finish(fv.shutdown_timeout_s)
    loop.log.info("done: %s", result)
    return 0


def _peer_lost(fv, lost: list[int], error) -> None:
    """The watchdog's report (on its thread; the main thread may be blocked in a collective): say it, exit 4."""
    import pathlib

    import jax

    from mat_jax.train import hosts

    message = hosts.peer_lost_message(
        lost,
        error,
        pathlib.Path(fv.workdir).absolute() / "checkpoints",
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        heartbeat_timeout_s=fv.heartbeat_timeout_s,
    )
    hosts.log.error("%s", message)  # stderr, and train.log on process 0
    hosts.exit_now(cli.EXIT_PEER_LOST)
