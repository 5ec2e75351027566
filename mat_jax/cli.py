"""The `mat-jax` command line: one subcommand per job.

Each subcommand lives in its own module and exposes `register(subparsers)`, which adds an
argparse sub-parser whose `func(args) -> int` runs it. This file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order `mat-jax --help` lists them.
SUBCOMMANDS = [
    "mat_jax.train.cli",
    "mat_jax.commands.info",
    "mat_jax.commands.demo",
    "mat_jax.commands.inpaint",
    "mat_jax.convert.cli",
    "mat_jax.data.masks_cli",
    "mat_jax.data.prepare_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mat-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from absl import flags

    flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
    args = build_parser().parse_args(argv)
    if args.command == "train" and argv is None:  # a real command line, not an in-process call
        from mat_jax.runtime import reexec_with_hugepage_malloc

        reexec_with_hugepage_malloc()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
