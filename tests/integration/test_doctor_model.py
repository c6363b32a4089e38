"""`qwenchat doctor` with the real test model: the known answers, then the speed check."""

from __future__ import annotations

import re

import pytest

from tests.unit.test_cli import run_cli

pytestmark = pytest.mark.model


def test_doctor_checks_known_answers_then_times_a_real_generation(
    model_env: dict[str, str],
) -> None:
    result = run_cli("doctor", env=model_env)
    lines = result.stdout.splitlines()
    answers = next(line for line in lines if " answers " in line)
    assert answers.startswith("ok") and "2 of 2 known answers right" in answers
    speed = next(line for line in lines if " speed " in line)
    match = re.search(r"([\d.]+) tokens/s over (\d+) tokens", speed)
    assert match is not None, result.stdout
    assert float(match.group(1)) > 0 and int(match.group(2)) > 1
    model = next(line for line in lines if " model " in line)
    assert model.startswith("ok") and "qwen2.5-coder-0.5b" in model
    assert result.returncode == 0, result.stdout + result.stderr
