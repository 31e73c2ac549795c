"""Smoke test of the benchmark script: it runs (--quick, two cheap workloads)
and prints its table. No timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "bench.py")

pytest.importorskip("torch")
pytest.importorskip("jax")


def test_bench_quick_runs():
    p = subprocess.run(
        [sys.executable, BENCH, "--quick", "--only", "mse_loss", "nll_loss", "--repeat", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    assert out.startswith("machine:")
    assert "bandwidth:" in out
    header = [line for line in out.splitlines() if line.startswith("workload")]
    assert header and all(
        c in header[0] for c in ("floor", "anyloss-np", "np-nofast", "torch", "jax-any", "best", "np/best", "np/torch")
    )
    assert "mse_loss 1M" in out and "nll_loss (1024, 1000)" in out
    assert "targets" in out
    assert "MISMATCH" not in out
