"""anyloss benchmark: value + gradient of every workload of issue 6, for each
contender, measured in one process (memory: one fresh subprocess per contender).

    python benchmarks/bench.py                      # full run (< 10 min on 2 cores)
    python benchmarks/bench.py --quick              # small sizes, no torch.compile (< 1 min; CI smoke test)
    python benchmarks/bench.py --only mse_loss ctc_loss_T50 --json out.json
    python benchmarks/bench.py --list               # workload ids

Contenders (each computes the loss value and the gradient of the arguments the
workload names, float32, on the CPU):

  anyloss-np   anyloss.value_and_grad(F.<loss>, argnums)(*numpy arrays)
  torch        PyTorch eager: torch.nn.functional.<loss> on fresh leaves + .backward()
               (linear_cross_entropy: PyTorch's chunked path, options=LinearCrossEntropyOptions())
  compile      torch.compile(torch.nn.functional.<loss>) + .backward(), when it compiles
               within --compile-timeout seconds (not in --quick)
  torch-any    anyloss.functional.<loss> on torch tensors with requires_grad + .backward()
  jax-any      jax.jit(jax.value_and_grad(anyloss.functional.<loss>)) on JAX arrays
  jax-hand     the best of the hand-written jnp versions of the loss (jit of value_and_grad
               of a jnp forward; for cross_entropy also an analytic softmax-minus-one-hot)

Timing: every contender's first call is a warm-up (compiles; its value and
gradient are checked against PyTorch eager, a "!" marks a mismatch), then
--warmup more rounds, then --repeat timed rounds; in each round every
contender runs once, in an order rotated from round to round so that load from
other processes falls on all alike. Reported: median (and minimum), in ms.

Bandwidth floor: the minimum bytes a value + gradient must move, over a
memory bandwidth measured at start (the best of a NumPy copy and a PyTorch
copy of a 256 MiB array, bytes read + written / fastest of 9 copies):

  floor bytes = every input array read once + every requested gradient written once

(elementwise losses at n elements with gradient for `input` only: 3*4n bytes
for two inputs, 4*4n for three; cross_entropy: logits + targets + gradient).
For linear_cross_entropy, which is bound by its three matrix products, the
floor is printed but means little; there the "torch" column is PyTorch's
chunked path, and to keep the full run under 10 minutes torch.compile and
jax-hand are not timed (--no-skip times them; --quick always does), while
PyTorch's reference path (options=None) is measured for memory only.

Gradients: of the first argument (input / logits / log_probs / anchor /
input1), and for linear_cross_entropy of input and linear_weight.

Peak additional memory (cross_entropy (2048, 32000) and linear_cross_entropy):
each contender runs in its own fresh subprocess, with glibc's malloc made to
return every block > 128 KiB to the system (MALLOC_MMAP_THRESHOLD_), after a
warm-up call (full size for JAX, which compiles for the shapes; the --quick
sizes for the others, so that the measured call is their first at full size);
the peak RSS counter is reset (/proc/self/clear_refs) and the figure is peak
RSS during one call minus RSS just before it. The returned gradients count.
(--quick: anyloss-np and torch only.)

Threads: --threads (default 2, the machine's cores) for PyTorch intra-op,
OpenMP, OpenBLAS and MKL, set before any library is imported, and
OMP_WAIT_POLICY=PASSIVE unless set (see below). NumPy's elementwise kernels are
single-threaded whatever the setting; XLA's CPU client uses one thread per core.
"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field


def _early_threads(argv) -> int:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 2


THREADS = _early_threads(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
# OpenMP threads that spin while waiting make PyTorch up to 10x slower on small
# ops when any other process wants a core (measured here: mse_loss at 1M with
# 2 threads, 32 ms spinning vs 3.3 ms passive); passive waiting costs little
# when the machine is idle. Keep an explicit setting from the environment.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

MiB = 2**20
CONTENDERS = ("anyloss-np", "torch", "compile", "torch-any", "jax-any", "jax-hand")


# --------------------------------------------------------------------------- workloads


@dataclass
class Workload:
    id: str
    label: str
    loss: str  # name in torch.nn.functional and anyloss.functional
    make: object  # (rng, quick) -> (list of positional numpy arrays, dict of keyword numpy arrays)
    argnums: tuple = (0,)
    kw: dict = field(default_factory=dict)  # static keyword options
    hand: tuple = ()  # hand-written jnp versions: ("autodiff", fwd(*arrays, **kwarrays)) | ("analytic", vg)
    group: str = "other"  # "elementwise" (16M), "ce", ...
    memory: bool = False
    torch_kw: dict | None = None  # keyword options for torch eager / compile only
    extra_torch: dict = field(default_factory=dict)  # name -> torch keyword options (extra, memory-only contenders)
    skip: dict = field(default_factory=dict)  # contender -> why it is not timed (--no-skip times it anyway)
    floor_note: str = ""


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def _normal(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)


def _log_softmax_np(z):
    z = z - z.max(axis=-1, keepdims=True)
    return _f32(z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))


def _elem_shape(quick):
    return (1024, 1024) if quick else (4096, 4096)  # 1M / 16M elements


def _make_pair(rng, q):
    s = _elem_shape(q)
    return [_normal(rng, s), _normal(rng, s)], {}


def _make_bce(pos_weight):
    def make(rng, q):
        s = _elem_shape(q)
        kw = {"pos_weight": rng.uniform(0.5, 2.0, size=s[-1]).astype(np.float32)} if pos_weight else {}
        return [_normal(rng, s), rng.random(s, dtype=np.float32)], kw

    return make


def _make_poisson(rng, q):
    s = _elem_shape(q)
    return [_normal(rng, s) * np.float32(0.5), _f32(rng.poisson(1.0, size=s))], {}


def _make_gaussian(rng, q):
    s = _elem_shape(q)
    return [_normal(rng, s), _normal(rng, s), rng.uniform(0.5, 1.5, size=s).astype(np.float32)], {}


def _make_ce(n, c, qn, qc, ignored=0.0):
    def make(rng, q):
        nn_, cc = (qn, qc) if q else (n, c)
        t = rng.integers(0, cc, size=nn_)
        if ignored:
            t = np.where(rng.random(nn_) < ignored, -100, t)
        return [_normal(rng, (nn_, cc)), t], {}

    return make


def _make_nll(rng, q):
    n, c = (1024, 1000) if q else (8192, 1000)
    return [_log_softmax_np(_normal(rng, (n, c))), rng.integers(0, c, size=n)], {}


def _make_kl(rng, q):
    n, c = (1024, 1000) if q else (8192, 1000)
    return [_log_softmax_np(_normal(rng, (n, c))), _f32(np.exp(_log_softmax_np(_normal(rng, (n, c)))))], {}


def _make_triplet(rng, q):
    n, d = (1024, 256) if q else (8192, 256)
    return [_normal(rng, (n, d)), _normal(rng, (n, d)), _normal(rng, (n, d))], {}


def _make_cosine(rng, q):
    n, d = (1024, 256) if q else (8192, 256)
    y = _f32(np.where(rng.random(n) < 0.5, 1.0, -1.0))
    return [_normal(rng, (n, d)), _normal(rng, (n, d)), y], {}


def _make_multi_margin(rng, q):
    n, c = (1024, 100) if q else (4096, 100)
    return [_normal(rng, (n, c)), rng.integers(0, c, size=n)], {}


def _make_multilabel(rng, q):
    n, c = (256, 100) if q else (1024, 100)
    t = np.full((n, c), -1, dtype=np.int64)
    for i in range(n):
        k = rng.integers(1, 11)
        t[i, :k] = rng.choice(c, size=k, replace=False)
    return [_normal(rng, (n, c)), t], {}


def _make_ctc(t_len, n, c, s, qt, qn, qs):
    def make(rng, q):
        tl_, nn_, ss = (qt, qn, qs) if q else (t_len, n, s)
        lp = _log_softmax_np(_normal(rng, (tl_, nn_, c)))
        targets = rng.integers(1, c, size=(nn_, ss))
        il = np.full(nn_, tl_, dtype=np.int64)
        tl = rng.integers(ss // 2, ss + 1, size=nn_)
        return [lp, targets, il, tl], {}

    return make


def _make_lce(rng, q):
    n, d, c = (512, 64, 4000) if q else (4096, 512, 32000)
    x = _normal(rng, (n, d))
    w = _normal(rng, (c, d)) / np.float32(math.sqrt(d))
    return [x, _f32(w), rng.integers(0, c, size=n)], {}


# Hand-written jnp references (jnp imported lazily).


def _jnp():
    import jax.numpy as jnp

    return jnp


def h_mse(x, y):
    return _jnp().mean((x - y) ** 2)


def h_l1(x, y):
    return _jnp().mean(_jnp().abs(x - y))


def h_smooth_l1(x, y, beta=1.0):
    jnp = _jnp()
    d = jnp.abs(x - y)
    return jnp.mean(jnp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta))


def h_huber(x, y, delta=1.0):
    jnp = _jnp()
    d = jnp.abs(x - y)
    return jnp.mean(jnp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)))


def h_bce_logits(x, y, pos_weight=None):
    import jax

    jnp = _jnp()
    sp = jax.nn.softplus(-x)
    if pos_weight is None:
        return jnp.mean((1 - y) * x + sp)
    return jnp.mean((1 - y) * x + ((pos_weight - 1) * y + 1) * sp)


def h_poisson(x, y):
    jnp = _jnp()
    return jnp.mean(jnp.exp(x) - y * x)


def h_gaussian(x, y, var, eps=1e-6):
    jnp = _jnp()
    v = jnp.maximum(var, eps)
    return jnp.mean(0.5 * (jnp.log(v) + (x - y) ** 2 / v))


def _ce_hand(ignore_index=-100, label_smoothing=0.0):
    def fwd(x, t):
        import jax

        jnp = _jnp()
        logp = jax.nn.log_softmax(x, axis=-1)
        valid = t != ignore_index
        tt = jnp.where(valid, t, 0)
        nll = -jnp.take_along_axis(logp, tt[:, None], axis=-1)[:, 0]
        per = (
            nll
            if not label_smoothing
            else ((1 - label_smoothing) * nll - label_smoothing / x.shape[-1] * jnp.sum(logp, axis=-1))
        )
        per = jnp.where(valid, per, 0.0)
        return jnp.sum(per) / jnp.sum(valid)

    def vg(x, t):
        """Analytic: grad = (softmax - (1-eps) onehot - eps/C) * valid / n_valid."""
        import jax

        jnp = _jnp()
        c = x.shape[-1]
        m = jnp.max(x, axis=-1, keepdims=True)
        e = jnp.exp(x - m)
        s = jnp.sum(e, axis=-1, keepdims=True)
        lse = (m + jnp.log(s))[:, 0]
        valid = t != ignore_index
        tt = jnp.where(valid, t, 0)
        nvalid = jnp.sum(valid)
        xt = jnp.take_along_axis(x, tt[:, None], axis=-1)[:, 0]
        per = lse - xt
        if label_smoothing:
            per = (1 - label_smoothing) * per + label_smoothing * (lse - jnp.sum(x, axis=-1) / c)
        value = jnp.sum(jnp.where(valid, per, 0.0)) / nvalid
        scale = jnp.where(valid, 1.0 / nvalid, 0.0)[:, None].astype(x.dtype)
        onehot = jax.nn.one_hot(tt, c, dtype=x.dtype) * (1 - label_smoothing) + label_smoothing / c
        return value, (e / s - onehot) * scale

    return (("autodiff", fwd), ("analytic", vg))


def h_nll(x, t):
    jnp = _jnp()
    return -jnp.mean(jnp.take_along_axis(x, t[:, None], axis=-1))


def h_kl_batchmean(x, t):
    jnp = _jnp()
    return jnp.sum(t * (jnp.log(t) - x)) / x.shape[0]


def h_triplet(a, p, n, margin=1.0, eps=1e-6):
    jnp = _jnp()
    dp = jnp.sqrt(jnp.sum((a - p + eps) ** 2, axis=-1))
    dn = jnp.sqrt(jnp.sum((a - n + eps) ** 2, axis=-1))
    return jnp.mean(jnp.maximum(dp - dn + margin, 0.0))


def h_cosine(x1, x2, y, margin=0.0):
    jnp = _jnp()
    eps = 1e-12
    cos = jnp.sum(x1 * x2, axis=-1) / jnp.sqrt((jnp.sum(x1 * x1, axis=-1) + eps) * (jnp.sum(x2 * x2, axis=-1) + eps))
    return jnp.mean(jnp.where(y == 1, 1 - cos, jnp.maximum(cos - margin, 0.0)))


def h_multi_margin(x, t, margin=1.0):
    jnp = _jnp()
    xt = jnp.take_along_axis(x, t[:, None], axis=-1)
    z = jnp.maximum(margin - xt + x, 0.0)
    z = jnp.where(jnp.arange(x.shape[-1])[None, :] == t[:, None], 0.0, z)
    return jnp.mean(jnp.sum(z, axis=-1) / x.shape[-1])


def h_lce(x, w, t):
    import jax

    jnp = _jnp()
    logp = jax.nn.log_softmax(x @ w.T, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=-1))


def _ad(f):
    return (("autodiff", f),)


def workloads() -> list[Workload]:
    E = "elementwise"
    ws = [
        Workload("mse_loss", "mse_loss 16M", "mse_loss", _make_pair, hand=_ad(h_mse), group=E),
        Workload("l1_loss", "l1_loss 16M", "l1_loss", _make_pair, hand=_ad(h_l1), group=E),
        Workload("smooth_l1_loss", "smooth_l1_loss 16M", "smooth_l1_loss", _make_pair, hand=_ad(h_smooth_l1), group=E),
        Workload("huber_loss", "huber_loss 16M", "huber_loss", _make_pair, hand=_ad(h_huber), group=E),
        Workload(
            "bce_with_logits",
            "bce_with_logits 16M",
            "binary_cross_entropy_with_logits",
            _make_bce(False),
            hand=_ad(h_bce_logits),
            group=E,
        ),
        Workload(
            "bce_with_logits_pos_weight",
            "bce_with_logits pos_weight 16M",
            "binary_cross_entropy_with_logits",
            _make_bce(True),
            hand=_ad(h_bce_logits),
            group=E,
        ),
        Workload(
            "poisson_nll_loss", "poisson_nll_loss 16M", "poisson_nll_loss", _make_poisson, hand=_ad(h_poisson), group=E
        ),
        Workload(
            "gaussian_nll_loss",
            "gaussian_nll_loss 16M (var n)",
            "gaussian_nll_loss",
            _make_gaussian,
            hand=_ad(h_gaussian),
            group=E,
        ),
    ]
    for (n, c), (qn, qc) in (((8192, 1000), (1024, 1000)), ((2048, 32000), (256, 8000))):
        mem = (n, c) == (2048, 32000)
        base = f"cross_entropy_{n}x{c}"
        lab = f"cross_entropy ({n}, {c})"
        ws += [
            Workload(base, lab, "cross_entropy", _make_ce(n, c, qn, qc), hand=_ce_hand(), group="ce", memory=mem),
            Workload(
                base + "_ignore",
                lab + " 10% ignored",
                "cross_entropy",
                _make_ce(n, c, qn, qc, ignored=0.1),
                hand=_ce_hand(),
                group="ce",
            ),
            Workload(
                base + "_ls",
                lab + " ls=0.1",
                "cross_entropy",
                _make_ce(n, c, qn, qc),
                kw={"label_smoothing": 0.1},
                hand=_ce_hand(label_smoothing=0.1),
                group="ce",
            ),
        ]
    ws += [
        Workload("nll_loss", "nll_loss (8192, 1000)", "nll_loss", _make_nll, hand=_ad(h_nll)),
        Workload(
            "kl_div",
            "kl_div (8192, 1000) batchmean",
            "kl_div",
            _make_kl,
            kw={"reduction": "batchmean"},
            hand=_ad(h_kl_batchmean),
        ),
        Workload(
            "triplet_margin_loss",
            "triplet_margin_loss (8192, 256)",
            "triplet_margin_loss",
            _make_triplet,
            hand=_ad(h_triplet),
        ),
        Workload(
            "cosine_embedding_loss",
            "cosine_embedding_loss (8192, 256)",
            "cosine_embedding_loss",
            _make_cosine,
            hand=_ad(h_cosine),
        ),
        Workload(
            "multi_margin_loss",
            "multi_margin_loss (4096, 100)",
            "multi_margin_loss",
            _make_multi_margin,
            hand=_ad(h_multi_margin),
        ),
        Workload(
            "multilabel_margin_loss",
            "multilabel_margin_loss (1024, 100)",
            "multilabel_margin_loss",
            _make_multilabel,
            group="target",
        ),
        Workload(
            "ctc_loss_T200",
            "ctc_loss T=200 N=32 C=40 S=60",
            "ctc_loss",
            _make_ctc(200, 32, 40, 60, 50, 8, 20),
            group="target",
        ),
        Workload(
            "ctc_loss_T50",
            "ctc_loss T=50 N=16 C=20 S=30",
            "ctc_loss",
            _make_ctc(50, 16, 20, 30, 25, 4, 10),
            group="target",
        ),
        Workload(
            "linear_cross_entropy",
            "linear_cross_entropy N=4096 in=512 C=32000",
            "linear_cross_entropy",
            _make_lce,
            argnums=(0, 1),
            hand=_ad(h_lce),
            group="lce",
            memory=True,
            torch_kw={"options": "chunked"},
            extra_torch={"torch-ref": {}},
            skip={
                "compile": "not timed (time budget): in a trial run 10.4 s a call, eager chunked 10.7 s",
                "jax-hand": "not timed (time budget; no target needs it): in a trial run 6.3 s a call, jax-any 7.9 s",
            },
            floor_note="compute-bound (3 GEMMs)",
        ),
    ]
    return ws


def quick_label(w: Workload) -> str:
    if w.group == "elementwise":
        return w.label.replace("16M", "1M")
    for k, v in (
        ("cross_entropy_8192x1000", "(1024, 1000)"),
        ("cross_entropy_2048x32000", "(256, 8000)"),
        ("nll_loss", "(1024, 1000)"),
        ("kl_div", "(1024, 1000)"),
        ("triplet", "(1024, 256)"),
        ("cosine", "(1024, 256)"),
        ("multi_margin", "(1024, 100)"),
        ("multilabel", "(256, 100)"),
        ("ctc_loss_T200", "T=50 N=8 C=40 S=20"),
        ("ctc_loss_T50", "T=25 N=4 C=20 S=10"),
        ("linear_cross", "N=512 in=64 C=4000"),
    ):
        if w.id.startswith(k):
            return re.sub(r"\(\d+, \d+\)|T=.*|N=\d+ in=.*", v, w.label, count=1)
    return w.label


# --------------------------------------------------------------------------- contenders


def _torch_kw(w: Workload, which: str | None = None):
    import torch

    kw = dict(w.kw)
    extra = w.torch_kw if which is None else w.extra_torch[which]
    for k, v in (extra or {}).items():
        kw[k] = torch.nn.LinearCrossEntropyOptions() if v == "chunked" else v
    return kw


def build(w: Workload, name: str, arrays, kwarrays):
    """A zero-argument callable computing (value, gradients) for contender ``name``."""
    if name == "anyloss-np":
        import anyloss
        import anyloss.functional as F

        vg = anyloss.value_and_grad(getattr(F, w.loss), argnums=w.argnums)
        kw = {**w.kw, **kwarrays}
        return lambda: vg(*arrays, **kw)

    if name in ("torch", "compile", "torch-any") or name in w.extra_torch:
        import torch

        ts = [torch.from_numpy(a) for a in arrays]
        kwt = {k: torch.from_numpy(v) for k, v in kwarrays.items()}
        if name == "torch-any":
            import anyloss.functional as F

            fn, kw = getattr(F, w.loss), dict(w.kw)
        else:
            fn = getattr(torch.nn.functional, w.loss)
            kw = _torch_kw(w, name if name in w.extra_torch else None)
            if name == "compile":
                fn = torch.compile(fn)
        kw.update(kwt)
        argnums = w.argnums

        def call():
            ins = list(ts)
            for i in argnums:
                ins[i] = ts[i].detach().requires_grad_()
            out = fn(*ins, **kw)
            out.backward()
            return out, tuple(ins[i].grad for i in argnums)

        return call

    if name in ("jax-any", "jax-hand"):
        import jax

        ja = [jax.device_put(a) for a in arrays]
        kwnames = list(kwarrays)
        ka = [jax.device_put(kwarrays[k]) for k in kwnames]
        n = len(ja)

        def wrap(f, static):
            def g(*all_):
                return f(*all_[:n], **static, **dict(zip(kwnames, all_[n:])))

            return g

        argnums = w.argnums if len(w.argnums) > 1 else w.argnums[0]
        if name == "jax-any":
            import anyloss.functional as F

            fns = {"": jax.jit(jax.value_and_grad(wrap(getattr(F, w.loss), w.kw), argnums=argnums))}
        else:
            if not w.hand:
                raise NotImplementedError("no hand-written jnp version")
            fns = {}
            for kind, f in w.hand:
                g = wrap(f, {k: v for k, v in w.kw.items() if k not in ("label_smoothing", "reduction")})
                fns[kind] = jax.jit(jax.value_and_grad(g, argnums=argnums) if kind == "autodiff" else g)

        def mk(f):
            def call():
                v, gr = f(*ja, *ka)
                return jax.block_until_ready((v, gr if isinstance(gr, tuple) else (gr,)))

            return call

        calls = {k: mk(f) for k, f in fns.items()}
        if len(calls) == 1:
            return next(iter(calls.values()))
        return calls  # several variants: the caller times each and keeps the best

    raise ValueError(name)


def _to_np(x):
    if hasattr(x, "detach"):
        return x.detach().numpy()
    return np.asarray(x)


def check(result, ref):
    """'' if (value, grads) agree with the reference, else a short description."""
    v, gs = result
    rv, rgs = ref
    gs = gs if isinstance(gs, (tuple, list)) else (gs,)
    rgs = rgs if isinstance(rgs, (tuple, list)) else (rgs,)
    v, rv = float(_to_np(v)), float(_to_np(rv))
    if not (abs(v - rv) <= 1e-3 * max(1.0, abs(rv)) or (math.isnan(v) and math.isnan(rv))):
        return f"value {v:.6g} vs torch {rv:.6g}"
    for g, rg in zip(gs, rgs):
        g, rg = _to_np(g), _to_np(rg)
        if g.shape != rg.shape:
            return f"grad shape {g.shape} vs {rg.shape}"
        scale = float(np.max(np.abs(rg))) or 1.0
        err = float(np.max(np.abs(g.astype(np.float64) - rg))) / scale
        if not err <= 2e-3:
            return f"grad rel. err {err:.2g}"
    return ""


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


# --------------------------------------------------------------------------- machine / bandwidth


def machine_line() -> str:
    import jax
    import torch

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "?"
    try:
        with open("/proc/meminfo") as f:
            ram = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu}, {cores} cores, {ram} RAM, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"jax {jax.__version__}; threads: torch {torch.get_num_threads()} (intra-op), "
        f"OMP/OpenBLAS/MKL {THREADS}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}, "
        f"numpy elementwise 1, XLA CPU default ({cores}); anyloss: {_anyloss_paths()}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )


def _anyloss_paths() -> str:
    """How anyloss on NumPy runs here: its row blocks' threads and whether the
    optional compiled kernels (numba) are in use."""
    from anyloss import _config
    from anyloss._accel import blocks as _blocks
    from anyloss._accel import kernels as _kernels

    kernels = f"numba {_kernels._numba().__version__} kernels" if _kernels.available() else "no numba kernels"
    return f"row blocks of {_blocks.BLOCK} elements on {_config.threads} thread(s), {kernels}"


def measure_bandwidth(quick: bool) -> dict:
    import torch

    n = 256 * MiB // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)
    ts, td = torch.from_numpy(src), torch.from_numpy(dst)
    out = {}
    for name, fn in (("numpy copy", lambda: np.copyto(dst, src)), ("torch copy", lambda: td.copy_(ts))):
        fn()
        times = []
        for _ in range(9):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = 2 * src.nbytes / min(times)
    out["best"] = max(out.values())
    return out


# --------------------------------------------------------------------------- memory (subprocess)


def _status_kib(field_: str):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_ + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_worker(wid: str, name: str, quick: bool) -> dict:
    import resource

    w = {x.id: x for x in workloads()}[wid]

    def make(q):
        arrays, kwarrays = w.make(np.random.default_rng(zlib.crc32(w.id.encode())), q)
        call = build(w, name, arrays, kwarrays)
        return next(iter(call.values())) if isinstance(call, dict) else call  # jax-hand: the first variant

    if name.startswith("jax"):
        call = make(quick)
        call()  # warm-up at full size (compiles for these shapes)
    else:
        # Warm-up on the small sizes (lazy imports, thread pools, kernels); the
        # measured call is then the first at full size, which no allocator cache helps.
        make(True)()
        call = make(quick)
    gc.collect()
    before = _status_kib("VmRSS") or 0
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        exact = True
    except OSError:
        exact = False
    t0 = time.perf_counter()
    r = call()
    dt = time.perf_counter() - t0
    peak = _status_kib("VmHWM") if exact else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mib": (peak - before) / 1024, "exact": exact, "value": float(_to_np(r[0])), "call_s": dt}


def run_memory(w: Workload, names, quick: bool) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    out = {}
    for name in names:
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-worker", w.id, name, "--threads", str(THREADS)]
        if quick:
            cmd.append("--quick")
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
            if p.returncode:
                out[name] = {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:120]}
            else:
                out[name] = json.loads(p.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            out[name] = {"error": "timeout"}
    return out


# --------------------------------------------------------------------------- one workload


def run_workload(w: Workload, args, compile_budget: list) -> dict:
    rng = np.random.default_rng(zlib.crc32(w.id.encode()))
    arrays, kwarrays = w.make(rng, args.quick)
    floor = (
        sum(a.nbytes for a in arrays)
        + sum(a.nbytes for a in kwarrays.values())
        + sum(arrays[i].nbytes for i in w.argnums)
    )
    skip = {} if args.no_skip or args.quick else w.skip
    names = [c for c in CONTENDERS if not (c == "compile" and args.no_compile) and c not in skip]
    row = {
        "id": w.id,
        "label": quick_label(w) if args.quick else w.label,
        "floor_bytes": floor,
        "floor_s": floor / args.bandwidth,
        "times": {},
        "errors": {},
        "notes": {},
        "mismatch": {},
        "grad_mib": sum(arrays[i].nbytes for i in w.argnums) / MiB,
    }
    if args.no_compile:
        row["errors"]["compile"] = "skipped (--quick)" if args.quick else "skipped (--no-compile)"
    for c, why in skip.items():
        row["errors"].setdefault(c, why)

    calls, first, ref = {}, {}, None
    for name in ["torch"] + [n for n in names if n != "torch"]:
        t0 = time.perf_counter()
        timeout = name == "compile"
        try:
            fn = build(w, name, arrays, kwarrays)
            variants = fn if isinstance(fn, dict) else {"": fn}
            if timeout:
                if compile_budget[0] <= 0:
                    raise _Timeout("budget")
                signal.signal(signal.SIGALRM, _alarm)
                signal.alarm(max(1, int(min(args.compile_timeout, compile_budget[0]))))
            try:
                for vname, f in list(variants.items()):
                    try:
                        t1 = time.perf_counter()
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always")
                            res = f()  # first call: compiles
                        first[(name, vname)] = time.perf_counter() - t1
                        for wm in caught:
                            if "anyloss" in wm.filename:
                                row["notes"].setdefault(
                                    f"{name} warns",
                                    f"{wm.category.__name__} at "
                                    f"{os.path.basename(wm.filename)}:{wm.lineno}: {wm.message}"[:140],
                                )
                    except Exception as e:  # a failing variant of several
                        if len(variants) == 1:
                            raise
                        del variants[vname]
                        row["notes"][f"{name}:{vname}"] = f"{type(e).__name__}: {e}"[:100]
                        continue
                    if name == "torch":
                        ref = res
                    elif ref is not None:
                        bad = check(res, ref)
                        if bad:
                            row["mismatch"][name + (f":{vname}" if vname else "")] = bad
                    del res
            finally:
                if timeout:
                    signal.alarm(0)
                    compile_budget[0] -= time.perf_counter() - t0
            for vname, f in variants.items():
                calls[(name, vname)] = f
        except _Timeout as e:
            row["errors"][name] = (
                "compile budget exhausted" if str(e) == "budget" else f"compile > {args.compile_timeout:.0f} s"
            )
        except Exception as e:  # noqa: BLE001 - report and go on
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            row["errors"][name] = f"{type(e).__name__}: {msg}"[:110]
        if name == "compile":
            row["compile_s"] = time.perf_counter() - t0
    gc.collect()

    keys = list(calls)
    times = {k: [] for k in keys}
    for r in range(args.warmup + args.repeat):
        order = keys[r % len(keys) :] + keys[: r % len(keys)]
        for k in order:
            if r < args.warmup and first[k] > 2.0:
                continue  # a slow call: its first call was warm-up enough
            t0 = time.perf_counter()
            res = calls[k]()
            dt = time.perf_counter() - t0
            del res
            if r >= args.warmup:
                times[k].append(dt)
    # Contenders with several variants (jax-hand): keep the best median.
    for name in names:
        vs = {v: t for (n, v), t in times.items() if n == name}
        if not vs:
            continue
        best = min(vs, key=lambda v: statistics.median(vs[v]))
        row["times"][name] = vs[best]
        if len(vs) > 1:
            row["notes"][name] = (
                "best: " + best + "; " + ", ".join(f"{v} {statistics.median(t) * 1e3:.1f} ms" for v, t in vs.items())
            )
    del calls, arrays, kwarrays
    gc.collect()
    try:
        import torch

        if "compile" in names:
            torch._dynamo.reset()
    except Exception:  # noqa: BLE001
        pass
    if w.memory and not args.no_memory:
        mem_names = [n for n in names if n != "compile" and n not in row["errors"]] + list(w.extra_torch)
        if args.quick:  # a smoke test of the mechanism: two subprocesses
            mem_names = [n for n in mem_names if n in ("anyloss-np", "torch")]
        row["memory"] = run_memory(w, mem_names, args.quick)
    return row


# --------------------------------------------------------------------------- report


def med(row, name):
    t = row["times"].get(name)
    return statistics.median(t) if t else None


def fmt_t(t):
    """Milliseconds, as the tables print them."""
    if t is None:
        return "n/a"
    return f"{t * 1e3:.1f}" if t < 1 else f"{t * 1e3:.0f}"


def fmt_r(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


COLS = ("anyloss-np", "torch", "compile", "torch-any", "jax-any", "jax-hand")


def table(rows, stat) -> str:
    head = (
        f"{'workload':44s} {'floor':>7s} "
        + " ".join(f"{c:>10s}" for c in COLS)
        + f" {'np/torch':>8s} {'np/floor':>8s} {'jA/jH':>6s} {'tA/t':>6s}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:

        def get(n):
            t = row["times"].get(n)  # noqa: B023
            return stat(t) if t else None

        cells = []
        for c in COLS:
            s = fmt_t(get(c))
            if c in row["mismatch"] or any(k.startswith(c + ":") for k in row["mismatch"]):
                s += "!"
            cells.append(f"{s:>10s}")
        a, t = get("anyloss-np"), get("torch")
        lines.append(
            f"{row['label']:44s} {fmt_t(row['floor_s']):>7s} "
            + " ".join(cells)
            + f" {fmt_r(a, t):>8s} {fmt_r(a, row['floor_s']):>8s}"
            f" {fmt_r(get('jax-any'), get('jax-hand')):>6s} {fmt_r(get('torch-any'), t):>6s}"
        )
    return "\n".join(lines)


def notes(rows) -> str:
    out = []
    for row in rows:
        bits = []
        for n, e in row["errors"].items():
            if n == "compile" and e.startswith("skipped"):
                continue
            if n == "jax-hand" and e.startswith("NotImplementedError"):
                continue
            bits.append(f"{n}: n/a ({e})")
        if "compile_s" in row and "compile" in row["times"]:
            bits.append(f"compile: first call {row['compile_s']:.1f} s")
        for n, m in row["mismatch"].items():
            bits.append(f"{n}: MISMATCH {m}")
        for n, m in row["notes"].items():
            bits.append(f"{n}: {m}")
        if "memory" in row:
            ms = ", ".join(
                f"{n} {v['peak_mib']:.0f}" if "peak_mib" in v else f"{n} n/a ({v.get('error')})"
                for n, v in row["memory"].items()
            )
            bits.append(f"peak additional MiB (own subprocess each): {ms}")
            for n, v in row["memory"].items():
                if n not in COLS and "call_s" in v:
                    bits.append(f"{n}: one call {v['call_s']:.2f} s (in its memory subprocess; not in the table)")
        if bits:
            out.append(f"  {row['label']}:\n" + "\n".join(f"      {b}" for b in bits))
    return "\n".join(out)


def targets(rows, quick) -> list[tuple[str, bool | None, str]]:
    by = {r["id"]: r for r in rows}
    res = []

    def ratio(r, a, b):
        x, y = med(r, a), med(r, b)
        return None if x is None or y is None else x / y

    def every_workload(title, a, b, bound):
        """A target on the ratio a/b over every workload that has both: met, count, worst, misses."""
        rs = [(r["label"], ratio(r, a, b)) for r in rows]
        rs = [(lab, x) for lab, x in rs if x is not None]
        if rs:
            bad = [f"{lab} {x:.2f}x" for lab, x in rs if x > bound]
            worst = max(rs, key=lambda t: t[1])
            res.append(
                (
                    title,
                    not bad,
                    f"{len(rs) - len(bad)}/{len(rs)} met; worst {worst[0]} {worst[1]:.2f}x"
                    + (f"; missed: {'; '.join(bad)}" if bad else ""),
                )
            )

    # 1. anyloss-np <= torch eager on every workload
    every_workload("anyloss on NumPy <= PyTorch eager time, every workload", "anyloss-np", "torch", 1.0)
    # 2. elementwise within 3x of the bandwidth floor
    rs = [
        (r["label"], med(r, "anyloss-np") / r["floor_s"])
        for r in rows
        if r["id"] in ELEMENTWISE and med(r, "anyloss-np") is not None
    ]
    if rs:
        bad = [f"{lab} {x:.2f}x" for lab, x in rs if x > 3.0]
        res.append(
            (
                "elementwise losses (16M) within 3x of the bandwidth floor",
                not bad,
                ", ".join(f"{lab.split()[0]}{' pw' if 'pos_weight' in lab else ''} {x:.2f}x" for lab, x in rs),
            )
        )
    # 3. cross_entropy (2048, 32000): memory <= gradient, time <= 0.5x torch
    r = by.get("cross_entropy_2048x32000")
    if r:
        grad_mib = r["grad_mib"]
        m = r.get("memory", {}).get("anyloss-np", {})
        if "peak_mib" in m:
            tm = r.get("memory", {}).get("torch", {}).get("peak_mib")
            res.append(
                (
                    "cross_entropy (2048, 32000) peak additional memory <= gradient size",
                    m["peak_mib"] <= grad_mib * 1.01,
                    f"{m['peak_mib']:.0f} MiB vs gradient {grad_mib:.0f} MiB ({m['peak_mib'] / grad_mib:.2f}x; "
                    f"torch eager {tm:.0f} MiB)"
                    if tm is not None
                    else f"{m['peak_mib']:.0f} MiB vs gradient {grad_mib:.0f} MiB",
                )
            )
        x = ratio(r, "anyloss-np", "torch")
        if x is not None:
            extra = []
            for sfx in ("_ignore", "_ls"):
                rr = by.get("cross_entropy_2048x32000" + sfx)
                if rr and ratio(rr, "anyloss-np", "torch") is not None:
                    extra.append(f"{sfx[1:]} {ratio(rr, 'anyloss-np', 'torch'):.2f}x")
            res.append(
                (
                    "cross_entropy (2048, 32000) time <= 0.5x PyTorch eager",
                    x <= 0.5,
                    f"{x:.2f}x ({fmt_t(med(r, 'anyloss-np'))} vs {fmt_t(med(r, 'torch'))} ms)"
                    + (f"; variants: {', '.join(extra)}" if extra else ""),
                )
            )
    # 4. ctc_loss and multilabel_margin_loss <= torch eager
    rs = [(r["label"], ratio(r, "anyloss-np", "torch")) for r in rows if r["id"] in TARGET_TORCH]
    rs = [(lab, x) for lab, x in rs if x is not None]
    if rs:
        res.append(
            (
                "ctc_loss and multilabel_margin_loss <= PyTorch eager",
                all(x <= 1.0 for _, x in rs),
                ", ".join(f"{lab.split(' (')[0]} {x:.2f}x" for lab, x in rs),
            )
        )
    # 5. JAX: anyloss under jit within 1.2x of the best hand-written jnp
    every_workload("JAX: anyloss under jit within 1.2x of hand-written jnp", "jax-any", "jax-hand", 1.2)
    # 6. torch tensors through anyloss within 1.2x of torch.nn.functional
    every_workload("PyTorch tensors through anyloss within 1.2x of torch.nn.functional", "torch-any", "torch", 1.2)
    # linear_cross_entropy against PyTorch's chunked path (time and memory)
    r = by.get("linear_cross_entropy")
    if r:
        x = ratio(r, "anyloss-np", "torch")
        m = r.get("memory", {})
        am, tm = m.get("anyloss-np", {}).get("peak_mib"), m.get("torch", {}).get("peak_mib")
        ok = None if x is None else (x <= 1.0 and (am is None or tm is None or am <= tm))
        res.append(
            (
                "linear_cross_entropy vs PyTorch chunked: time <= and peak memory <=",
                ok,
                (f"time {x:.2f}x ({fmt_t(med(r, 'anyloss-np'))} vs {fmt_t(med(r, 'torch'))} ms)" if x else "time n/a")
                + (f"; memory {am:.0f} vs {tm:.0f} MiB" if am is not None and tm is not None else ""),
            )
        )
    return res


ELEMENTWISE = {w.id for w in workloads() if w.group == "elementwise"}
TARGET_TORCH = {"ctc_loss_T200", "ctc_loss_T50", "multilabel_margin_loss"}


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes, 3 timed rounds, no torch.compile (smoke test)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="workload ids (or prefixes / glob patterns); see --list")
    p.add_argument("--list", action="store_true", help="list workload ids and exit")
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    p.add_argument("--repeat", type=int, default=None, help="timed rounds (default 7; --quick 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds after the first call (default 1)")
    p.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument(
        "--no-skip",
        action="store_true",
        help="also time the contenders a workload leaves out to keep the full run under 10 minutes",
    )
    p.add_argument("--compile-timeout", type=float, default=60.0, help="seconds per torch.compile (default 60)")
    p.add_argument(
        "--compile-budget", type=float, default=240.0, help="seconds for all torch.compile calls together (default 240)"
    )
    p.add_argument("--memory-worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.memory_worker:
        print(json.dumps(memory_worker(*args.memory_worker, args.quick)))
        return 0
    ws = workloads()
    if args.list:
        for w in ws:
            print(f"{w.id:32s} {w.label}")
        return 0
    if args.only:
        ids = {w.id for w in ws}  # an exact id selects itself only; otherwise a prefix or a glob pattern
        sel = [
            w
            for w in ws
            if any(
                w.id == pat if pat in ids else (w.id.startswith(pat) or fnmatch.fnmatch(w.id, pat)) for pat in args.only
            )
        ]
        if not sel:
            p.error(f"--only matched no workload; ids: {', '.join(w.id for w in ws)}")
        ws = sel
    if args.quick:
        args.no_compile = True
    args.repeat = args.repeat or (3 if args.quick else 7)

    t_start = time.perf_counter()
    warnings.simplefilter("ignore")  # first calls record anyloss's warnings in the notes
    import torch

    torch.set_num_threads(THREADS)
    import jax  # noqa: F401

    print("machine:", machine_line(), flush=True)
    bw = measure_bandwidth(args.quick)
    args.bandwidth = bw["best"]
    print(
        f"bandwidth: {bw['best'] / 1e9:.2f} GB/s (best of: "
        + ", ".join(f"{k} {v / 1e9:.2f} GB/s" for k, v in bw.items() if k != "best")
        + "; 256 MiB, bytes read + written / fastest of 9)"
    )
    print(
        f"mode: {'--quick' if args.quick else 'full'}; float32; value + gradient; per contender: first call "
        f"(compile, checked), {args.warmup} warm-up round(s), median of {args.repeat} timed rounds\n",
        flush=True,
    )

    compile_budget = [args.compile_budget]
    rows = []
    for w in ws:
        t0 = time.perf_counter()
        row = run_workload(w, args, compile_budget)
        rows.append(row)
        print(f"  {w.id}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    print(
        "median time, ms (floor = minimum bytes / bandwidth; ratios of medians; '!' = value or gradient "
        "disagrees with torch)"
    )
    print(table(rows, statistics.median))
    print("\nminimum time, ms")
    print(table(rows, min))
    nt = notes(rows)
    if nt:
        print("\nnotes:")
        print(nt)
    print("\ntargets" + (" (--quick: sizes are small, the targets apply to the full run)" if args.quick else "") + ":")
    tg = targets(rows, args.quick)
    for name, ok, fig in tg:
        print(f"  [{'met' if ok else 'n/a' if ok is None else 'MISSED'}] {name}: {fig}")
    total = time.perf_counter() - t_start
    print(f"\ntotal time {total:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": machine_line(),
                    "bandwidth": bw,
                    "quick": args.quick,
                    "repeat": args.repeat,
                    "rows": rows,
                    "targets": [{"target": n, "met": ok, "figure": fig} for n, ok, fig in tg],
                    "total_s": total,
                },
                f,
                indent=1,
                default=float,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
