"""The README's front door: exactly two set-up commands, and CI runs the second."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README has no code block"
    assert text.index(block.group(0)) < 200, "the commands must open the README"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    demo, tests = _commands()
    assert demo.startswith("python3.11 -m venv .venv") and demo.endswith("c360 demo")
    assert tests.startswith("python3.11 -m venv .venv") and "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = _commands()
    script = (ROOT / ".ci" / "run").read_text()
    assert tests in script.splitlines()
