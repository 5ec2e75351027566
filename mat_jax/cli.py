"""The `mat-jax` command line: one subcommand per job, each a module in `mat_jax/commands/`.

Exit status, the same for every subcommand:
  0  done (for `train`: the run completed, or was preempted by SIGTERM/SIGINT after writing a checkpoint)
  1  the inputs cannot be used: a missing or unreadable file, a checkpoint that does not fit, a bad image or
     mask, a config value the library refuses (the library's `ValueError` / `OSError` subclasses)
  2  usage error: unknown flags or config fields, a bad value or combination of flags (argparse's convention)
  3  `train` stopped after too many non-finite losses in a row (the last good checkpoint is kept)
  4  `train`: a peer process of a multi-process run was lost (relaunch all processes to resume)
Every error is one line on stderr, `mat-jax <cmd>: error: <what and which file/flag/key>`; `--traceback` shows the
Python traceback instead. Anything else escaping a command is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules (mat_jax.commands.<name>), in the order `mat-jax --help` lists them.
SUBCOMMANDS = (
    "train",
    "info",
    "demo",
    "inpaint",
    "serve",
    "eval",
    "eval_weights",
    "eval_folders",
    "convert",
    "masks",
    "prepare_data",
    "sweep",
    "compare",
)
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_PEER_LOST = 0, 1, 2, 3, 4
# Commands whose real command-line runs re-execute once with huge-page malloc (mat_jax.runtime: long jobs on CPU).
LONG_RUNNING = ("train", "sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mat-jax",
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 1)[1],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--traceback", action="store_true", help="on an error, show the Python traceback")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"mat_jax.commands.{name}").register(sub)
    return parser


def exit_code(error: BaseException) -> int | None:
    """The exit status of an error a command raised, or None when it is not a reportable error (a bug)."""
    code = getattr(error, "exit_code", None)  # UsageError: 2, train's NonFiniteLossError: 3
    if isinstance(code, int):
        return code
    if isinstance(error, (ValueError, OSError)):  # CheckpointError, BadImageError, FileNotFoundError, ...
        return EXIT_ERROR
    return None


def error_line(command: str, error: BaseException) -> str:
    """`mat-jax CMD: error: ...`; an OSError from the system (errno, path) reads `PATH: reason`."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        message = f"{error.filename}: {error.strerror}"
    else:
        message = str(error).strip() or type(error).__name__
    return f"mat-jax {command}: error: {message}"


def main(argv: list[str] | None = None, *, reexec: bool | None = None) -> int:
    """Run one command line (`argv` without the program name; sys.argv[1:] when None) and return its exit status.

    `reexec`: whether a long-running command may re-execute the process with huge-page malloc first; by default
    only for a real command line (argv None), never for an in-process call."""
    from absl import flags

    flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2, its message already printed)
        return EXIT_OK if e.code in (None, 0) else EXIT_USAGE
    if (argv is None if reexec is None else reexec) and args.command in LONG_RUNNING:
        from mat_jax.runtime import reexec_with_hugepage_malloc

        reexec_with_hugepage_malloc()
    try:
        return int(args.func(args) or EXIT_OK)
    except Exception as e:  # noqa: BLE001 - mapped to the documented convention, or re-raised
        code = exit_code(e)
        if code is None or args.traceback:
            raise
        print(error_line(args.command, e), file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
