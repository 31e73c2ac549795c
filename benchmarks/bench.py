"""anyloss benchmark: value + gradient of every workload of issues 6 and 13, for
each contender, measured in one process (memory: one fresh subprocess per contender).

    python benchmarks/bench.py                      # full run (about 10 min on 2 cores, estimated)
    python benchmarks/bench.py --quick              # small sizes, no torch.compile (about 1 min; CI smoke test)
    python benchmarks/bench.py --only mse_loss ctc_loss_T50 --json out.json
    python benchmarks/bench.py --only 'smooth_l1_loss*'   # one loss on every data distribution
    python benchmarks/bench.py --no-fast            # anyloss with its compiled kernels (numba) off
    python benchmarks/bench.py --list               # workload ids

Contenders (each computes the loss value and the gradient of the arguments the
workload names, float32, on the CPU):

  anyloss-np   anyloss.value_and_grad(F.<loss>, argnums)(*numpy arrays)
  anyloss-np-nofast
               the same inside anyloss.configure(compiled=False): as without the `fast`
               extra (numba); differs from anyloss-np only where a compiled kernel
               applies (the elementwise losses, the row-wise ones on (N, C) arrays,
               ctc). Not with --no-fast, which
               turns the kernels off for anyloss-np itself (and sets ANYLOSS_NUMBA=0
               for the memory subprocesses).
  torch        PyTorch eager: torch.nn.functional.<loss> on fresh leaves + .backward()
               (linear_cross_entropy: PyTorch's chunked path, options=LinearCrossEntropyOptions())
  compile      torch.compile(torch.nn.functional.<loss>) + .backward(), when it compiles
               within --compile-timeout seconds (not in --quick)
  compile-any  torch.compile(anyloss.functional.<loss>) + .backward() on tensors with
               requires_grad, inside anyloss.configure(native=False): anyloss's own
               code (its torch.autograd.Function bridge, or plain operations), not its
               hand-over to torch.nn.functional, traced by dynamo (the switch is a
               guarded module constant). Not in --quick; same --compile-timeout, and a
               --compile-budget of its own.
  torch-any    anyloss.functional.<loss> on torch tensors with requires_grad + .backward()
               (default configuration: built-in losses hand over to PyTorch's kernels)
  jax-any      jax.jit(jax.value_and_grad(anyloss.functional.<loss>)) on JAX arrays
  jax-hand     the best of the hand-written jnp versions of the loss (jit of value_and_grad
               of a jnp forward; for cross_entropy also an analytic softmax-minus-one-hot)

Best anchor: `best` = the smallest median (or minimum, in the second table) of
torch eager, compile and jax-hand, among those whose value and gradient agree
with PyTorch eager (compile on multilabel_margin_loss does not, a PyTorch bug);
the letter after it says which (t, c, j). Issue 13's goal for anyloss-np with
the fast extra is np/best <= 1. In --quick there is no compile, so `best` is
the faster of torch and jax-hand.

Ratio columns (of medians in the first table, of minima in the second):
np/best, np/torch, nf/torch (anyloss-np-nofast / torch), np/floor, jA/jH
(jax-any / jax-hand), tA/t (torch-any / torch), cA/c (compile-any / compile).

Data-distribution variants (issue 13, "no cliffs"): for a loss with a kink, the
same loss and size on data placed all on one side of the kink, all on the
other, and mixed (each element's side drawn at random, 50/50), every element at
least 0.1 from the kink; drawn with plain NumPy (never by anyloss's code), and
every contender of a workload runs on the same arrays. Ids (`--list`):

  l1_loss_pos / _mixed             x - y all > 0 / of random sign (|x - y| in [0.1, 2))
  smooth_l1_loss_inside / _outside / _mixed
                                   |x - y| all < beta / all > beta / either (beta = 1)
  huber_loss_inside / _outside / _mixed          the same about delta = 1
  bce_with_logits_pos / _neg / _mixed            logits all in [1, 7) / (-7, -1] / either
                                                 (the stable log-sigmoid branches on the sign)
  hinge_embedding_loss_inside / _outside / _mixed
                                   16M, y = +-1, x all < margin / > margin / either (margin = 1)
  margin_ranking_loss_inside / _outside / _mixed
                                   16M, -y*(x1 - x2) + margin all > 0 / < 0 / either (margin = 0)
  multi_margin_loss_inside / _outside / _mixed   (4096, 100): every hinge term
                                   margin - x[t] + x[j] > 0 / < 0 / either

The default workloads (l1_loss, smooth_l1_loss, huber_loss, bce_with_logits,
multi_margin_loss) stay as they were: inputs and targets ~N(0, 1) (BCE: logits
~N(0, 1), targets uniform), so about half of the elements lie on each side of the
kink, at random (smooth_l1: 52% of |x - y| < 1); they belong to their loss's
family too. hinge_embedding_loss and margin_ranking_loss (16M, gradient of the
first argument) are new, with the three variants only. The workloads of one
family (one loss, one size) are measured together: their calls, every contender
of every variant, are interleaved in the same rounds. After the tables a spread
line per family gives slowest / fastest of the medians over its distributions,
for anyloss-np (target <= 1.3), and for context anyloss-np-nofast, torch,
compile and jax-hand.

The new workloads and contenders add an estimated 3-5 minutes to the full run
(it was under 6 minutes; estimated from a full-mode run of the smooth_l1_loss
and multi_margin_loss families, about 10 s per 16M variant, not measured over
every workload): the variants keep the default --repeat; anyloss-np-nofast and
compile-any are not timed on linear_cross_entropy (--no-skip times them), and
the memory subprocesses leave out anyloss-np-nofast (no compiled kernel applies
to those workloads) and both torch.compile contenders.

Timing: every contender's first call is a warm-up (compiles; its value and
gradient are checked against PyTorch eager, a "!" marks a mismatch), then
--warmup more rounds, then --repeat timed rounds; in each round every
contender runs once, in an order rotated from round to round so that load from
other processes falls on all alike (for a family of data-distribution
variants, every contender of every variant: see below). Reported: median (and
minimum), in ms.

Bandwidth floor: the minimum bytes a value + gradient must move, over a
memory bandwidth measured at start (the best of a NumPy copy and a PyTorch
copy of a 256 MiB array, bytes read + written / fastest of 9 copies):

  floor bytes = every input array read once + every requested gradient written once

(elementwise losses at n elements with gradient for `input` only: 3*4n bytes
for two inputs, 4*4n for three; cross_entropy: logits + targets + gradient).
For linear_cross_entropy, which is bound by its three matrix products, the
floor is printed but means little; there the "torch" column is PyTorch's
chunked path, and to keep the full run short compile, compile-any, jax-hand
and anyloss-np-nofast are not timed (--no-skip times them; --quick times all
but the torch.compile ones), while
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

Targets (printed at the end, "met" / "MISSED" with how many workloads meet each
and which miss; from issue 13): anyloss-np (fast extra) <= best anchor;
anyloss-np <= torch eager; without the extra (anyloss-np-nofast, or anyloss-np
under --no-fast) <= torch eager; elementwise losses within 3x of the floor;
ctc_loss <= torch eager at both sizes; cross_entropy (2048, 32000) peak memory
<= 1.05x its gradient and linear_cross_entropy <= 0.25x its logits (N x C
float32); jax-any within 1.1x of jax-hand; compile-any within 1.1x of compile;
each family's anyloss-np spread <= 1.3; and, from issue 6, torch-any within
1.2x of torch.

Threads: --threads (default 2, the machine's cores) for PyTorch intra-op,
OpenMP, OpenBLAS and MKL, set before any library is imported, and
OMP_WAIT_POLICY=PASSIVE unless set (see below). NumPy's elementwise kernels are
single-threaded whatever the setting; XLA's CPU client uses one thread per core.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import functools
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
CONTENDERS = ("anyloss-np", "anyloss-np-nofast", "torch", "compile", "compile-any", "torch-any", "jax-any", "jax-hand")
COMPILED = ("compile", "compile-any")  # the torch.compile contenders: full mode only, under the time budget
ANCHORS = ("torch", "compile", "jax-hand")  # the "best anchor": the fastest of these that agrees with torch


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
    family: str = ""  # workloads of one loss and size on differently placed data (spread line)


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


# Data-distribution variants: the same loss and size on data placed all on one
# side of a kink, all on the other, and mixed (each element's side drawn at
# random, 50/50: the worst case for a branch). Plain NumPy RNG; every element
# stays at least 0.1 away from the kink, so that no contender's subgradient
# choice at the kink itself is timed or checked.


def _side(rng, kind, s, lo=0.1, hi=1.9):
    """Signed offsets from a kink, |offset| in [lo, hi): +1 side ('in'), -1 side
    ('out'), or each element's side at random ('mixed')."""
    mag = rng.uniform(lo, hi, size=s).astype(np.float32)
    if kind == "in":
        return mag
    if kind == "out":
        return -mag
    return _f32(np.where(rng.random(s, dtype=np.float32) < 0.5, mag, -mag))


def _make_abs_kink(kind, beta=1.0):
    """x ~ N(0, 1), y = x - d, with |d| inside beta ('in': |d| in [0, beta - 0.1)),
    outside ('out': |d| in [beta + 0.1, beta + 2)) or either at random
    ('mixed'); the sign of d is random."""

    def make(rng, q):
        s = _elem_shape(q)
        x = _normal(rng, s)
        inside = rng.uniform(0.0, beta - 0.1, size=s).astype(np.float32)
        outside = rng.uniform(beta + 0.1, beta + 2.0, size=s).astype(np.float32)
        mag = {"in": inside, "out": outside}.get(kind)
        if mag is None:
            mag = np.where(rng.random(s, dtype=np.float32) < 0.5, inside, outside)
        return [x, _f32(x - _pm1(rng, s) * mag)], {}

    return make


def _make_l1_sign(kind):
    """x ~ N(0, 1), y = x - d, |d| in [0.1, 2): d > 0 everywhere ('pos') or of
    random sign ('mixed'); l1's kink is at d = 0."""

    def make(rng, q):
        s = _elem_shape(q)
        x = _normal(rng, s)
        return [x, _f32(x - _side(rng, "in" if kind == "pos" else "mixed", s))], {}

    return make


def _make_bce_side(kind):
    """Logits all in [1, 7) ('pos'), all in (-7, -1] ('neg') or either at random
    ('mixed'): the stable log-sigmoid branches on the sign of x."""

    def make(rng, q):
        s = _elem_shape(q)
        x = _side(rng, {"pos": "in", "neg": "out"}.get(kind, kind), s, 1.0, 7.0)
        return [x, rng.random(s, dtype=np.float32)], {}

    return make


def _make_multi_margin_side(kind):
    """Rows x_t = b (b ~ N(0, 1) per row), x_j = b - margin + s_j for j != t, so
    that the hinge term margin - x_t + x_j = s_j: s_j > 0 ('in': every margin
    violated), s_j < 0 ('out': none), either at random ('mixed')."""

    def make(rng, q):
        n, c = (1024, 100) if q else (4096, 100)
        t = rng.integers(0, c, size=n)
        b = _normal(rng, (n, 1))
        x = b - np.float32(1.0) + _side(rng, kind, (n, c), 0.1, 1.5)
        x[np.arange(n), t] = b[:, 0]
        return [_f32(x), t], {}

    return make


def _pm1(rng, s):
    return _f32(np.where(rng.random(s, dtype=np.float32) < 0.5, 1.0, -1.0))


def _make_hinge_embedding(kind):
    """y = +-1 at random; x = margin - s (margin = 1) with s > 0 ('in': the
    y = -1 terms are positive), s < 0 ('out': they are 0), or either ('mixed')."""

    def make(rng, q):
        s = _elem_shape(q)
        return [_f32(np.float32(1.0) - _side(rng, kind, s)), _pm1(rng, s)], {}

    return make


def _make_margin_ranking(kind):
    """y = +-1 at random, x1 ~ N(0, 1), x2 = x1 + y*s so that the hinge term
    -y*(x1 - x2) + margin (margin = 0) is s: positive ('in'), negative ('out')
    or either ('mixed')."""

    def make(rng, q):
        s = _elem_shape(q)
        x1, y = _normal(rng, s), _pm1(rng, s)
        return [x1, _f32(x1 + y * _side(rng, kind, s)), y], {}

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


def h_hinge_embedding(x, y, margin=1.0):
    jnp = _jnp()
    return jnp.mean(jnp.where(y != 1, jnp.maximum(margin - x, 0.0), 0.0) + jnp.where(y != -1, x, 0.0))


def h_margin_ranking(x1, x2, y, margin=0.0):
    jnp = _jnp()
    return jnp.mean(jnp.maximum(-y * (x1 - x2) + margin, 0.0))


def h_lce(x, w, t):
    import jax

    jnp = _jnp()
    logp = jax.nn.log_softmax(x @ w.T, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=-1))


def _ad(f):
    return (("autodiff", f),)


def _variants(base: str, label: str, loss: str, makes: dict, **kw) -> list[Workload]:
    """One workload per data distribution: id base_<suffix>, label "<label> <text>";
    ``makes``: suffix -> (text, make). All of one family (``base``)."""
    return [
        Workload(f"{base}_{sfx}", f"{label} {text}", loss, mk, family=base, **kw) for sfx, (text, mk) in makes.items()
    ]


def _kink3(make, inside, outside, mixed="mixed"):
    return {"inside": (inside, make("in")), "outside": (outside, make("out")), "mixed": (mixed, make("mixed"))}


CTC_COMPILE_ANY = (
    "not timed (time budget): torch.compile of anyloss's ctc_loss did not finish its first call "
    "in 60 s in a trial run (in another, inductor failed with a C++ compile error)"
)


def workloads() -> list[Workload]:
    E = "elementwise"
    ws = [
        Workload("mse_loss", "mse_loss 16M", "mse_loss", _make_pair, hand=_ad(h_mse), group=E),
        Workload("l1_loss", "l1_loss 16M", "l1_loss", _make_pair, hand=_ad(h_l1), group=E, family="l1_loss"),
        *_variants(
            "l1_loss",
            "l1_loss 16M",
            "l1_loss",
            {"pos": ("all d>0", _make_l1_sign("pos")), "mixed": ("mixed sign", _make_l1_sign("mixed"))},
            hand=_ad(h_l1),
            group=E,
        ),
        Workload(
            "smooth_l1_loss",
            "smooth_l1_loss 16M",
            "smooth_l1_loss",
            _make_pair,
            hand=_ad(h_smooth_l1),
            group=E,
            family="smooth_l1_loss",
        ),
        *_variants(
            "smooth_l1_loss",
            "smooth_l1_loss 16M",
            "smooth_l1_loss",
            _kink3(_make_abs_kink, "all |d|<beta", "all |d|>beta"),
            hand=_ad(h_smooth_l1),
            group=E,
        ),
        Workload(
            "huber_loss", "huber_loss 16M", "huber_loss", _make_pair, hand=_ad(h_huber), group=E, family="huber_loss"
        ),
        *_variants(
            "huber_loss",
            "huber_loss 16M",
            "huber_loss",
            _kink3(_make_abs_kink, "all |d|<delta", "all |d|>delta"),
            hand=_ad(h_huber),
            group=E,
        ),
        Workload(
            "bce_with_logits",
            "bce_with_logits 16M",
            "binary_cross_entropy_with_logits",
            _make_bce(False),
            hand=_ad(h_bce_logits),
            group=E,
            family="bce_with_logits",
        ),
        *_variants(
            "bce_with_logits",
            "bce_with_logits 16M",
            "binary_cross_entropy_with_logits",
            {
                "pos": ("all x in [1,7)", _make_bce_side("pos")),
                "neg": ("all x in (-7,-1]", _make_bce_side("neg")),
                "mixed": ("mixed sign", _make_bce_side("mixed")),
            },
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
        *_variants(
            "hinge_embedding_loss",
            "hinge_embedding_loss 16M",
            "hinge_embedding_loss",
            _kink3(_make_hinge_embedding, "all x<margin", "all x>margin"),
            hand=_ad(h_hinge_embedding),
            group=E,
        ),
        *_variants(
            "margin_ranking_loss",
            "margin_ranking_loss 16M",
            "margin_ranking_loss",
            _kink3(_make_margin_ranking, "all violated", "none violated"),
            hand=_ad(h_margin_ranking),
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
            family="multi_margin_loss",
        ),
        *_variants(
            "multi_margin_loss",
            "multi_margin_loss (4096, 100)",
            "multi_margin_loss",
            _kink3(_make_multi_margin_side, "all violated", "none violated"),
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
            skip={"compile-any": CTC_COMPILE_ANY},
        ),
        Workload(
            "ctc_loss_T50",
            "ctc_loss T=50 N=16 C=20 S=30",
            "ctc_loss",
            _make_ctc(50, 16, 20, 30, 25, 4, 10),
            group="target",
            skip={"compile-any": CTC_COMPILE_ANY},
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
                "compile-any": "not timed (time budget): anyloss's own code, about 3 s a call, under torch.compile",
                "anyloss-np-nofast": "not timed (time budget): no compiled kernel applies, the same code as anyloss-np",
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
    if name in ("anyloss-np", "anyloss-np-nofast"):
        import anyloss
        import anyloss.functional as F

        vg = anyloss.value_and_grad(getattr(F, w.loss), argnums=w.argnums)
        kw = {**w.kw, **kwarrays}
        if name == "anyloss-np":
            return lambda: vg(*arrays, **kw)

        def nofast():
            with anyloss.configure(compiled=False):  # as without the `fast` extra (numba)
                return vg(*arrays, **kw)

        return nofast

    if name in ("torch", "compile", "compile-any", "torch-any") or name in w.extra_torch:
        import torch

        ts = [torch.from_numpy(a) for a in arrays]
        kwt = {k: torch.from_numpy(v) for k, v in kwarrays.items()}
        own = contextlib.nullcontext
        if name in ("torch-any", "compile-any"):
            import anyloss
            import anyloss.functional as F

            fn, kw = getattr(F, w.loss), dict(w.kw)
            if name == "compile-any":
                # anyloss's own code (no hand-over to torch.nn.functional), traced by
                # torch.compile; the switch is a module constant to dynamo (a guard).
                fn = torch.compile(fn)
                own = functools.partial(anyloss.configure, native=False)
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
            with own():
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


def _timed_out(e) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, _Timeout) or "_Timeout" in str(e):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


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


def prepare(w: Workload, args, compile_budget: dict):
    """Make the workload's data, build every contender and make its first call
    (compiles; checked against PyTorch eager): (row, contender names, calls, first-call times)."""
    rng = np.random.default_rng(zlib.crc32(w.id.encode()))
    arrays, kwarrays = w.make(rng, args.quick)
    floor = (
        sum(a.nbytes for a in arrays)
        + sum(a.nbytes for a in kwarrays.values())
        + sum(arrays[i].nbytes for i in w.argnums)
    )
    skip = {} if args.no_skip or args.quick else dict(w.skip)
    if args.no_fast:
        skip["anyloss-np-nofast"] = "--no-fast: anyloss-np itself runs without the compiled kernels"
    names = [c for c in CONTENDERS if not (c in COMPILED and args.no_compile) and c not in skip]
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
        "family": w.family,
    }
    if w.loss == "linear_cross_entropy":
        row["logits_mib"] = arrays[0].shape[0] * arrays[1].shape[0] * 4 / MiB
    if args.no_compile:
        for c in COMPILED:
            row["errors"][c] = "skipped (--quick)" if args.quick else "skipped (--no-compile)"
    for c, why in skip.items():
        row["errors"].setdefault(c, why)

    calls, first, ref = {}, {}, None
    for name in ["torch"] + [n for n in names if n != "torch"]:
        t0 = time.perf_counter()
        timeout = name in COMPILED
        try:
            fn = build(w, name, arrays, kwarrays)
            variants = fn if isinstance(fn, dict) else {"": fn}
            if timeout:
                if compile_budget[name] <= 0:
                    raise _Timeout("budget")
                signal.signal(signal.SIGALRM, _alarm)
                signal.alarm(max(1, int(min(args.compile_timeout, compile_budget[name]))))
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
                    compile_budget[name] -= time.perf_counter() - t0
            for vname, f in variants.items():
                calls[(name, vname)] = f
        except _Timeout as e:
            row["errors"][name] = (
                "compile budget exhausted" if str(e) == "budget" else f"compile > {args.compile_timeout:.0f} s"
            )
        except Exception as e:  # noqa: BLE001 - report and go on
            if timeout and _timed_out(e):  # the alarm, wrapped by dynamo / inductor
                row["errors"][name] = f"compile > {args.compile_timeout:.0f} s ({type(e).__name__})"
            else:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
                row["errors"][name] = f"{type(e).__name__}: {msg}"[:110]
        if name in COMPILED:
            row.setdefault("compile_s", {})[name] = time.perf_counter() - t0
    gc.collect()
    return row, names, calls, first


def time_rounds(calls: dict, first: dict, args) -> dict:
    """--warmup untimed rounds, then --repeat timed ones; in each round every call
    runs once, in an order rotated from round to round. key -> list of seconds."""
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
    return times


def run_workloads(ws: list, args, compile_budget: dict) -> list[dict]:
    """Rows for ``ws``: one workload, or the workloads of one family (one loss and
    size, data placed differently), whose calls, every contender of every
    variant, are then interleaved in the same rounds: load from other processes
    falls on all of them alike, and the family's spread compares like with like."""
    preps = [prepare(w, args, compile_budget) for w in ws]
    calls = {(i, *k): f for i, p in enumerate(preps) for k, f in p[2].items()}
    first = {(i, *k): t for i, p in enumerate(preps) for k, t in p[3].items()}
    times = time_rounds(calls, first, args)
    rows = []
    for i, (row, names, _, _) in enumerate(preps):
        # Contenders with several variants (jax-hand): keep the best median.
        for name in names:
            vs = {v: t for (j, n, v), t in times.items() if j == i and n == name}
            if not vs:
                continue
            best = min(vs, key=lambda v: statistics.median(vs[v]))  # noqa: B023
            row["times"][name] = vs[best]
            if len(vs) > 1:
                row["notes"][name] = (
                    "best: "
                    + best
                    + "; "
                    + ", ".join(f"{v} {statistics.median(t) * 1e3:.1f} ms" for v, t in vs.items())
                )
        rows.append(row)
    del preps, calls
    gc.collect()
    try:
        import torch

        torch._dynamo.reset()
    except Exception:  # noqa: BLE001
        pass
    for w, row in zip(ws, rows):
        if w.memory and not args.no_memory:
            # Not the torch.compile contenders, nor anyloss-np-nofast (no compiled kernel
            # applies to these workloads: the same code as anyloss-np).
            mem_names = [
                n for n in CONTENDERS if n in row["times"] and n not in (*COMPILED, "anyloss-np-nofast")
            ] + list(w.extra_torch)
            if args.quick:  # a smoke test of the mechanism: two subprocesses
                mem_names = [n for n in mem_names if n in ("anyloss-np", "torch")]
            row["memory"] = run_memory(w, mem_names, args.quick)
    return rows


# --------------------------------------------------------------------------- report


def _medians(row) -> dict:
    return {n: statistics.median(t) for n, t in row["times"].items() if t}


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


# (contender, column header): the table's time columns, then the best anchor.
COLS = (
    ("anyloss-np", "anyloss-np"),
    ("anyloss-np-nofast", "np-nofast"),
    ("torch", "torch"),
    ("compile", "compile"),
    ("compile-any", "comp-any"),
    ("torch-any", "torch-any"),
    ("jax-any", "jax-any"),
    ("jax-hand", "jax-hand"),
)
# (header, numerator, denominator); "best" is the best anchor, "floor" the bandwidth floor.
RATIOS = (
    ("np/best", "anyloss-np", "best"),
    ("np/torch", "anyloss-np", "torch"),
    ("nf/torch", "anyloss-np-nofast", "torch"),
    ("np/floor", "anyloss-np", "floor"),
    ("jA/jH", "jax-any", "jax-hand"),
    ("tA/t", "torch-any", "torch"),
    ("cA/c", "compile-any", "compile"),
)
ANCHOR_MARK = {"torch": "t", "compile": "c", "jax-hand": "j"}


def mismatched(row, name) -> bool:
    return name in row["mismatch"] or any(k.startswith(name + ":") for k in row["mismatch"])


def best_anchor(row, stat=statistics.median):
    """(contender, time): the fastest of PyTorch eager, torch.compile and the best
    hand-written jax.jit, by ``stat`` of its timed rounds; a contender whose value
    or gradient disagrees with PyTorch eager does not count. (None, None) if none ran."""
    ts = [(n, stat(row["times"][n])) for n in ANCHORS if row["times"].get(n) and not mismatched(row, n)]
    return min(ts, key=lambda t: t[1]) if ts else (None, None)


def _get(row, name, stat=statistics.median):
    if name == "best":
        return best_anchor(row, stat)[1]
    if name == "floor":
        return row["floor_s"]
    t = row["times"].get(name)
    return stat(t) if t else None


def table(rows, stat) -> str:
    w = {h: max(len(h), 7) for _, h in COLS}
    head = (
        f"{'workload':44s} {'floor':>6s} "
        + " ".join(f"{h:>{w[h]}s}" for _, h in COLS)
        + f" {'best':>7s} "
        + " ".join(f"{h:>8s}" for h, _, _ in RATIOS)
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = []
        for c, h in COLS:
            s = fmt_t(_get(row, c, stat)) + ("!" if mismatched(row, c) else "")
            cells.append(f"{s:>{w[h]}s}")
        bn, bt = best_anchor(row, stat)
        best = fmt_t(bt) + ANCHOR_MARK[bn] if bn else "n/a"
        lines.append(
            f"{row['label']:44s} {fmt_t(row['floor_s']):>6s} "
            + " ".join(cells)
            + f" {best:>7s} "
            + " ".join(f"{fmt_r(_get(row, a, stat), _get(row, b, stat)):>8s}" for _, a, b in RATIOS)
        )
    return "\n".join(lines)


SPREAD_COLS = ("anyloss-np", "anyloss-np-nofast", "torch", "compile", "jax-hand")


def spreads(rows) -> list[dict]:
    """Per family (one loss and size, data placed differently): the medians of each
    contender in SPREAD_COLS and slowest / fastest of them."""
    fams: dict = {}
    for r in rows:
        if r.get("family"):
            fams.setdefault(r["family"], []).append(r)
    out = []
    for fam, rs in fams.items():
        if len(rs) < 2:
            continue
        d = {"family": fam, "label": rs[0]["label"], "workloads": [r["id"] for r in rs], "spread": {}, "medians": {}}
        for c in SPREAD_COLS:
            ms = {r["id"]: med(r, c) for r in rs}
            if all(m is not None for m in ms.values()):
                d["medians"][c] = ms
                d["spread"][c] = max(ms.values()) / min(ms.values())
        out.append(d)
    return out


def spread_lines(sp) -> str:
    lines = []
    for d in sp:
        bits = []
        for c, x in d["spread"].items():
            ms = d["medians"][c]
            if c == "anyloss-np":
                lo, hi = min(ms, key=ms.get), max(ms, key=ms.get)
                bits.append(f"anyloss-np {x:.2f} (fastest {lo} {fmt_t(ms[lo])}, slowest {hi} {fmt_t(ms[hi])} ms)")
            else:
                bits.append(f"{dict(COLS).get(c, c)} {x:.2f}")
        lab = d["label"].split(" all ")[0].split(" mixed")[0]
        lines.append(f"  {lab} ({len(d['workloads'])} distributions): " + "; ".join(bits))
    return "\n".join(lines)


def notes(rows) -> str:
    out = []
    for row in rows:
        bits = []
        for n, e in row["errors"].items():
            if n in COMPILED and e.startswith("skipped"):
                continue
            if n == "jax-hand" and e.startswith("NotImplementedError"):
                continue
            bits.append(f"{n}: n/a ({e})")
        for c, dt in row.get("compile_s", {}).items():
            if c in row["times"]:
                bits.append(f"{c}: first call {dt:.1f} s")
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
                if n not in dict(COLS) and "call_s" in v:
                    bits.append(f"{n}: one call {v['call_s']:.2f} s (in its memory subprocess; not in the table)")
        if bits:
            out.append(f"  {row['label']}:\n" + "\n".join(f"      {b}" for b in bits))
    return "\n".join(out)


def targets(rows, quick, fast=True) -> list[tuple[str, bool | None, str]]:
    """Issue 13's goals, each with how many workloads meet it and which miss.
    ``fast``: anyloss-np ran with the compiled kernels (numba installed, no --no-fast)."""
    by = {r["id"]: r for r in rows}
    res = []

    def ratio(r, a, b):
        x, y = _get(r, a), _get(r, b)
        return None if x is None or y is None or y == 0 else x / y

    def over(title, pairs, bound, short=False, none="no workload measured both"):
        """A target on ratios: met if every one is <= bound; count, worst, misses."""
        pairs = [(lab, x) for lab, x in pairs if x is not None]
        if not pairs:
            res.append((title, None, none))
            return
        bad = [f"{lab} {x:.2f}x" for lab, x in pairs if x > bound]
        worst = max(pairs, key=lambda t: t[1])
        fig = f"{len(pairs) - len(bad)}/{len(pairs)} met; worst {worst[0]} {worst[1]:.2f}x"
        if short:
            fig = f"{len(pairs) - len(bad)}/{len(pairs)} met: " + ", ".join(f"{lab} {x:.2f}x" for lab, x in pairs)
        elif bad:
            fig += f"; missed: {'; '.join(bad)}"
        res.append((title, not bad, fig))

    def every(title, a, b, bound, sel=None):
        over(title, [(r["label"], ratio(r, a, b)) for r in rows if sel is None or sel(r)], bound)

    # 1. with the fast extra: at most the fastest of eager, compile and hand-written jax.jit
    title = "anyloss on NumPy (fast extra) <= best anchor (fastest of torch eager, torch.compile, jax-hand)"
    if not fast:
        res.append((title, None, "n/a: anyloss-np ran without the compiled kernels (no numba, or --no-fast)"))
    else:
        every(title + ("" if not quick else " [--quick: no torch.compile]"), "anyloss-np", "best", 1.0)
    # 2. anyloss on NumPy <= PyTorch eager (with the kernels, and without: anyloss-np-nofast)
    every("anyloss on NumPy <= PyTorch eager, every workload", "anyloss-np", "torch", 1.0)
    nf = "anyloss-np" if not fast else "anyloss-np-nofast"
    every("anyloss on NumPy without the fast extra (numba) <= PyTorch eager", nf, "torch", 1.0)
    # 3. elementwise within 3x of the bandwidth floor
    over(
        "elementwise losses (16M) within 3x of the bandwidth floor",
        [(r["label"], ratio(r, "anyloss-np", "floor")) for r in rows if r["id"] in ELEMENTWISE],
        3.0,
    )
    # 4. ctc_loss <= eager at both sizes
    over(
        "ctc_loss <= PyTorch eager at both sizes",
        [(r["label"], ratio(r, "anyloss-np", "torch")) for r in rows if r["id"].startswith("ctc_loss")],
        1.0,
        short=True,
    )
    # 5. memory stays where it is
    r = by.get("cross_entropy_2048x32000")
    m = (r or {}).get("memory", {}).get("anyloss-np", {})
    if r and "peak_mib" in m:
        tm = r["memory"].get("torch", {}).get("peak_mib")
        x = m["peak_mib"] / r["grad_mib"]
        res.append(
            (
                f"{r['label']} peak additional memory <= 1.05x its gradient",
                x <= 1.05,
                f"{m['peak_mib']:.0f} MiB vs gradient {r['grad_mib']:.0f} MiB ({x:.2f}x)"
                + (f"; torch eager {tm:.0f} MiB" if tm is not None else ""),
            )
        )
    r = by.get("linear_cross_entropy")
    m = (r or {}).get("memory", {}).get("anyloss-np", {})
    if r and "peak_mib" in m:
        tm = r["memory"].get("torch", {}).get("peak_mib")
        x = m["peak_mib"] / r["logits_mib"]
        res.append(
            (
                f"{r['label']} peak additional memory <= 0.25x the logits",
                x <= 0.25,
                f"{m['peak_mib']:.0f} MiB vs logits {r['logits_mib']:.0f} MiB ({x:.2f}x)"
                + (f"; torch chunked {tm:.0f} MiB" if tm is not None else ""),
            )
        )
    # 6. the other backends
    every("JAX: anyloss under jax.jit within 1.1x of the best hand-written jnp", "jax-any", "jax-hand", 1.1)
    every(
        "PyTorch: anyloss's own code under torch.compile within 1.1x of torch.compile(F.<loss>)",
        "compile-any",
        "compile",
        1.1,
    )
    every(
        "PyTorch tensors through anyloss (eager) within 1.2x of torch.nn.functional (issue 6)",
        "torch-any",
        "torch",
        1.2,
    )
    # 7. no cliffs: timing does not depend on where the data lie
    sp = spreads(rows)
    over(
        "no cliffs: anyloss-np slowest/fastest across data distributions <= 1.3",
        [(d["label"].split(" all ")[0].split(" mixed")[0], d["spread"].get("anyloss-np")) for d in sp],
        1.3,
        short=True,
        none="no family of data-distribution variants measured",
    )
    return res


ELEMENTWISE = {w.id for w in workloads() if w.group == "elementwise"}


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
        "--no-fast",
        action="store_true",
        help="run anyloss with its compiled kernels off (anyloss.configure(compiled=False), as without the "
        "`fast` extra), and drop the then identical anyloss-np-nofast contender",
    )
    p.add_argument(
        "--no-skip",
        action="store_true",
        help="also time the contenders a workload leaves out to keep the full run under 10 minutes",
    )
    p.add_argument("--compile-timeout", type=float, default=60.0, help="seconds per torch.compile (default 60)")
    p.add_argument(
        "--compile-budget",
        type=float,
        default=240.0,
        help="seconds for all first calls of one torch.compile contender together (compile, compile-any: "
        "each its own budget; default 240)",
    )
    p.add_argument("--memory-worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.no_fast:
        os.environ["ANYLOSS_NUMBA"] = "0"  # read when anyloss is imported, here and in the memory workers
        import anyloss

        anyloss.configure(compiled=False)
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

    compile_budget = dict.fromkeys(COMPILED, args.compile_budget)
    rows = []
    groups = []  # consecutive workloads of one family are measured together
    for w in ws:
        if groups and w.family and groups[-1][-1].family == w.family:
            groups[-1].append(w)
        else:
            groups.append([w])
    for g in groups:
        t0 = time.perf_counter()
        rows += run_workloads(g, args, compile_budget)
        print(f"  {', '.join(w.id for w in g)}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    print(
        "median time, ms (floor = minimum bytes / bandwidth; ratios of medians; '!' = value or gradient "
        "disagrees with torch)"
    )
    print(table(rows, statistics.median))
    print("\nminimum time, ms")
    print(table(rows, min))
    sp = spreads(rows)
    if sp:
        print("\nspread across data distributions (slowest / fastest median of one loss and size; target <= 1.3):")
        print(spread_lines(sp))
    nt = notes(rows)
    if nt:
        print("\nnotes:")
        print(nt)
    print("\ntargets" + (" (--quick: sizes are small, the targets apply to the full run)" if args.quick else "") + ":")
    from anyloss._accel import kernels as _kernels

    fast = _kernels.available()  # numba installed and not --no-fast
    tg = targets(rows, args.quick, fast)
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
                    "fast_kernels": fast,
                    "no_fast": args.no_fast,
                    "rows": [
                        dict(r, best=dict(zip(("contender", "median_s"), best_anchor(r))), median_s=_medians(r))
                        for r in rows
                    ],
                    "spreads": sp,
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
