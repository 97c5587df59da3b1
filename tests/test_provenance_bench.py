"""The provenance benchmark's smoke mode runs (numbers are printed, never asserted on)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_provenance_smoke(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path))
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_provenance.py"), "--smoke"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert any(line.startswith("GemPix tiled mark | ") for line in lines)
    assert any(line.startswith("watermark + sign PNG (target < 50 ms) | ") for line in lines)
