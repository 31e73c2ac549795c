"""anyloss.compat.tensorflow against TensorFlow itself (``tensorflow-cpu``, the ``tf`` extra).

The same call, ``nn.<function>(labels, logits, ...)``, runs on ``tensorflow.nn``
and on ``anyloss.compat.tensorflow.nn``: values, and the vector-Jacobian
products of every differentiable argument, from ``tf.GradientTape`` on one side
and from each backend's own path on the other (``anyloss.vjp`` on NumPy, Dask
and array-api-strict, ``.backward()`` on PyTorch tensors, ``jax.vjp`` on JAX),
on the porting page's examples (``anyloss.compat.differences()``), fixed edge
cases (zeros, large logits, labels that do not sum to 1) and hypothesis-drawn
inputs, in float32 and float64. No expected number is written here: TensorFlow
computes every one. Skipped as a whole when TensorFlow is not installed, except
where ANYLOSS_REQUIRE_TENSORFLOW is set (CI), where that is an error.
"""

from __future__ import annotations

import contextlib
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: no C++ info lines

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

if os.environ.get("ANYLOSS_REQUIRE_TENSORFLOW"):  # set by .ci/run: there a TensorFlow that fails to import fails
    import tensorflow
else:
    tensorflow = pytest.importorskip("tensorflow")

import anyloss  # noqa: E402
from anyloss.compat import differences  # noqa: E402
from anyloss.compat import tensorflow as atf  # noqa: E402
from helpers import backend_of, to_numpy, to_xp, torch, value_and_pullback  # noqa: E402

with contextlib.suppress(RuntimeError):  # a small shared machine; raises once TF's runtime has started
    tensorflow.config.threading.set_intra_op_parallelism_threads(1)
    tensorflow.config.threading.set_inter_op_parallelism_threads(1)

# One call spelled for both namespaces: `n` is `tensorflow.nn` or `anyloss.compat.tensorflow.nn`.
CALL = {
    "sigmoid": lambda n, labels, logits: n.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits),
    "weighted": lambda n, labels, logits, pos_weight: n.weighted_cross_entropy_with_logits(
        labels=labels, logits=logits, pos_weight=pos_weight
    ),
    "softmax": lambda n, labels, logits, axis=-1: n.softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, axis=axis
    ),
    "sparse": lambda n, labels, logits: n.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
}


def tf_value_and_vjp(name, args, kwargs, diff, ct):
    """TensorFlow's value of ``CALL[name]`` and its vjp of ``ct`` for ``args[i], i in diff``
    (``tf.GradientTape``), as NumPy arrays."""
    ts = [tensorflow.constant(a) for a in args]
    with tensorflow.GradientTape() as tape:
        for i in diff:
            tape.watch(ts[i])
        out = CALL[name](tensorflow.nn, *ts, **kwargs)
    grads = tape.gradient(out, [ts[i] for i in diff], output_gradients=tensorflow.constant(ct, dtype=out.dtype))
    return out.numpy(), [np.asarray(g) for g in grads]


def _unbroadcast(a, shape):
    """``a`` summed down to ``shape`` (the gradient of a broadcast argument)."""
    a = a.sum(axis=tuple(range(a.ndim - len(shape)))) if a.ndim > len(shape) else a
    return a.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1 and a.shape[i] != 1), keepdims=True)


def magnitudes(name, args, kwargs, ct):
    """For the value and for each gradient, the sum of the absolute values of the
    terms that make it up (in float64): a bound on the rounding error of any
    evaluation order is a few ulps of it. Where terms cancel exactly (0 - 0 + a tiny
    log1p) the bound stays tiny, so a value off by less than the terms' rounding is
    still caught there."""
    a = [np.asarray(v, dtype=np.float64) for v in args]
    act = np.abs(np.asarray(ct, dtype=np.float64))
    if name in ("sigmoid", "weighted"):
        z, x = a[0], a[1]
        sp = np.log1p(np.exp(-np.abs(x)))
        if name == "sigmoid":
            return np.maximum(x, 0) + np.abs(x * z) + sp, [act * np.abs(x), act * (1 + np.abs(z))]
        q = a[2] if len(a) > 2 else np.float64(kwargs["pos_weight"])
        w = np.abs(1 + (q - 1) * z) + np.abs(q * z) + 1
        value = np.abs((1 - z) * x) + w * (sp + np.maximum(-x, 0))
        grads = [act * (np.abs(x) + np.abs(q - 1) * (sp + np.maximum(-x, 0))), act * (np.abs(1 - z) + w)]
        return value, grads + [_unbroadcast(act * np.abs(z) * (sp + np.maximum(-x, 0)), np.shape(q))]
    axis = kwargs.get("axis", -1)
    x = a[1]
    top = x.max(axis=axis, keepdims=True, initial=-np.inf) if x.size else np.zeros_like(x)
    # log_softmax(x) = x - max(x) - log(sum(exp(x - max(x)))): the log of a sum s >= 1 is off by ~ eps * s
    ls = np.abs(x) + np.abs(top) + np.exp(x - top).sum(axis=axis, keepdims=True)
    act = np.expand_dims(act, axis)
    if name == "sparse":
        value = np.take_along_axis(ls, np.expand_dims(a[0].astype(np.int64), -1), -1)[..., 0]
        return value, [None, act * 2]
    z = a[0]
    return (np.abs(z) * ls).sum(axis=axis), [act * ls, act * (1 + np.abs(z))]


def assert_close(actual, expected, bound, dtype, what):
    """``|actual - expected| <= ulps * (eps * bound + tiny)``, element by element (``bound``
    from :func:`magnitudes`), with NaN matching NaN. ``tiny`` (the smallest normal number):
    TensorFlow's CPU kernels flush subnormal results to zero, NumPy's do not."""
    ulps = 16 if np.dtype(dtype) == np.float32 else 8
    actual, expected = to_numpy(actual).astype(np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    tol = ulps * (np.finfo(dtype).eps * np.broadcast_to(bound, expected.shape) + np.finfo(dtype).tiny)
    bad = ~((np.abs(actual - expected) <= tol) | (np.isnan(actual) & np.isnan(expected)))
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} elements differ from TensorFlow's beyond "
        f"{ulps} ulps of their terms, at {np.argwhere(bad)[:5].tolist()}:\n"
        f"anyloss    {actual[bad][:5]}\nTensorFlow {expected[bad][:5]}\ntolerance  {tol[bad][:5]}"
    )


def check_against_tf(xp, name, args, kwargs, diff, seed=0):
    """``CALL[name]`` on ``xp`` arrays against TensorFlow on the same NumPy inputs:
    shape, dtype and value of the loss, and the vjp of a random cotangent."""
    ct = np.random.default_rng(seed).normal(size=CALL[name](atf.nn, *args, **kwargs).shape)
    dtype = args[1].dtype  # logits
    ct = ct.astype(dtype)
    tf_kwargs = dict(kwargs)
    if tf_kwargs.get("axis", -1) < -1:
        # TensorFlow 2.21 fails on a negative axis other than -1 (its transpose takes range(axis)):
        # anyloss takes it as Python does, and TensorFlow is asked for the same axis counted from 0.
        tf_kwargs["axis"] %= args[1].ndim
    expected, tf_grads = tf_value_and_vjp(name, args, tf_kwargs, diff, ct)
    value_bound, grad_bounds = magnitudes(name, args, kwargs, ct)
    arrays = [to_xp(xp, a) for a in args]
    out, pullback = value_and_pullback(xp, lambda *a: CALL[name](atf.nn, *a, **kwargs), arrays, list(diff))
    assert tuple(out.shape) == expected.shape
    assert str(to_numpy(out).dtype) == str(expected.dtype)
    assert_close(out, expected, value_bound, dtype, f"{name}: value")
    ours = pullback(torch.from_numpy(ct) if backend_of(xp) == "torch" else to_xp(xp, ct))
    for i, a, b in zip(diff, ours, tf_grads):
        assert tuple(a.shape) == b.shape == args[i].shape
        assert str(to_numpy(a).dtype) == str(b.dtype)
        assert_close(a, b, grad_bounds[i], dtype, f"{name}: gradient of {'labels logits pos_weight'.split()[i]}")


# --------------------------------------------------------------------------- the porting page's examples

FUNCTIONS = {
    "sigmoid": "sigmoid_cross_entropy_with_logits",
    "weighted": "weighted_cross_entropy_with_logits",
    "softmax": "softmax_cross_entropy_with_logits",
    "sparse": "sparse_softmax_cross_entropy_with_logits",
}


def _run(code, ns):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<differences>", "exec"), ns)
    return out.getvalue()


def porting_examples():
    """The inputs of each tf.nn example of ``anyloss.compat.differences()`` (the porting
    page), read from its executed code: ``(title, function, args)``."""
    out = []
    for d in differences():
        for name, fn in FUNCTIONS.items():
            if f"tf.nn.{fn}(" in d["code"]:
                ns: dict = {}
                _run(d["code"], ns)
                names = ["labels", "logits"] + (["pos_weight"] if name == "weighted" else [])
                out.append((d["title"], name, tuple(np.asarray(ns[k]) for k in names)))
    return out


def test_porting_page_has_tf_examples():
    assert {name for _, name, _ in porting_examples()} == {"sigmoid", "weighted", "softmax"}


@pytest.mark.parametrize("i", range(len(porting_examples())))
def test_porting_examples_match_tensorflow(xp, dtype, i):
    _, name, args = porting_examples()[i]
    args = tuple(a.astype(dtype) for a in args)
    check_against_tf(xp, name, args, {}, tuple(range(len(args))), seed=i)


def _printed(text):
    """``{label: numbers}`` of lines ``label: <numbers>`` (NumPy's continuation lines joined)."""
    blocks: list = []
    for line in text.splitlines():
        if line.startswith(" ") and blocks:
            blocks[-1][1] += " " + line
        elif ":" in line:
            blocks.append(list(line.split(":", 1)))
    return {
        label.strip(): np.array([float(t) for t in rest.replace("[", " ").replace("]", " ").split()])
        for label, rest in blocks
    }


@pytest.mark.parametrize("i", [i for i, d in enumerate(differences()) if "tensorflow" in d])
def test_porting_page_tensorflow_lines(i):
    """Each tf.nn entry's ``tensorflow`` snippet (shown on the porting page where TensorFlow
    is installed) runs after its code and prints TensorFlow's numbers: the same as the
    line of anyloss.compat.tensorflow's (``tf`` or ``tf gradient ...``) it stands under."""
    d = differences()[i]
    ns: dict = {}
    ours = _printed(_run(d["code"], ns))
    theirs = _printed(_run(d["tensorflow"], ns))
    assert list(theirs) == ["TensorFlow itself"]
    label = next(k for k in ours if k == "tf" or k.startswith("tf gradient"))
    np.testing.assert_allclose(ours[label], theirs["TensorFlow itself"], rtol=1e-7, err_msg=d["title"])


# --------------------------------------------------------------------------- fixed cases

EXTREME = np.array([-1e4, -1e3, -88.0, -60.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 60.0, 88.0, 1e3, 1e4])


def _u(r, *shape):
    return r.uniform(size=shape)


def _n(r, *shape, scale=1.0):
    return r.normal(size=shape) * scale


def _hot(r, n, c, axis=-1):
    z = np.eye(c)[r.integers(0, c, n)]
    return z if axis == -1 else z.T


CASES = [  # (id, function, make(rng) -> (args, kwargs), differentiable positions); floats are cast to the dtype
    ("sigmoid-random-3d", "sigmoid", lambda r: ((_u(r, 2, 3, 4), _n(r, 2, 3, 4, scale=3)), {}), (0, 1)),
    ("sigmoid-extreme", "sigmoid", lambda r: ((_u(r, 13), EXTREME.copy()), {}), (0, 1)),
    (
        "sigmoid-hard-labels-extreme",
        "sigmoid",
        lambda r: ((np.stack([np.zeros(13), np.ones(13)]), np.stack([EXTREME, -EXTREME])), {}),
        (0, 1),
    ),
    ("sigmoid-zeros", "sigmoid", lambda r: ((np.array([0.0, 1.0, 0.5, 0.25]), np.zeros(4)), {}), (0, 1)),
    ("sigmoid-all-zero", "sigmoid", lambda r: ((np.zeros((2, 3)), np.zeros((2, 3))), {}), (0, 1)),
    ("sigmoid-labels-outside-0-1", "sigmoid", lambda r: ((r.uniform(-1, 2, 8), _n(r, 8, scale=4)), {}), (0, 1)),
    ("sigmoid-0d", "sigmoid", lambda r: ((np.array(0.3), np.array(-2.0)), {}), (0, 1)),
    ("sigmoid-empty", "sigmoid", lambda r: ((np.zeros((0, 3)), np.zeros((0, 3))), {}), (0, 1)),
    (
        "weighted-array-pos-weight",
        "weighted",
        lambda r: (((_u(r, 5, 3) > 0.4) * 1.0, _n(r, 5, 3, scale=4), np.array([3.0, 1.0, 0.25])), {}),
        (0, 1, 2),
    ),
    (
        "weighted-number-pos-weight",
        "weighted",
        lambda r: ((_u(r, 4, 3), _n(r, 4, 3, scale=4)), {"pos_weight": 2.5}),
        (0, 1),
    ),
    (
        "weighted-pos-weight-same-shape",
        "weighted",
        lambda r: ((_u(r, 2, 4), _n(r, 2, 4), r.uniform(0, 5, (2, 4))), {}),
        (0, 1, 2),
    ),
    (
        "weighted-pos-weight-column",
        "weighted",
        lambda r: ((_u(r, 3, 4), _n(r, 3, 4, scale=2), r.uniform(0, 5, (3, 1))), {}),
        (0, 1, 2),
    ),
    ("weighted-pos-weight-0d", "weighted", lambda r: ((_u(r, 6), _n(r, 6), np.array(0.5)), {}), (0, 1, 2)),
    (
        "weighted-extreme",
        "weighted",
        lambda r: ((np.stack([np.zeros(13), np.ones(13), _u(r, 13)]), np.stack([EXTREME] * 3), np.array(2.0)), {}),
        (0, 1, 2),
    ),
    (
        "weighted-zero-logits",
        "weighted",
        lambda r: ((np.array([0.0, 1.0, 0.3, 1.0]), np.zeros(4), np.array([2.0, 2.0, 0.5, 1.0])), {}),
        (0, 1, 2),
    ),
    ("weighted-pos-weight-0", "weighted", lambda r: ((_u(r, 5), _n(r, 5, scale=3), np.zeros(5)), {}), (0, 1, 2)),
    ("softmax-random", "softmax", lambda r: ((r.dirichlet(np.ones(5), 4), _n(r, 4, 5, scale=3)), {}), (0, 1)),
    ("softmax-one-hot", "softmax", lambda r: ((_hot(r, 6, 4), _n(r, 6, 4, scale=2)), {}), (0, 1)),
    ("softmax-axis0", "softmax", lambda r: ((r.dirichlet(np.ones(4), 5).T, _n(r, 4, 5, scale=3)), {"axis": 0}), (0, 1)),
    (
        "softmax-3d-axis1",
        "softmax",
        lambda r: ((np.moveaxis(r.dirichlet(np.ones(3), (2, 4)), -1, 1), _n(r, 2, 3, 4)), {"axis": 1}),
        (0, 1),
    ),
    (
        "softmax-3d-axis-minus2",
        "softmax",
        lambda r: ((np.moveaxis(r.dirichlet(np.ones(3), (2, 4)), -1, 1), _n(r, 2, 3, 4)), {"axis": -2}),
        (0, 1),
    ),
    ("softmax-1d", "softmax", lambda r: ((r.dirichlet(np.ones(6)), _n(r, 6)), {}), (0, 1)),
    ("softmax-one-class", "softmax", lambda r: ((np.ones((3, 1)), _n(r, 3, 1)), {}), (0, 1)),
    ("softmax-zero-logits", "softmax", lambda r: ((r.dirichlet(np.ones(4), 3), np.zeros((3, 4))), {}), (0, 1)),
    (
        "softmax-large-logits",
        "softmax",
        lambda r: ((r.dirichlet(np.ones(5), 3), np.stack([_n(r, 5, scale=300), EXTREME[:5], EXTREME[-5:]])), {}),
        (0, 1),
    ),
    # TensorFlow checks neither that labels are probabilities nor that a row sums to 1
    ("softmax-unnormalised-labels", "softmax", lambda r: ((r.uniform(0, 2, (4, 5)), _n(r, 4, 5, scale=2)), {}), (0, 1)),
    (
        "softmax-negative-labels-axis0",
        "softmax",
        lambda r: ((r.uniform(-1, 1, (3, 4)), _n(r, 3, 4)), {"axis": 0}),
        (0, 1),
    ),
    ("softmax-zero-labels", "softmax", lambda r: ((np.zeros((2, 3)), _n(r, 2, 3)), {}), (0, 1)),
    ("sparse-random", "sparse", lambda r: ((r.integers(0, 6, 5), _n(r, 5, 6, scale=3)), {}), (1,)),
    ("sparse-3d", "sparse", lambda r: ((r.integers(0, 4, (2, 3)), _n(r, 2, 3, 4, scale=5)), {}), (1,)),
    ("sparse-int32", "sparse", lambda r: ((r.integers(0, 3, 4).astype(np.int32), _n(r, 4, 3)), {}), (1,)),
    ("sparse-1d-logits", "sparse", lambda r: ((np.array(2), _n(r, 5)), {}), (1,)),
    ("sparse-one-class", "sparse", lambda r: ((np.zeros(3, dtype=np.int64), _n(r, 3, 1)), {}), (1,)),
    ("sparse-zero-logits", "sparse", lambda r: ((np.array([0, 1, 2]), np.zeros((3, 3))), {}), (1,)),
    (
        "sparse-large-logits",
        "sparse",
        lambda r: ((np.array([0, 4, 2]), np.stack([_n(r, 5, scale=300), EXTREME[:5], EXTREME[-5:]])), {}),
        (1,),
    ),
    ("sparse-empty", "sparse", lambda r: ((np.zeros(0, dtype=np.int64), np.zeros((0, 4))), {}), (1,)),
]


def _cast(args, dtype):
    return tuple(a.astype(dtype) if a.dtype.kind == "f" else a for a in args)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_tensorflow(xp, dtype, case):
    cid, name, make, diff = case
    args, kwargs = make(np.random.default_rng(len(cid)))
    check_against_tf(xp, name, _cast(args, dtype), kwargs, diff, seed=len(cid))


# --------------------------------------------------------------------------- random inputs (NumPy)

FLOATS = st.sampled_from(["float32", "float64"])


def _floats(dtype, lo, hi):
    return st.floats(lo, hi, width=32 if dtype == "float32" else 64, allow_subnormal=False)


@st.composite
def same_shape_pair(draw, labels_lo=0.0, labels_hi=1.0, min_dims=0):
    dtype = draw(FLOATS)
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=5))
    logits = draw(hnp.arrays(dtype, shape, elements=_floats(dtype, -200.0, 200.0)))
    labels = draw(hnp.arrays(dtype, shape, elements=_floats(dtype, labels_lo, labels_hi)))
    return labels, logits


@given(same_shape_pair(), st.integers(0, 2**16))
def test_sigmoid_random(pair, seed):
    check_against_tf(np, "sigmoid", pair, {}, (0, 1), seed=seed)


@given(same_shape_pair(min_dims=1), st.data())
def test_weighted_random(pair, data):
    labels, logits = pair
    dtype = logits.dtype.name
    # pos_weight: a number, or an array of a trailing slice of logits' shape (with 1s)
    if data.draw(st.booleans()):
        check_against_tf(np, "weighted", pair, {"pos_weight": data.draw(st.floats(0.0, 10.0))}, (0, 1))
        return
    k = data.draw(st.integers(0, logits.ndim))
    shape = tuple(n if data.draw(st.booleans()) else 1 for n in logits.shape[logits.ndim - k :])
    q = data.draw(hnp.arrays(dtype, shape, elements=_floats(dtype, 0.0, 10.0)))
    check_against_tf(np, "weighted", (labels, logits, q), {}, (0, 1, 2), seed=data.draw(st.integers(0, 99)))


@given(same_shape_pair(labels_lo=0.0, labels_hi=2.0, min_dims=1), st.data())
def test_softmax_random(pair, data):
    axis = data.draw(st.integers(-pair[1].ndim, pair[1].ndim - 1))
    check_against_tf(np, "softmax", pair, {"axis": axis}, (0, 1), seed=data.draw(st.integers(0, 99)))


@given(st.data())
def test_sparse_random(data):
    dtype = data.draw(FLOATS)
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    logits = data.draw(hnp.arrays(dtype, shape, elements=_floats(dtype, -200.0, 200.0)))
    labels = data.draw(
        hnp.arrays(data.draw(st.sampled_from(["int32", "int64"])), shape[:-1], elements=st.integers(0, shape[-1] - 1))
    )
    check_against_tf(np, "sparse", (labels, logits), {}, (1,), seed=data.draw(st.integers(0, 99)))


# --------------------------------------------------------------------------- what both reject

REJECTED = [  # (id, function, args, kwargs): TensorFlow raises, and anyloss raises its documented error
    ("sigmoid-shapes", "sigmoid", (np.ones(3), np.ones(4)), {}, ValueError),
    ("sigmoid-dtypes", "sigmoid", (np.ones(3, np.float32), np.ones(3)), {}, TypeError),
    ("sigmoid-integer", "sigmoid", (np.ones(3, np.int64), np.ones(3, np.int64)), {}, TypeError),
    ("weighted-pos-weight-shape", "weighted", (np.ones((2, 3)), np.ones((2, 3)), np.ones(2)), {}, ValueError),
    ("softmax-axis", "softmax", (np.ones((2, 3)), np.ones((2, 3))), {"axis": 2}, ValueError),
    ("softmax-0d", "softmax", (np.ones(()), np.ones(())), {}, ValueError),
    ("sparse-shape", "sparse", (np.zeros(3, np.int64), np.ones((2, 3))), {}, ValueError),
    ("sparse-float-labels", "sparse", (np.zeros(2), np.ones((2, 3))), {}, TypeError),
    ("sparse-negative-label", "sparse", (np.array([0, -1]), np.ones((2, 3))), {}, ValueError),
    ("sparse-label-too-large", "sparse", (np.array([0, 3]), np.ones((2, 3))), {}, ValueError),
]


@pytest.mark.parametrize("case", REJECTED, ids=[c[0] for c in REJECTED])
def test_rejects_what_tensorflow_rejects(case):
    _, name, args, kwargs, exc = case
    with pytest.raises((ValueError, TypeError, tensorflow.errors.InvalidArgumentError)):
        CALL[name](tensorflow.nn, *args, **kwargs)
    with pytest.raises(exc):
        CALL[name](atf.nn, *args, **kwargs)


def test_vjp_of_a_mean_as_tf_reduce_mean():
    """The usual TensorFlow training step, ``tf.reduce_mean`` of the loss under a tape,
    against ``anyloss.vjp`` with the mean's cotangent on NumPy."""
    r = np.random.default_rng(7)
    z, x = (r.uniform(size=(8, 3)) > 0.5) * 1.0, r.normal(size=(8, 3)) * 2
    tx = tensorflow.constant(x)
    with tensorflow.GradientTape() as tape:
        tape.watch(tx)
        mean = tensorflow.reduce_mean(tensorflow.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=tx))
    expected = tape.gradient(mean, tx).numpy()
    out, pullback = anyloss.vjp(lambda lg: atf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=lg), x)
    np.testing.assert_allclose(out.mean(), mean.numpy(), rtol=1e-14)
    np.testing.assert_allclose(pullback(np.full(out.shape, 1.0 / out.size)), expected, rtol=1e-13, atol=1e-16)


def test_porting_page_shows_tensorflow_numbers():
    """The docs' porting page (``docs/_ext``), built with TensorFlow installed: under each
    tf.nn example, its ``tensorflow`` snippet and what TensorFlow printed."""
    pytest.importorskip("sphinx")
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "anyloss_docs.py"
    spec = importlib.util.spec_from_file_location("anyloss_docs_for_test", path)
    docs = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = docs
    try:
        spec.loader.exec_module(docs)
        page = docs._compat_page()
    finally:
        del sys.modules[spec.name]
    assert f"TensorFlow {tensorflow.__version__} itself" in page
    for d in differences():
        if "tensorflow" in d:
            ns: dict = {}
            _run(d["code"], ns)
            printed = _run(d["tensorflow"], ns).rstrip()
            assert "\n".join("   " + line for line in printed.splitlines()) in page, d["title"]


SCALAR_CASES = [  # calls whose loss is 0-d: anyloss.value_and_grad against tape.gradient of the loss itself
    ("sigmoid", (np.array(0.25), np.array(-1.5)), {}, (0, 1)),
    ("sigmoid", (np.array(1.0), np.array(0.0)), {}, (0, 1)),
    ("weighted", (np.array(1.0), np.array(0.0), np.array(4.0)), {}, (0, 1, 2)),
    ("weighted", (np.array(0.7), np.array(30.0)), {"pos_weight": 0.5}, (0, 1)),
    ("softmax", (np.array([0.2, 0.3, 0.5]), np.array([1.0, -2.0, 0.5])), {}, (0, 1)),
    ("softmax", (np.array([1.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.0])), {"axis": 0}, (0, 1)),
    ("sparse", (np.array(1), np.array([3.0, 800.0, -800.0])), {}, (1,)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", SCALAR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SCALAR_CASES)])
def test_value_and_grad_of_a_0d_loss(case, dtype):
    name, args, kwargs, diff = case
    args = _cast(args, dtype)
    ts = [tensorflow.constant(a) for a in args]
    with tensorflow.GradientTape() as tape:
        for i in diff:
            tape.watch(ts[i])
        loss = CALL[name](tensorflow.nn, *ts, **kwargs)
    expected = [g.numpy() for g in tape.gradient(loss, [ts[i] for i in diff])]
    value, grads = anyloss.value_and_grad(lambda *a: CALL[name](atf.nn, *a, **kwargs), argnums=diff)(*args)
    value_bound, grad_bounds = magnitudes(name, args, kwargs, np.ones(()))
    assert_close(value, loss.numpy(), value_bound, dtype, f"{name}: value")
    for i, g, e in zip(diff, grads, expected):
        assert_close(g, e, grad_bounds[i], dtype, f"{name}: gradient of argument {i}")
