"""The repository's own promises: the README's test command is exactly what CI runs."""

from __future__ import annotations

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_readme_test_command_is_ci_run():
    readme = (REPO / "README.md").read_text()
    after = readme.split("**Run the tests**", 1)[1]
    command = _bash_blocks(after)[0]
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert command in ci, f"README test command:\n{command}\n.ci/run:\n" + "\n".join(ci)
    assert "ruff check ." in command and "ruff format --check ." in command and "pytest" in command
