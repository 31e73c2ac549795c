"""Speed of ``cross_entropy`` and ``ctc_loss``, value + gradient, anyloss on
NumPy against PyTorch eager on the CPU, measured in the same run.

    python benchmarks/bench_classification.py           # the issue's sizes
    python benchmarks/bench_classification.py --quick   # small sizes, for CI smoke tests

Each workload runs ``--repeat`` times after a warm-up, alternating anyloss and
PyTorch so that load from other processes falls on both; the figures are
medians and the ratio is anyloss / PyTorch (below 1: anyloss is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import anyloss
import anyloss.functional as F

TF = torch.nn.functional


def cross_entropy(rng, n, c, **kw):
    x = rng.standard_normal((n, c)).astype(np.float32)
    t = rng.integers(0, c, size=n)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)

    def ours():
        return anyloss.value_and_grad(F.cross_entropy)(x, t, **kw)

    def theirs():
        a = xt.detach().requires_grad_()
        out = TF.cross_entropy(a, tt, **kw)
        out.backward()
        return out, a.grad

    return ours, theirs


def ctc(rng, t_len, n, c, s):
    lp = np.log(np.random.default_rng(0).dirichlet(np.ones(c), size=(t_len, n))).astype(np.float32)
    tl = rng.integers(s // 2, s + 1, size=n)
    targets = rng.integers(1, c, size=(n, s))
    il = np.full(n, t_len)
    lpt = torch.from_numpy(lp)
    args_t = [torch.from_numpy(a) for a in (targets, il, tl)]

    def ours():
        return anyloss.value_and_grad(F.ctc_loss)(lp, targets, il, tl)

    def theirs():
        a = lpt.detach().requires_grad_()
        out = TF.ctc_loss(a, *args_t)
        out.backward()
        return out, a.grad

    return ours, theirs


def median_times(ours, theirs, repeat):
    ours(), theirs()  # warm-up
    a, b = [], []
    for _ in range(repeat):
        for fn, acc in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    q = args.quick
    workloads = {
        f"cross_entropy ({256 if q else 8192}, {100 if q else 1000})": cross_entropy(rng, 256 if q else 8192,
                                                                                   100 if q else 1000),
        f"cross_entropy ({256 if q else 8192}, {100 if q else 1000}) label_smoothing=0.1":
            cross_entropy(rng, 256 if q else 8192, 100 if q else 1000, label_smoothing=0.1),
        f"ctc_loss T={30 if q else 150} N={4 if q else 32} C=28 S={10 if q else 40}":
            ctc(rng, 30 if q else 150, 4 if q else 32, 28, 10 if q else 40),
    }
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"median of {args.repeat}, value + gradient, float32")
    print(f"{'workload':58s} {'anyloss':>10s} {'torch':>10s} {'ratio':>7s}")
    for name, (ours, theirs) in workloads.items():
        a, b = median_times(ours, theirs, args.repeat)
        print(f"{name:58s} {a * 1e3:8.2f}ms {b * 1e3:8.2f}ms {a / b:7.2f}")


if __name__ == "__main__":
    main()
