"""The `mat-jax` subcommands: one thin module each over the library, wired together by `mat_jax/cli.py`.

A module exposes `register(subparsers)` (its argparse sub-parser, with `func=run`) and `run(args) -> int | None`.
`run` does not print errors or choose exit codes itself: it raises, and `mat_jax.cli.main` turns the exception into
one `mat-jax <cmd>: error: ...` line and the exit code of the convention documented there (`UsageError` for a bad
combination of arguments, the library's own `ValueError`/`OSError` subclasses for inputs that cannot be used).
"""

from __future__ import annotations


class UsageError(Exception):
    """The command line itself is wrong (a bad value or combination of flags): exit status 2, like argparse."""

    exit_code = 2
