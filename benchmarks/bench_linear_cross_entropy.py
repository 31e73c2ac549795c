"""Memory and speed of ``linear_cross_entropy``: anyloss on NumPy against
PyTorch's chunked path (``options=LinearCrossEntropyOptions()``) and its
reference path (``options=None``), forward + gradients for input and weight.

    python benchmarks/bench_linear_cross_entropy.py            # N=4096, in=512, C=32000, float32
    python benchmarks/bench_linear_cross_entropy.py --quick    # small sizes, for CI smoke tests

Memory: each (method, configuration) runs once in its own fresh subprocess.
Inputs are allocated and the libraries warmed up on a tiny call first; then
the peak-RSS counter is reset (``/proc/self/clear_refs``; where that is not
available ``ru_maxrss`` is used and the figure is an upper bound), and the
peak additional memory is the peak RSS during the call minus the RSS just
before it. The gradients (as large as ``input`` and ``weight``) count: the
call allocates them.

Time: one subprocess per configuration runs the three methods in turn,
``--calls`` times each (rotating which goes first), and reports the median
per method. Interleaving the calls makes load from other processes on a
shared machine fall on all methods alike; only figures from one run compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("anyloss-numpy", "torch-chunked", "torch-reference")
CONFIGS = {
    "plain": {},
    "weight+smoothing": {"weight": True, "label_smoothing": 0.1, "ignored": 0.05},
}


def _status_mb(field: str):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_mb():
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024 if sys.platform != "darwin" else ru / 2**20


def _make_call(method: str, config: str, n: int, d: int, c: int):
    """The method's forward + gradients on inputs allocated now; returns the loss."""
    import numpy as np

    opts = CONFIGS[config]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d), dtype=np.float32)
    w = rng.standard_normal((c, d), dtype=np.float32) / np.float32(np.sqrt(d))
    t = rng.integers(0, c, size=n)
    if opts.get("ignored"):
        t = np.where(rng.random(n) < opts["ignored"], -100, t)
    cw = rng.uniform(0.5, 1.5, size=c).astype(np.float32) if opts.get("weight") else None
    ls = opts.get("label_smoothing", 0.0)

    if method == "anyloss-numpy":
        import anyloss
        import anyloss.functional as F

        vg = anyloss.value_and_grad(F.linear_cross_entropy, argnums=(0, 1))

        def call():
            value, (gx, gw) = vg(x, w, t, weight=cw, label_smoothing=ls)
            return float(value)
    else:
        import warnings

        import torch

        warnings.simplefilter("ignore")  # the chunked path's "options ignored" fallback warning
        tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
        tt = torch.from_numpy(t)
        tcw = None if cw is None else torch.from_numpy(cw)
        options = torch.nn.LinearCrossEntropyOptions() if method == "torch-chunked" else None

        def call():
            loss = torch.nn.functional.linear_cross_entropy(tx, tw, tt, weight=tcw, label_smoothing=ls, options=options)
            gx, gw = torch.autograd.grad(loss, [tx, tw])
            return float(loss)

    return call


def memory_worker(method: str, config: str, n: int, d: int, c: int) -> dict:
    # A tiny call first, so that one-off costs (BLAS buffers, thread pools, lazy
    # imports) are not counted as the call's memory.
    _make_call(method, config, 8, d, 16)()
    call = _make_call(method, config, n, d, c)
    import gc

    gc.collect()
    before = _status_mb("VmRSS") or 0.0
    exact = _reset_peak()
    value = call()
    return {"peak_mb": (_peak_mb() or 0.0) - before, "exact_peak": exact, "value": value}


def time_worker(config: str, n: int, d: int, c: int, calls: int) -> dict:
    fns = {m: _make_call(m, config, n, d, c) for m in METHODS}
    for fn in fns.values():
        fn()  # warm up at full size
    times = {m: [] for m in METHODS}
    for i in range(calls):
        for m in METHODS[i % len(METHODS) :] + METHODS[: i % len(METHODS)]:
            t0 = time.perf_counter()
            fns[m]()
            times[m].append(time.perf_counter() - t0)
    return times


def _run(args, env) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (N=512, in=64, C=4000)")
    p.add_argument("--calls", type=int, default=None, help="timed calls per method (default 5, quick 2)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for every method (OMP/OpenBLAS/MKL_NUM_THREADS; default: the libraries' own)",
    )
    p.add_argument("--memory-worker", nargs=5, help=argparse.SUPPRESS)
    p.add_argument("--time-worker", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.memory_worker:
        method, config, n, d, c = a.memory_worker
        print(json.dumps(memory_worker(method, config, int(n), int(d), int(c))))
        return 0
    if a.time_worker:
        config, n, d, c, calls = a.time_worker
        print(json.dumps(time_worker(config, int(n), int(d), int(c), int(calls))))
        return 0

    n, d, c = (512, 64, 4000) if a.quick else (4096, 512, 32000)
    calls = a.calls or (2 if a.quick else 5)
    logits_mb = n * c * 4 / 2**20
    env = dict(os.environ)
    if a.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(a.threads)
    print(f"linear_cross_entropy forward + gradients (input, weight): N={n}, in_features={d}, C={c}, float32")
    print(
        f"full logits: {logits_mb:.0f} MiB; targets for anyloss: peak additional memory <= {logits_mb / 4:.0f} MiB, "
        "time <= torch-chunked"
    )
    print(
        f"threads: {a.threads or 'library defaults'}; time = median of {calls} interleaved calls per method "
        "(on a shared machine only figures from one run compare)\n"
    )
    rows = {}
    for config in CONFIGS:
        for method in METHODS:
            rows[(config, method)] = _run(["--memory-worker", method, config, str(n), str(d), str(c)], env)
        times = _run(["--time-worker", config, str(n), str(d), str(c), str(calls)], env)
        for method in METHODS:
            rows[(config, method)]["times"] = times[method]
        print(f"  {config}: done", flush=True)
    print()
    head = (
        f"{'configuration':17s} {'method':16s} {'median s':>9s} {'vs chunked':>10s} {'peak MiB':>9s} "
        f"{'/ logits':>9s} {'loss':>10s}"
    )
    print(head)
    print("-" * len(head))
    ok = True
    for config in CONFIGS:
        ref = statistics.median(rows[(config, "torch-chunked")]["times"])
        for method in METHODS:
            r = rows[(config, method)]
            tm = statistics.median(r["times"])
            note = "" if r["exact_peak"] else " (ru_maxrss: upper bound)"
            print(
                f"{config:17s} {method:16s} {tm:9.2f} {tm / ref:9.2f}x {r['peak_mb']:9.0f} "
                f"{r['peak_mb'] / logits_mb:9.3f} {r['value']:10.5f}{note}"
            )
            if method == "anyloss-numpy":
                ok &= r["peak_mb"] <= logits_mb / 4 and tm <= ref
    print(
        "\ntorch-chunked falls back to the reference path (with a warning) when label_smoothing != 0: "
        "its row in 'weight+smoothing' is the reference path again."
    )
    if a.quick:
        print(
            "(--quick is a smoke test: at these sizes one automatic chunk holds all the logits; "
            "the targets apply to the full size)"
        )
    else:
        print(
            f"targets {'met' if ok else 'NOT met'}: anyloss peak <= logits / 4 and time <= torch-chunked, "
            "in every configuration"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
