"""anyloss.compat: TensorFlow's tf.nn cross entropies, optax's and Keras's losses.

optax and Keras are the oracles where installed (live: values and jax.vjp
gradients on the same inputs). TensorFlow's functions are checked here against
TensorFlow's documented formulas written out, and against the optax / PyTorch
functions that compute the same numbers, so that they are tested without
TensorFlow; tests/test_compat_tensorflow.py checks them against TensorFlow
itself where it is installed (the ``tf`` extra).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from anyloss.compat import differences
from anyloss.compat import keras as K
from anyloss.compat import optax as O
from anyloss.compat import tensorflow as tf
from helpers import backend_of, to_numpy, to_xp, torch, value_and_pullback


def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _optax():
    _jax()
    return pytest.importorskip("optax")


def _keras():
    _jax()
    return pytest.importorskip("keras")


def _close(actual, expected, what, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(
        to_numpy(actual), np.asarray(expected), rtol=rtol, atol=atol, equal_nan=True, err_msg=what
    )


_REFERENCES: dict = {}


def _reference(key, ref, args, kwargs, diff, seed):
    """``ref``'s value, a cotangent and ``ref``'s vjp of it, as NumPy arrays;
    computed once per test case (JAX compiles every new function)."""
    if key not in _REFERENCES:
        jax = _jax()
        import jax.numpy as jnp

        jargs = [jnp.asarray(a) for a in args]

        def r(*d):
            full = list(jargs)
            for i, a in zip(diff, d):
                full[i] = a
            return ref(*full, **kwargs)

        def value_and_vjp(d, ct):
            out, pullback = jax.vjp(r, *d)
            return out, pullback(ct)

        d = tuple(jargs[i] for i in diff)
        shape = jax.eval_shape(r, *d)
        ct = np.random.default_rng(seed).normal(size=tuple(shape.shape))
        # compiled as one function: JAX would otherwise compile the reference op by op
        expected, ref_g = jax.jit(value_and_vjp)(d, jnp.asarray(ct.astype(shape.dtype)))
        _REFERENCES[key] = (np.asarray(expected), ct, [np.asarray(g) for g in ref_g])
    return _REFERENCES[key]


def _check_live(xp, ours, ref, args, kwargs, diff, seed, rtol=1e-10, atol=1e-12, key=None):
    """``ours`` on ``xp`` arrays against ``ref`` (a JAX function) on the same
    numbers: shape, dtype, values, and the vjp of the arrays in ``diff``."""
    expected, ct, ref_g = _reference(key or object(), ref, args, kwargs, diff, seed)
    arrays = [to_xp(xp, a) for a in args]
    out, pullback = value_and_pullback(xp, lambda *a: ours(*a, **kwargs), arrays, list(diff))
    assert tuple(out.shape) == tuple(expected.shape), f"shape {tuple(out.shape)} != {tuple(expected.shape)}"
    dtype = args[diff[0]].dtype
    assert str(to_numpy(out).dtype) == str(dtype)
    _close(out, expected, "value", rtol, atol)
    ct = ct.astype(dtype)
    ours_g = pullback(to_xp(xp, ct) if backend_of(xp) != "torch" else torch.from_numpy(ct))
    for i, a, b in zip(diff, ours_g, ref_g):
        assert tuple(a.shape) == tuple(args[i].shape)
        _close(a, b, f"gradient of argument {i}", rtol, atol)


# ============================================================================ optax


def _n(r, *shape, scale=1.0):
    return r.normal(size=shape) * scale


EXTREME = np.array([-1e3, -60.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 60.0, 1e3])

OPTAX = [  # (id, name, make(rng) -> (args, kwargs), differentiable positions)
    ("squared_error", "squared_error", lambda r: ((_n(r, 3, 4), _n(r, 3, 4)), {}), (0, 1)),
    ("squared_error-no-targets", "squared_error", lambda r: ((_n(r, 3, 4),), {}), (0,)),
    ("l2_loss", "l2_loss", lambda r: ((_n(r, 3, 4), _n(r, 3, 4)), {}), (0, 1)),
    ("huber-delta0.5", "huber_loss", lambda r: ((_n(r, 3, 4), _n(r, 3, 4)), {"delta": 0.5}), (0, 1)),
    ("huber-broadcast", "huber_loss", lambda r: ((_n(r, 3, 4, scale=3), _n(r, 4)), {"delta": 2.0}), (0, 1)),
    ("log_cosh-extreme", "log_cosh", lambda r: ((EXTREME.copy(), _n(r, 9)), {}), (0, 1)),
    ("cosine_similarity", "cosine_similarity", lambda r: ((_n(r, 3, 4), _n(r, 3, 4)), {}), (0, 1)),
    (
        "cosine_similarity-eps-axis0",
        "cosine_similarity",
        lambda r: ((_n(r, 3, 4, scale=0.1), _n(r, 3, 4)), {"epsilon": 0.05, "axis": 0}),
        (0, 1),
    ),
    ("cosine_distance-axes", "cosine_distance", lambda r: ((_n(r, 2, 3, 4), _n(r, 2, 3, 4)), {"axis": (0, 2)}), (0, 1)),
    (
        "sigmoid_bce-extreme",
        "sigmoid_binary_cross_entropy",
        lambda r: ((EXTREME.copy(), r.uniform(size=9)), {}),
        (0, 1),
    ),
    (
        "sigmoid_bce-broadcast",
        "sigmoid_binary_cross_entropy",
        lambda r: ((_n(r, 3, 4, scale=4), (r.uniform(size=4) > 0.5) * 1.0), {}),
        (0, 1),
    ),
    ("focal", "sigmoid_focal_loss", lambda r: ((EXTREME.copy(), (r.uniform(size=9) > 0.5) * 1.0), {}), (0,)),
    (
        "focal-alpha-soft",
        "sigmoid_focal_loss",
        lambda r: ((_n(r, 3, 4, scale=5), r.uniform(size=(3, 4))), {"alpha": 0.25, "gamma": 1.5}),
        (0,),
    ),
    ("softmax_ce", "softmax_cross_entropy", lambda r: ((_n(r, 3, 5), r.dirichlet(np.ones(5), 3)), {}), (0, 1)),
    (
        "softmax_ce-axis0-extreme",
        "softmax_cross_entropy",
        lambda r: ((_n(r, 5, 3, scale=300), r.dirichlet(np.ones(5), 3).T), {"axis": 0}),
        (0, 1),
    ),
    (
        "softmax_ce-axis-none",
        "softmax_cross_entropy",
        lambda r: ((_n(r, 2, 3), r.dirichlet(np.ones(6)).reshape(2, 3)), {"axis": None}),
        (0, 1),
    ),
    ("int_ce", "softmax_cross_entropy_with_integer_labels", lambda r: ((_n(r, 4, 5), r.integers(0, 5, 4)), {}), (0,)),
    (
        "int_ce-out-of-range",
        "softmax_cross_entropy_with_integer_labels",
        lambda r: ((_n(r, 5, 3), np.array([-1, 3, 5, -4, -3])), {}),
        (0,),
    ),
    (
        "int_ce-axes-in-order",
        "softmax_cross_entropy_with_integer_labels",
        lambda r: ((_n(r, 2, 3, 4, scale=50), r.integers(0, 12, 2)), {"axis": (2, 1)}),
        (0,),
    ),
    (
        "int_ce-axis0-int32",
        "softmax_cross_entropy_with_integer_labels",
        lambda r: ((_n(r, 4, 3), r.integers(0, 4, 3).astype(np.int32)), {"axis": 0}),
        (0,),
    ),
    ("hinge", "hinge_loss", lambda r: ((_n(r, 3, 4), np.sign(_n(r, 3, 4))), {}), (0, 1)),
    (
        "hinge-kink",
        "hinge_loss",
        lambda r: ((np.array([1.0, -1.0, 0.5, 2.0]), np.array([1.0, -1.0, 1.0, -1.0])), {}),
        (0, 1),
    ),
    ("kl", "kl_divergence", lambda r: ((np.log(r.dirichlet(np.ones(4), 3)), r.dirichlet(np.ones(4), 3)), {}), (0, 1)),
    (
        "kl-zero-targets-axis-none",
        "kl_divergence",
        lambda r: (
            (np.log(r.dirichlet(np.ones(4), 2)), np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])),
            {"axis": None},
        ),
        (0, 1),
    ),
    (
        "kl-log-targets",
        "kl_divergence_with_log_targets",
        lambda r: ((np.log(r.dirichlet(np.ones(4), 3)), np.log(r.dirichlet(np.ones(4), 3))), {"axis": 1}),
        (0, 1),
    ),
]


@pytest.mark.parametrize("case", OPTAX, ids=[c[0] for c in OPTAX])
def test_optax_matches_optax(xp, case):
    optax = _optax()
    cid, name, make, diff = case
    args, kwargs = make(np.random.default_rng(len(cid)))
    _check_live(
        xp, getattr(O, name), getattr(optax.losses, name), args, kwargs, diff, seed=len(cid), key=("optax", cid)
    )


def test_optax_float32_and_jit():
    jax, optax = _jax(), _optax()
    import jax.numpy as jnp

    r = np.random.default_rng(0)
    x, y = r.normal(size=(6, 4)).astype(np.float32), r.integers(0, 4, 6)
    out = O.softmax_cross_entropy_with_integer_labels(x, y)
    assert out.dtype == np.float32
    _close(
        out,
        optax.losses.softmax_cross_entropy_with_integer_labels(jnp.asarray(x), jnp.asarray(y)),
        "float32",
        rtol=1e-6,
        atol=1e-6,
    )
    f = jax.jit(lambda a, b: O.softmax_cross_entropy_with_integer_labels(a, b, axis=-1).mean())
    g = jax.jit(jax.grad(f))(jnp.asarray(x), jnp.asarray(y))
    ref = jax.grad(lambda a: optax.losses.softmax_cross_entropy_with_integer_labels(a, jnp.asarray(y)).mean())(
        jnp.asarray(x)
    )
    _close(g, ref, "grad under jit", rtol=1e-6, atol=1e-7)


def test_optax_numpy_value_and_grad_with_a_mean():
    # A scalar on NumPy: anyloss.vjp of the unreduced loss, then the mean's cotangent.
    r = np.random.default_rng(1)
    p, t = r.normal(size=(3, 2)), r.normal(size=(3, 2))
    out, pullback = anyloss.vjp(O.l2_loss, p, t)
    gp = pullback(np.full(out.shape, 1.0 / out.size))
    _close(gp, (p - t) / p.size, "l2_loss gradient: the 1/2 cancels the square's 2")


OPTAX_ERRORS = [
    (lambda: O.squared_error(np.ones((2, 3)), np.ones(3)), ValueError, "`targets`"),
    (lambda: O.l2_loss(np.ones(3, dtype=int)), TypeError, "`predictions`"),
    (lambda: O.huber_loss(np.ones(3), delta=-1.0), ValueError, "`delta`"),
    (lambda: O.huber_loss(np.ones(3), np.ones(4)), ValueError, "`targets`"),
    (lambda: O.softmax_cross_entropy_with_integer_labels(np.ones((2, 3)), np.ones(2)), TypeError, "`labels`"),
    (
        lambda: O.softmax_cross_entropy_with_integer_labels(np.ones((2, 3)), np.ones(3, dtype=int)),
        ValueError,
        "`labels`",
    ),
    (
        lambda: O.softmax_cross_entropy_with_integer_labels(np.ones((2, 3)), np.ones(2, dtype=int), axis=2),
        ValueError,
        "`axis`",
    ),
    (lambda: O.softmax_cross_entropy(np.ones((2, 3)), np.ones((2, 3)), axis=1.0), TypeError, "`axis`"),
    (lambda: O.softmax_cross_entropy(np.ones(3), np.ones((2, 3))), ValueError, "`labels`"),
    (lambda: O.kl_divergence(np.ones((2, 3)), np.ones((2, 3)), axis=(1, 1)), ValueError, "`axis`"),
    (lambda: O.sigmoid_focal_loss(np.ones(3), np.ones(3), gamma="2"), TypeError, "`gamma`"),
    (lambda: O.cosine_similarity(np.ones(3), [1.0, 2.0, 3.0]), TypeError, "`targets`"),
]


@pytest.mark.parametrize("i", range(len(OPTAX_ERRORS)))
def test_optax_errors(i):
    call, exc, match = OPTAX_ERRORS[i]
    with pytest.raises(exc, match=match):
        call()


# ============================================================================ TensorFlow
# TensorFlow's documented formulas (tf.nn API docs), written out in NumPy.


def _tf_sigmoid_ref(z, x):
    return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))


def _tf_weighted_ref(z, x, q):
    l = 1 + (q - 1) * z  # noqa: E741
    return (1 - z) * x + l * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))


def _log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def test_tf_sigmoid(xp):
    r = np.random.default_rng(2)
    x = np.concatenate([EXTREME, r.normal(size=7) * 3]).reshape(4, 4)
    z = r.uniform(size=(4, 4))
    out = tf.nn.sigmoid_cross_entropy_with_logits(labels=to_xp(xp, z), logits=to_xp(xp, x))
    _close(out, _tf_sigmoid_ref(z, x), "TF's formula")
    # optax's sigmoid_binary_cross_entropy is the same function: values and vjp of both arguments
    if backend_of(xp) in ("numpy", "torch", "jax"):
        optax = _optax()
        _check_live(
            xp,
            lambda lg, lb: tf.nn.sigmoid_cross_entropy_with_logits(labels=lb, logits=lg),
            optax.sigmoid_binary_cross_entropy,
            (x, z),
            {},
            (0, 1),
            seed=2,
            key="tf-sigmoid",
        )


def test_tf_weighted_against_formula_and_torch(xp):
    r = np.random.default_rng(3)
    x, z = r.normal(size=(5, 3)) * 4, (r.uniform(size=(5, 3)) > 0.4) * 1.0
    x[0] = [-80.0, 0.0, 80.0]
    q = np.array([3.0, 1.0, 0.25])
    _close(
        tf.nn.weighted_cross_entropy_with_logits(to_xp(xp, z), to_xp(xp, x), 2.5),
        _tf_weighted_ref(z, x, 2.5),
        "TF's formula, a number as pos_weight",
    )
    arrays = [to_xp(xp, a) for a in (z, x, q)]
    out, pullback = value_and_pullback(xp, tf.nn.weighted_cross_entropy_with_logits, arrays, [0, 1, 2])
    _close(out, _tf_weighted_ref(z, x, q), "TF's formula, an array pos_weight")
    # PyTorch's pos_weight is the same weighting: compare values and the gradients of labels and
    # logits with torch.autograd (PyTorch does not differentiate pos_weight: there, TF's formula)
    tz, tx = (torch.tensor(a, requires_grad=True) for a in (z, x))
    ref = torch.nn.functional.binary_cross_entropy_with_logits(tx, tz, pos_weight=torch.from_numpy(q), reduction="none")
    ct = r.normal(size=ref.shape)
    ref.backward(torch.from_numpy(ct))
    _close(out, ref.detach().numpy(), "torch, reduction='none'")
    gz, gx, gq = pullback(to_xp(xp, ct) if backend_of(xp) != "torch" else torch.from_numpy(ct))
    _close(gz, tz.grad.numpy(), "labels' gradient")
    # except at a logit of exactly 0 (x[0, 1]), where TensorFlow's gradient is (1 - z) alone: it
    # differentiates |x| and relu(-x) as 0 there (tests/test_compat_tensorflow.py checks it live)
    _close(gx, np.where(x == 0, ct * (1 - z), tx.grad.numpy()), "logits' gradient")
    assert x[0, 1] == 0 and not np.isclose(ct[0, 1] * (1 - z[0, 1]), tx.grad.numpy()[0, 1])
    _close(gq, (ct * z * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))).sum(axis=0), "pos_weight's gradient")


@pytest.mark.parametrize("axis", [-1, 0])
def test_tf_softmax(xp, axis):
    r = np.random.default_rng(4)
    x = r.normal(size=(4, 5)) * 10
    z = r.dirichlet(np.ones(5), 4) if axis == -1 else r.dirichlet(np.ones(4), 5).T
    out = tf.nn.softmax_cross_entropy_with_logits(to_xp(xp, z), to_xp(xp, x), axis=axis)
    _close(out, -(z * _log_softmax(x, axis)).sum(axis=axis), "TF's formula")
    if backend_of(xp) in ("numpy", "torch", "jax"):
        optax = _optax()
        _check_live(
            xp,
            lambda lg, lb: tf.nn.softmax_cross_entropy_with_logits(lb, lg, axis=axis),
            lambda lg, lb: optax.softmax_cross_entropy(lg, lb, axis=axis),
            (x, z),
            {},
            (0, 1),
            seed=4,
            key=("tf-softmax", axis),
        )


def test_tf_sparse(xp):
    r = np.random.default_rng(5)
    x, y = r.normal(size=(2, 3, 6)) * 5, r.integers(0, 6, (2, 3))
    out = tf.nn.sparse_softmax_cross_entropy_with_logits(to_xp(xp, y), to_xp(xp, x))
    _close(out, -np.take_along_axis(_log_softmax(x, -1), y[..., None], -1)[..., 0], "TF's formula")
    if backend_of(xp) in ("numpy", "torch", "jax"):
        optax = _optax()
        _check_live(
            xp,
            lambda lg, lb: tf.nn.sparse_softmax_cross_entropy_with_logits(lb, lg),
            optax.softmax_cross_entropy_with_integer_labels,
            (x, y),
            {},
            (0,),
            seed=5,
            key="tf-sparse",
        )


def test_tf_sparse_out_of_range_under_jit_is_nan():
    jax = _jax()
    import jax.numpy as jnp

    x, y = jnp.zeros((2, 3)), jnp.asarray([1, 3])
    with pytest.raises(ValueError, match="`labels`"):
        tf.nn.sparse_softmax_cross_entropy_with_logits(y, x)
    out = jax.jit(tf.nn.sparse_softmax_cross_entropy_with_logits)(y, x)
    assert np.isfinite(out[0]) and np.isnan(out[1])


TF_ERRORS = [
    (lambda: tf.nn.sigmoid_cross_entropy_with_logits(labels=np.ones(3)), TypeError, "`logits`"),
    (lambda: tf.nn.sigmoid_cross_entropy_with_logits(labels=np.ones(3), logits=np.ones(4)), ValueError, "`labels`"),
    (
        lambda: tf.nn.sigmoid_cross_entropy_with_logits(labels=np.ones(3, dtype=np.float32), logits=np.ones(3)),
        TypeError,
        "`labels`",
    ),
    (
        lambda: tf.nn.sigmoid_cross_entropy_with_logits(labels=np.ones(3), logits=np.ones(3, dtype=int)),
        TypeError,
        "`logits`",
    ),
    (
        lambda: tf.nn.weighted_cross_entropy_with_logits(np.ones((2, 3)), np.ones((2, 3)), np.ones(2)),
        ValueError,
        "`pos_weight`",
    ),
    (
        lambda: tf.nn.weighted_cross_entropy_with_logits(np.ones(3), np.ones(3), np.ones(3, dtype=np.float32)),
        TypeError,
        "`pos_weight`",
    ),
    (lambda: tf.nn.softmax_cross_entropy_with_logits(np.ones((2, 3)), np.ones((2, 3)), axis=2), ValueError, "`axis`"),
    (lambda: tf.nn.softmax_cross_entropy_with_logits(np.ones((2, 3)), np.ones((2, 3)), axis=(1,)), TypeError, "`axis`"),
    (
        lambda: tf.nn.sparse_softmax_cross_entropy_with_logits(np.zeros(3, dtype=int), np.ones((2, 3))),
        ValueError,
        "`labels`",
    ),
    (lambda: tf.nn.sparse_softmax_cross_entropy_with_logits(np.zeros(2), np.ones((2, 3))), TypeError, "`labels`"),
    (
        lambda: tf.nn.sparse_softmax_cross_entropy_with_logits(np.array([0, -1]), np.ones((2, 3))),
        ValueError,
        r"`labels` must be class indices in \[0, 3\)",
    ),
]


@pytest.mark.parametrize("i", range(len(TF_ERRORS)))
def test_tf_errors(i):
    call, exc, match = TF_ERRORS[i]
    with pytest.raises(exc, match=match):
        call()


# ============================================================================ Keras


def _u(r, *shape, low=0.0, high=1.0):
    return r.uniform(low, high, size=shape)


def _bits(r, *shape):
    return (r.uniform(size=shape) > 0.5) * 1.0


SATURATED = np.array([[0.0, 1e-9, 0.3, 1.0], [1.0, 1 - 1e-9, 0.5, 0.0]])

KERAS = [  # (id, name, make(rng) -> (y_true, y_pred, kwargs))
    ("mse", "mean_squared_error", lambda r: (_n(r, 3, 4), _n(r, 3, 4), {})),
    ("mse-rank-matched", "mean_squared_error", lambda r: (_n(r, 5), _n(r, 5, 1), {})),
    ("mse-squeezed", "mean_squared_error", lambda r: (_n(r, 2, 3, 1), _n(r, 2, 3), {})),
    ("mae", "mean_absolute_error", lambda r: (_n(r, 3, 4), _n(r, 3, 4), {})),
    (
        "mape-zero-target",
        "mean_absolute_percentage_error",
        lambda r: (np.array([[0.0, 1.0, -2.0], [3.0, 1e-9, 0.5]]), _n(r, 2, 3), {}),
    ),
    ("msle-clipped", "mean_squared_logarithmic_error", lambda r: (_n(r, 3, 4), _n(r, 3, 4), {})),
    ("huber", "huber", lambda r: (_n(r, 3, 4), _n(r, 3, 4, scale=3), {"delta": 0.7})),
    ("log_cosh-extreme", "log_cosh", lambda r: (_n(r, 1, 9), EXTREME[None, :] / 10, {})),
    ("poisson", "poisson", lambda r: (_u(r, 3, 4, high=3), _u(r, 3, 4, low=0.1, high=3), {})),
    ("kl-clipped", "kl_divergence", lambda r: (SATURATED, _u(r, 2, 4, low=0.05), {})),
    ("cosine", "cosine_similarity", lambda r: (_n(r, 3, 4), _n(r, 3, 4), {})),
    (
        "cosine-axis0-tiny-vector",
        "cosine_similarity",
        lambda r: (_n(r, 3, 4), np.concatenate([np.full((3, 1), 1e-9), _n(r, 3, 3)], axis=1), {"axis": 0}),
    ),
    ("hinge-01-labels", "hinge", lambda r: (_bits(r, 3, 4), _n(r, 3, 4), {})),
    ("hinge-signs", "hinge", lambda r: (np.sign(_n(r, 3, 4)), _n(r, 3, 4), {})),
    ("squared_hinge", "squared_hinge", lambda r: (_bits(r, 3, 4), _n(r, 3, 4), {})),
    ("categorical_hinge", "categorical_hinge", lambda r: (np.eye(4)[[0, 2, 3]], _n(r, 3, 4), {})),
    ("bce-saturated", "binary_crossentropy", lambda r: (SATURATED[::-1].copy(), SATURATED, {})),
    ("bce-smoothing", "binary_crossentropy", lambda r: (_bits(r, 3, 4), _u(r, 3, 4), {"label_smoothing": 0.2})),
    (
        "bce-logits-extreme",
        "binary_crossentropy",
        lambda r: (_bits(r, 2, 9), np.stack([EXTREME, -EXTREME]), {"from_logits": True, "label_smoothing": 0.1}),
    ),
    ("bce-axis0", "binary_crossentropy", lambda r: (_bits(r, 3, 4), _u(r, 3, 4), {"axis": 0})),
    ("cce", "categorical_crossentropy", lambda r: (np.eye(4)[[0, 2, 3]], _u(r, 3, 4), {})),
    ("cce-saturated", "categorical_crossentropy", lambda r: (np.eye(4)[[0, 1]], SATURATED, {})),
    (
        "cce-logits-smoothing",
        "categorical_crossentropy",
        lambda r: (np.eye(4)[[0, 2, 3]], _n(r, 3, 4, scale=30), {"from_logits": True, "label_smoothing": 0.3}),
    ),
    (
        "cce-axis0-smoothing-last-dim",
        "categorical_crossentropy",
        lambda r: (np.eye(3)[[0, 2, 1, 1, 0]].T.copy(), _u(r, 3, 5), {"axis": 0, "label_smoothing": 0.2}),
    ),
    ("scce", "sparse_categorical_crossentropy", lambda r: (r.integers(0, 4, 3), _u(r, 3, 4), {})),
    (
        "scce-logits-ignore",
        "sparse_categorical_crossentropy",
        lambda r: (np.array([0, -1, 3, -1, 2]), _n(r, 5, 4), {"from_logits": True, "ignore_class": -1}),
    ),
    (
        "scce-float-column-ignore",
        "sparse_categorical_crossentropy",
        lambda r: (np.array([[0.0], [255.0], [3.0]]), _u(r, 3, 4), {"ignore_class": 255}),
    ),
]


def _keras_ref(name):
    keras = _keras()
    if keras.backend.backend() != "jax":
        pytest.skip(f"Keras runs on its {keras.backend.backend()} backend here; the live comparison uses jax")
    return getattr(keras.losses, name)


@pytest.mark.parametrize("case", KERAS, ids=[c[0] for c in KERAS])
def test_keras_matches_keras(xp, case):
    cid, name, make = case
    ref = _keras_ref(name)
    y_true, y_pred, kwargs = make(np.random.default_rng(len(cid)))
    y_true = y_true if y_true.dtype.kind in "iu" else y_true.astype(np.float32)
    # Keras averages in float32 whatever the input (keras.ops.mean), so compare in float32.
    _check_live(
        xp,
        getattr(K, name),
        ref,
        (y_true, y_pred.astype(np.float32)),
        kwargs,
        (1,),
        seed=len(cid),
        rtol=2e-5,
        atol=2e-6,
        key=("keras", cid),
    )


KERAS_CLASSES = [
    ("MeanSquaredError", {}, "mse"),
    ("Huber", {"delta": 0.5}, "huber"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "cce-logits-smoothing"),
    ("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": -1}, "scce-logits-ignore"),
    ("BinaryCrossentropy", {}, "bce-smoothing"),
]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight", None])
@pytest.mark.parametrize("weights", ["none", "per-sample", "number"])
@pytest.mark.parametrize("cls", KERAS_CLASSES, ids=[c[0] for c in KERAS_CLASSES])
def test_keras_classes_reduce_like_keras(cls, reduction, weights):
    name, options, data = cls
    keras = _keras()
    if keras.backend.backend() != "jax":
        pytest.skip("the live comparison uses Keras's jax backend")
    y_true, y_pred, _ = dict((c[0], c[2]) for c in KERAS)[data](np.random.default_rng(7))
    y_pred = y_pred.astype(np.float32)
    y_true = y_true if y_true.dtype.kind in "iu" else y_true.astype(np.float32)
    r = np.random.default_rng(8)
    sw = {"none": None, "per-sample": r.uniform(size=y_pred.shape[0]).astype(np.float32), "number": 0.5}[weights]
    _check_live(
        np,
        lambda p: getattr(K, name)(reduction=reduction, **options)(y_true, p, sample_weight=sw),
        lambda p: getattr(keras.losses, name)(reduction=reduction, **options)(y_true, p, sample_weight=sw),
        (y_pred,),
        {},
        (0,),
        seed=9,
        rtol=2e-5,
        atol=2e-6,
    )


def test_keras_sum_is_a_sum_of_per_sample_means():
    # Keras's 'sum' sums per-sample means: torch's sum divided by the feature size.
    r = np.random.default_rng(10)
    y, p = r.normal(size=(4, 5)), r.normal(size=(4, 5))
    _close(K.MeanSquaredError(reduction="sum")(y, p), F.mse_loss(p, y, reduction="sum") / 5, "sum")
    _close(K.MeanSquaredError()(y, p), F.mse_loss(p, y), "sum_over_batch_size is torch's mean")
    value, g = anyloss.value_and_grad(K.MeanSquaredError(reduction="sum"), argnums=1)(y, p)
    _close(g, 2 * (p - y) / 5, "gradient on NumPy")


def test_keras_classes_on_torch_backward():
    r = np.random.default_rng(11)
    y = torch.from_numpy(r.integers(0, 3, 4))
    x = torch.tensor(r.normal(size=(4, 3)), requires_grad=True)
    loss = K.SparseCategoricalCrossentropy(from_logits=True)(y, x)
    loss.backward()
    ref_x = x.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(ref_x, y).backward()
    _close(loss.detach(), torch.nn.functional.cross_entropy(ref_x, y).detach(), "value")
    _close(x.grad, ref_x.grad, "gradient")


KERAS_ERRORS = [
    (lambda: K.MeanSquaredError(reduction="avg"), ValueError, "`reduction`"),
    (lambda: K.Huber(beta=1.0), TypeError, "`beta`"),
    (lambda: K.huber(np.ones(3), np.ones(3), delta="1"), TypeError, "`delta`"),
    (lambda: K.mean_squared_error(np.ones((2, 3)), np.ones((2, 4))), ValueError, "`y_true`"),
    (lambda: K.mean_squared_error(np.ones(3), np.ones(3, dtype=complex)), TypeError, "`y_pred`"),
    (lambda: K.mean_squared_error(np.ones(()), np.ones(())), ValueError, "`y_pred`"),
    (lambda: K.binary_crossentropy(np.ones((2, 3)), np.ones((3, 2))), ValueError, "`y_true`"),
    (lambda: K.binary_crossentropy(np.ones(3), np.ones(3), label_smoothing=1.5), ValueError, "`label_smoothing`"),
    (lambda: K.binary_crossentropy(np.ones(3), np.ones(3), from_logits="yes"), TypeError, "`from_logits`"),
    (lambda: K.categorical_crossentropy(np.ones((2, 3)), np.ones((2, 3)), axis=(0, 1)), TypeError, "`axis`"),
    (lambda: K.sparse_categorical_crossentropy(np.array([0, 3]), np.ones((2, 3))), ValueError, "`y_true`"),
    (lambda: K.sparse_categorical_crossentropy(np.array([0, 1, 2]), np.ones((2, 3))), ValueError, "`y_true`"),
    (lambda: K.sparse_categorical_crossentropy(np.array([0, 1, 1]), np.ones((3, 2)), axis=0), ValueError, "`axis`"),
    (lambda: K.MeanSquaredError()(np.ones(3), np.ones(3), sample_weight="heavy"), TypeError, "`sample_weight`"),
    (lambda: K.MeanSquaredError()(np.ones(3), np.ones(3), sample_weight=["a"]), TypeError, "`sample_weight`"),
    (lambda: K.MeanSquaredError(dtype="float23")(np.ones(3), np.ones(3)), ValueError, "`dtype`"),
    (lambda: K.MeanSquaredError(name=3), TypeError, "`name`"),
    (lambda: K.Huber(0.5, 1.0), ValueError, "Invalid value for argument `reduction`"),
    (lambda: K.Huber(0.5, delta=1.0), TypeError, "`delta`"),
    (lambda: K.MeanSquaredError("sum", "n", None, 1), TypeError, "positional"),
]


@pytest.mark.parametrize("i", range(len(KERAS_ERRORS)))
def test_keras_errors(i):
    call, exc, match = KERAS_ERRORS[i]
    with pytest.raises(exc, match=match):
        call()


# ============================================================================ docs material


@pytest.mark.parametrize("i", range(len(differences())))
def test_differences_snippets_run_and_print(i, capsys):
    entry = differences()[i]
    assert {"title", "code", "why"} <= set(entry) <= {"title", "code", "why", "tensorflow"}
    assert all(isinstance(v, str) and v for v in entry.values())
    assert ("tensorflow" in entry) == ("import anyloss.compat.tensorflow" in entry["code"])
    exec(compile(entry["code"], f"<differences()[{i}]>", "exec"), {})
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(printed) >= 2, printed


def test_differences_cover_the_brief():
    titles = " | ".join(d["title"] for d in differences())
    for needle in [
        "reduction='sum'",
        "clip",
        "batchmean",
        "out-of-range",
        "l2_loss",
        "sigmoid_cross_entropy",
        "pos_weight",
        "Huber",
        "smoothing",
    ]:
        assert needle in titles, needle


def test_compat_losses_stay_out_of_the_registry():
    names = set(anyloss.losses())
    assert not any(n.startswith(("keras.", "optax.", "tf.")) for n in names)
