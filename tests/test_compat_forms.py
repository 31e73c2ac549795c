"""anyloss.compat: the call forms optax and Keras accept, beyond the numbers.

optax: ``where=`` masks, hyperparameters as (traced) 0-d arrays, NumPy and JAX
arrays mixed in one call. Keras: ``name=``/``dtype=`` and the config round
trip, integer ``y_pred``, a list ``sample_weight``, ``axis=`` of
``SparseCategoricalCrossentropy``, Keras's reduction error. Each is compared
with the real optax and Keras (values and gradients) where they are installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import anyloss
from anyloss.compat import keras as K
from anyloss.compat import optax as O
from helpers import to_numpy
from test_compat import _check_live, _close, _jax, _keras, _n, _optax

# ============================================================================ optax: where=

ROWS = np.array([[True, True, False, True, True], [True, False, False, False, False],
                 [False, False, False, False, False], [True] * 5])  # a partial row, one element, none, all
PER_EXAMPLE = np.array([True, False, True, True])


def _probs(r, *shape):
    p = r.uniform(0.05, 1.0, size=shape)
    return p / p.sum(axis=-1, keepdims=True)


OPTAX_WHERE = [  # (id, name, make(rng) -> (arrays, kwargs); the last array is `where`, differentiable positions)
    ("softmax_ce", "softmax_cross_entropy", lambda r: ((_n(r, 4, 5), _probs(r, 4, 5), ROWS), {}), (0, 1)),
    ("softmax_ce-per-example", "softmax_cross_entropy",
     lambda r: ((_n(r, 4, 5), _probs(r, 4, 5), PER_EXAMPLE), {}), (0, 1)),
    ("softmax_ce-axis0-per-example", "softmax_cross_entropy",
     lambda r: ((_n(r, 5, 4), _probs(r, 4, 5).T.copy(), PER_EXAMPLE), {"axis": 0}), (0, 1)),
    ("softmax_ce-broadcast-mask", "softmax_cross_entropy",
     lambda r: ((_n(r, 4, 5), _probs(r, 4, 5), ROWS[:1]), {}), (0, 1)),
    ("int_ce", "softmax_cross_entropy_with_integer_labels",
     lambda r: ((_n(r, 4, 5), np.array([0, 2, 1, 4]), ROWS), {}), (0,)),
    ("int_ce-per-example-out-of-range", "softmax_cross_entropy_with_integer_labels",
     lambda r: ((_n(r, 4, 5), np.array([0, 7, 9, -2]), PER_EXAMPLE), {}), (0,)),
    ("int_ce-axes-in-order", "softmax_cross_entropy_with_integer_labels",
     lambda r: ((_n(r, 2, 3, 4), r.integers(0, 12, 2), r.uniform(size=(2, 3, 4)) > 0.4), {"axis": (2, 1)}), (0,)),
    ("kl-zero-target", "kl_divergence",
     lambda r: ((np.log(_probs(r, 4, 5)), np.where(ROWS[::-1], _probs(r, 4, 5), 0.0), ROWS), {}), (0, 1)),
    ("kl-axis-none", "kl_divergence",
     lambda r: ((np.log(_probs(r, 4, 5)), _probs(r, 4, 5), ROWS), {"axis": None}), (0, 1)),
    ("kl-log-targets", "kl_divergence_with_log_targets",
     lambda r: ((np.log(_probs(r, 4, 5)), np.log(_probs(r, 4, 5)), ROWS), {}), (0, 1)),
    ("cosine_similarity", "cosine_similarity", lambda r: ((_n(r, 4, 5), _n(r, 4, 5), ROWS), {}), (0, 1)),
    ("cosine_distance-eps-axes", "cosine_distance",
     lambda r: ((_n(r, 2, 3, 4, scale=0.1), _n(r, 2, 3, 4), r.uniform(size=(2, 3, 4)) > 0.3),
                {"epsilon": 0.05, "axis": (0, 2)}), (0, 1)),
    ("cosine_distance-empty-vector-eps", "cosine_distance",
     lambda r: ((_n(r, 4, 5), _n(r, 4, 5), ROWS), {"epsilon": 0.1}), (0, 1)),
]


def _with_where(f, kwargs):
    return lambda *a: f(*a[:-1], where=a[-1], **kwargs)


@pytest.mark.parametrize("case", OPTAX_WHERE, ids=[c[0] for c in OPTAX_WHERE])
def test_optax_where_matches_optax(xp, case):
    optax = _optax()
    cid, name, make, diff = case
    args, kwargs = make(np.random.default_rng(len(cid)))
    _check_live(xp, _with_where(getattr(O, name), kwargs), _with_where(getattr(optax.losses, name), kwargs),
                args, {}, diff, seed=len(cid), key=("optax-where", cid))


def test_optax_where_all_true_is_no_mask():
    r = np.random.default_rng(3)
    x, z = r.normal(size=(3, 4)), _probs(r, 3, 4)
    _close(O.softmax_cross_entropy(x, z, where=np.ones((3, 4), bool)), O.softmax_cross_entropy(x, z), "all True")
    # and it is a mask, not a weight: the masked-out class leaves the softmax
    part = O.softmax_cross_entropy(x, z, where=np.array([[True, True, True, False]]))
    _close(part, -(z[:, :3] * (x[:, :3] - np.log(np.exp(x[:, :3]).sum(1, keepdims=True)))).sum(1), "classes 0-2")


def test_optax_where_vjp_on_numpy():
    # optax's losses are unreduced, so on NumPy the gradient is anyloss.vjp's (value_and_grad
    # wants a scalar): against jax.grad of the sum of optax's masked loss
    jax, optax = _jax(), _optax()
    import jax.numpy as jnp

    r = np.random.default_rng(4)
    x, y = r.normal(size=(4, 5)), np.array([1, 0, 3, 2])
    value, pullback = anyloss.vjp(lambda a: O.softmax_cross_entropy_with_integer_labels(a, y, where=ROWS), x)
    ref_v, ref_g = jax.value_and_grad(
        lambda a: optax.losses.softmax_cross_entropy_with_integer_labels(a, jnp.asarray(y), where=ROWS).sum())(
        jnp.asarray(x))
    _close(np.sum(value), ref_v, "value")
    _close(pullback(np.ones(4)), ref_g, "gradient")


# ============================================================================ optax: array hyperparameters

HYPER = [  # (id, name, make(rng) -> (arrays, hyperparameters))
    ("huber-delta", "huber_loss", lambda r: ((_n(r, 3, 4, scale=2), _n(r, 3, 4)), {"delta": 0.7})),
    ("focal-alpha-gamma", "sigmoid_focal_loss",
     lambda r: ((_n(r, 3, 4, scale=3), r.uniform(size=(3, 4))), {"alpha": 0.25, "gamma": 1.5})),
    ("focal-gamma", "sigmoid_focal_loss", lambda r: ((_n(r, 3, 4, scale=3), (r.uniform(size=(3, 4)) > 0.5) * 1.0),
                                                    {"gamma": 3.0})),
    ("cosine-epsilon", "cosine_similarity", lambda r: ((_n(r, 3, 4, scale=0.1), _n(r, 3, 4)), {"epsilon": 0.05})),
]


@pytest.mark.parametrize("case", HYPER, ids=[c[0] for c in HYPER])
def test_optax_traced_hyperparameters_under_jit(case):
    # jit with the hyperparameters as keyword arguments (traced), values and jax.grad of the
    # first array and of every hyperparameter, against optax's
    jax, optax = _jax(), _optax()
    import jax.numpy as jnp

    cid, name, make = case
    r = np.random.default_rng(len(cid))
    (a, b), hyper = make(r)
    ct = jnp.asarray(r.normal(size=getattr(optax.losses, name)(jnp.asarray(a), jnp.asarray(b), **hyper).shape))

    def run(f):
        def scalar(a, hyper):
            return (f(a, jnp.asarray(b), **hyper) * ct).sum()

        value = jax.jit(lambda a, **h: f(a, jnp.asarray(b), **h))(jnp.asarray(a), **hyper)
        return value, jax.jit(jax.grad(scalar, argnums=(0, 1)))(jnp.asarray(a), {k: jnp.asarray(v) for k, v in
                                                                                  hyper.items()})

    (ours, (ga, gh)), (ref, (ref_ga, ref_gh)) = run(getattr(O, name)), run(getattr(optax.losses, name))
    _close(ours, ref, "value")
    _close(ga, ref_ga, "gradient of the first array")
    for k in hyper:
        _close(gh[k], ref_gh[k], f"gradient of {k}", rtol=1e-9)


@pytest.mark.parametrize("case", HYPER, ids=[c[0] for c in HYPER])
def test_optax_array_hyperparameters_on_numpy(case):
    # 0-d NumPy hyperparameters: the same numbers as Python floats, and anyloss.vjp's gradient
    jax, optax = _jax(), _optax()
    import jax.numpy as jnp

    cid, name, make = case
    r = np.random.default_rng(len(cid))
    (a, b), hyper = make(r)
    arrays = {k: np.asarray(v) for k, v in hyper.items()}
    out, pullback = anyloss.vjp(lambda p: getattr(O, name)(p, b, **arrays), a)
    ref, ref_pullback = jax.vjp(lambda p: getattr(optax.losses, name)(p, jnp.asarray(b), **hyper), jnp.asarray(a))
    _close(out, ref, "value")
    ct = r.normal(size=out.shape)
    _close(pullback(ct), ref_pullback(jnp.asarray(ct))[0], "gradient")


def test_optax_hyperparameter_arrays_are_checked():
    with pytest.raises(TypeError, match="`delta`"):
        O.huber_loss(np.ones(3), delta=np.ones(2))
    with pytest.raises(ValueError, match="`delta`"):
        O.huber_loss(np.ones(3), delta=np.asarray(-1.0))
    with pytest.raises(TypeError, match="`gamma`"):
        O.sigmoid_focal_loss(np.ones(3), np.ones(3), gamma=np.array([2.0]))


# ============================================================================ optax: NumPy beside JAX

MIXED = [  # (name, make(rng) -> arrays, kwargs)
    ("huber_loss", lambda r: (_n(r, 3, 4), _n(r, 3, 4)), {"delta": 0.5}),
    ("sigmoid_binary_cross_entropy", lambda r: (_n(r, 3, 4), r.uniform(size=(3, 4))), {}),
    ("softmax_cross_entropy", lambda r: (_n(r, 3, 5), _probs(r, 3, 5)), {}),
    ("softmax_cross_entropy_with_integer_labels", lambda r: (_n(r, 3, 5), r.integers(0, 5, 3)), {}),
    ("kl_divergence", lambda r: (np.log(_probs(r, 3, 5)), _probs(r, 3, 5)), {}),
    ("cosine_distance", lambda r: (_n(r, 3, 5), _n(r, 3, 5)), {}),
]


MASKED = ("softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels", "kl_divergence", "cosine_distance")
MIXED_FORMS = [(c, at) for c in MIXED for at in ("first", "second", "where") if at != "where" or c[0] in MASKED]


@pytest.mark.parametrize("case, numpy_at", MIXED_FORMS, ids=[f"{c[0]}-numpy-{at}" for c, at in MIXED_FORMS])
def test_optax_mixes_numpy_and_jax(case, numpy_at):
    # One argument a NumPy array, the others JAX arrays: a JAX result with optax's value and
    # jax.grad of the first array (a JAX array there).
    jax, optax = _jax(), _optax()
    import jax.numpy as jnp

    name, make, kwargs = case
    r = np.random.default_rng(5)
    a, b = make(r)
    where = r.uniform(size=a.shape) > 0.3
    if name in MASKED:
        kwargs = {**kwargs, "where": where if numpy_at == "where" else jnp.asarray(where)}
    b_in = b if numpy_at == "second" else jnp.asarray(b)

    def loss(f):
        def scalar(a):
            return f(a, b_in, **kwargs).sum()

        first = a if numpy_at == "first" else jnp.asarray(a)
        return f(first, b_in, **kwargs), jax.grad(scalar)(jnp.asarray(a))

    (out, g), (ref, ref_g) = loss(getattr(O, name)), loss(getattr(optax.losses, name))
    assert isinstance(out, jax.Array)
    _close(out, ref, "value")
    _close(g, ref_g, "gradient")


OPTAX_FORM_ERRORS = [
    (lambda: O.softmax_cross_entropy(np.ones((2, 3)), np.ones((2, 3)), where=np.ones((2, 3))), TypeError, "`where`"),
    (lambda: O.softmax_cross_entropy(np.ones((2, 3)), np.ones((2, 3)), where=np.ones((3,), bool)), ValueError,
     "`where`"),
    (lambda: O.kl_divergence(np.ones((2, 3)), np.ones((2, 3)), where=np.ones((2, 2), bool)), ValueError, "`where`"),
    (lambda: O.cosine_similarity(np.ones((2, 3)), np.ones((2, 3)), where=[True, False, True]), TypeError, "`where`"),
]


@pytest.mark.parametrize("i", range(len(OPTAX_FORM_ERRORS)))
def test_optax_form_errors(i):
    call, exc, match = OPTAX_FORM_ERRORS[i]
    with pytest.raises(exc, match=match):
        call()
