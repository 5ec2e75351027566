"""CLI subcommands (one module each, registered in mat_jax/cli.py)."""
