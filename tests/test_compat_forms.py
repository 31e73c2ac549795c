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
from test_compat import _check_live, _close, _jax, _keras, _n, _optax

import anyloss
from anyloss.compat import keras as K
from anyloss.compat import optax as O
from helpers import to_numpy

# ============================================================================ optax: where=

ROWS = np.array(
    [
        [True, True, False, True, True],
        [True, False, False, False, False],
        [False, False, False, False, False],
        [True] * 5,
    ]
)  # a partial row, one element, none, all
PER_EXAMPLE = np.array([True, False, True, True])


def _probs(r, *shape):
    p = r.uniform(0.05, 1.0, size=shape)
    return p / p.sum(axis=-1, keepdims=True)


OPTAX_WHERE = [  # (id, name, make(rng) -> (arrays, kwargs); the last array is `where`, differentiable positions)
    ("softmax_ce", "softmax_cross_entropy", lambda r: ((_n(r, 4, 5), _probs(r, 4, 5), ROWS), {}), (0, 1)),
    (
        "softmax_ce-per-example",
        "softmax_cross_entropy",
        lambda r: ((_n(r, 4, 5), _probs(r, 4, 5), PER_EXAMPLE), {}),
        (0, 1),
    ),
    (
        "softmax_ce-axis0-per-example",
        "softmax_cross_entropy",
        lambda r: ((_n(r, 5, 4), _probs(r, 4, 5).T.copy(), PER_EXAMPLE), {"axis": 0}),
        (0, 1),
    ),
    (
        "softmax_ce-broadcast-mask",
        "softmax_cross_entropy",
        lambda r: ((_n(r, 4, 5), _probs(r, 4, 5), ROWS[:1]), {}),
        (0, 1),
    ),
    (
        "int_ce",
        "softmax_cross_entropy_with_integer_labels",
        lambda r: ((_n(r, 4, 5), np.array([0, 2, 1, 4]), ROWS), {}),
        (0,),
    ),
    (
        "int_ce-per-example-out-of-range",
        "softmax_cross_entropy_with_integer_labels",
        lambda r: ((_n(r, 4, 5), np.array([0, 7, 9, -2]), PER_EXAMPLE), {}),
        (0,),
    ),
    (
        "int_ce-axes-in-order",
        "softmax_cross_entropy_with_integer_labels",
        lambda r: ((_n(r, 2, 3, 4), r.integers(0, 12, 2), r.uniform(size=(2, 3, 4)) > 0.4), {"axis": (2, 1)}),
        (0,),
    ),
    (
        "kl-zero-target",
        "kl_divergence",
        lambda r: ((np.log(_probs(r, 4, 5)), np.where(ROWS[::-1], _probs(r, 4, 5), 0.0), ROWS), {}),
        (0, 1),
    ),
    (
        "kl-axis-none",
        "kl_divergence",
        lambda r: ((np.log(_probs(r, 4, 5)), _probs(r, 4, 5), ROWS), {"axis": None}),
        (0, 1),
    ),
    (
        "kl-log-targets",
        "kl_divergence_with_log_targets",
        lambda r: ((np.log(_probs(r, 4, 5)), np.log(_probs(r, 4, 5)), ROWS), {}),
        (0, 1),
    ),
    ("cosine_similarity", "cosine_similarity", lambda r: ((_n(r, 4, 5), _n(r, 4, 5), ROWS), {}), (0, 1)),
    (
        "cosine_distance-eps-axes",
        "cosine_distance",
        lambda r: (
            (_n(r, 2, 3, 4, scale=0.1), _n(r, 2, 3, 4), r.uniform(size=(2, 3, 4)) > 0.3),
            {"epsilon": 0.05, "axis": (0, 2)},
        ),
        (0, 1),
    ),
    (
        "cosine_distance-empty-vector-eps",
        "cosine_distance",
        lambda r: ((_n(r, 4, 5), _n(r, 4, 5), ROWS), {"epsilon": 0.1}),
        (0, 1),
    ),
]


def _with_where(f, kwargs):
    return lambda *a: f(*a[:-1], where=a[-1], **kwargs)


@pytest.mark.parametrize("case", OPTAX_WHERE, ids=[c[0] for c in OPTAX_WHERE])
def test_optax_where_matches_optax(xp, case):
    optax = _optax()
    cid, name, make, diff = case
    args, kwargs = make(np.random.default_rng(len(cid)))
    _check_live(
        xp,
        _with_where(getattr(O, name), kwargs),
        _with_where(getattr(optax.losses, name), kwargs),
        args,
        {},
        diff,
        seed=len(cid),
        key=("optax-where", cid),
    )


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
        lambda a: optax.losses.softmax_cross_entropy_with_integer_labels(a, jnp.asarray(y), where=ROWS).sum()
    )(jnp.asarray(x))
    _close(np.sum(value), ref_v, "value")
    _close(pullback(np.ones(4)), ref_g, "gradient")


# ============================================================================ optax: array hyperparameters

HYPER = [  # (id, name, make(rng) -> (arrays, hyperparameters))
    ("huber-delta", "huber_loss", lambda r: ((_n(r, 3, 4, scale=2), _n(r, 3, 4)), {"delta": 0.7})),
    (
        "focal-alpha-gamma",
        "sigmoid_focal_loss",
        lambda r: ((_n(r, 3, 4, scale=3), r.uniform(size=(3, 4))), {"alpha": 0.25, "gamma": 1.5}),
    ),
    (
        "focal-gamma",
        "sigmoid_focal_loss",
        lambda r: ((_n(r, 3, 4, scale=3), (r.uniform(size=(3, 4)) > 0.5) * 1.0), {"gamma": 3.0}),
    ),
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
        return value, jax.jit(jax.grad(scalar, argnums=(0, 1)))(
            jnp.asarray(a), {k: jnp.asarray(v) for k, v in hyper.items()}
        )

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
    (
        lambda: O.softmax_cross_entropy(np.ones((2, 3)), np.ones((2, 3)), where=np.ones((3,), bool)),
        ValueError,
        "`where`",
    ),
    (lambda: O.kl_divergence(np.ones((2, 3)), np.ones((2, 3)), where=np.ones((2, 2), bool)), ValueError, "`where`"),
    (lambda: O.cosine_similarity(np.ones((2, 3)), np.ones((2, 3)), where=[True, False, True]), TypeError, "`where`"),
]


@pytest.mark.parametrize("i", range(len(OPTAX_FORM_ERRORS)))
def test_optax_form_errors(i):
    call, exc, match = OPTAX_FORM_ERRORS[i]
    with pytest.raises(exc, match=match):
        call()


# ============================================================================ Keras: constructors and configs


def _keras_jax():
    keras = _keras()
    if keras.backend.backend() != "jax":
        pytest.skip("the live comparison uses Keras's jax backend")
    return keras


KERAS_CLASSES = [  # (class, constructor keywords besides name/reduction, data id in test_compat.KERAS)
    ("MeanSquaredError", {}, "mse"),
    ("MeanAbsoluteError", {}, "mae"),
    ("MeanAbsolutePercentageError", {}, "mape-zero-target"),
    ("MeanSquaredLogarithmicError", {}, "msle-clipped"),
    ("Huber", {"delta": 0.5}, "huber"),
    ("LogCosh", {}, "log_cosh-extreme"),
    ("Poisson", {}, "poisson"),
    ("KLDivergence", {}, "kl-clipped"),
    ("CosineSimilarity", {"axis": 0}, "cosine"),
    ("Hinge", {}, "hinge-01-labels"),
    ("SquaredHinge", {}, "squared_hinge"),
    ("CategoricalHinge", {}, "categorical_hinge"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1, "axis": -1}, "bce-logits-extreme"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.3}, "cce-logits-smoothing"),
    ("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": -1, "axis": -1}, "scce-logits-ignore"),
]


def _data(data_id):
    from test_compat import KERAS

    y_true, y_pred, _ = {c[0]: c[2] for c in KERAS}[data_id](np.random.default_rng(7))
    return (y_true if y_true.dtype.kind in "iu" else y_true.astype(np.float32)), y_pred.astype(np.float32)


@pytest.mark.parametrize("cls", KERAS_CLASSES, ids=[c[0] for c in KERAS_CLASSES])
def test_keras_constructor_signature_is_keras(cls):
    import inspect

    keras = _keras_jax()
    ours = inspect.signature(getattr(K, cls[0]))
    ref = inspect.signature(getattr(keras.losses, cls[0]).__init__)
    assert [(p.name, p.default) for p in ours.parameters.values()] == [
        (p.name, p.default) for p in ref.parameters.values() if p.name != "self"
    ]


@pytest.mark.parametrize("cls", KERAS_CLASSES, ids=[c[0] for c in KERAS_CLASSES])
def test_keras_config_round_trip(cls):
    # Keras's keys and values; the arguments Keras leaves out on top; from_config of ours and
    # of Keras's rebuild a loss with the same numbers.
    import inspect

    keras = _keras_jax()
    name, options, data = cls
    kwargs = {**options, "name": "mine", "reduction": "sum"}
    ours, ref = getattr(K, name)(**kwargs), getattr(keras.losses, name)(**kwargs)
    config, ref_config = ours.get_config(), ref.get_config()
    assert {k: config[k] for k in ref_config} == ref_config
    assert set(config) - set(ref_config) <= set(inspect.signature(type(ref).__init__).parameters)
    assert getattr(K, name).from_config(config).get_config() == config
    assert getattr(K, name).from_config(ref_config).get_config() == {
        **ref_config,
        **{k: v for k, v in getattr(K, name)().get_config().items() if k not in ref_config},
    }
    y_true, y_pred = _data(data)
    value = getattr(K, name).from_config(config)(y_true, y_pred)
    _close(value, np.asarray(ref(y_true, y_pred)), "ours rebuilt vs Keras", rtol=2e-5, atol=2e-6)
    _close(
        value,
        np.asarray(type(ref).from_config(config)(y_true, y_pred)),
        "Keras rebuilt from our config",
        rtol=2e-5,
        atol=2e-6,
    )
    assert ours.name == ref.name == "mine"


@pytest.mark.parametrize("cls", KERAS_CLASSES, ids=[c[0] for c in KERAS_CLASSES])
def test_keras_default_names_and_positional_arguments(cls):
    import inspect

    keras = _keras_jax()
    name, options, data = cls
    assert getattr(K, name)().name == getattr(keras.losses, name)().name
    params = [p for p in inspect.signature(getattr(K, name)).parameters if p not in ("name", "dtype")]
    args = [
        {**options, "reduction": "sum"}.get(p, inspect.signature(getattr(K, name)).parameters[p].default)
        for p in params
    ]
    y_true, y_pred = _data(data)
    _close(
        getattr(K, name)(*args)(y_true, y_pred),
        np.asarray(getattr(keras.losses, name)(*args)(y_true, y_pred)),
        "positional arguments in Keras's order",
        rtol=2e-5,
        atol=2e-6,
    )


@pytest.mark.parametrize("reduction", ["abc", "batch", 0])
def test_keras_reduction_error_is_keras(reduction):
    keras = _keras_jax()
    for cls in (K.Hinge, keras.losses.Hinge):
        with pytest.raises(ValueError, match="Invalid value for argument `reduction`"):
            cls(reduction=reduction)


# ============================================================================ Keras: dtypes and weights

INT_CASES = [  # (function, y_true, y_pred), integer y_pred (and y_true) as in Keras's own tests
    (f, np.array([[1, 9, 2], [-5, -2, 6]]), np.array([[4, 8, 12], [8, 1, 3]]))
    for f in (
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "huber",
        "log_cosh",
        "poisson",
        "cosine_similarity",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
    )
] + [
    ("kl_divergence", np.array([[0, 1, 0], [1, 0, 0]]), np.array([[0, 1, 1], [1, 1, 0]])),
    ("binary_crossentropy", np.array([[0, 1, 0], [1, 0, 0]]), np.array([[0, 1, 1], [1, 1, 0]])),
    ("categorical_crossentropy", np.array([[0, 1, 0], [1, 0, 0]]), np.array([[1, 2, 1], [3, 1, 0]])),
    ("sparse_categorical_crossentropy", np.array([1, 0]), np.array([[1, 2, 1], [3, 1, 0]])),
]
_CLASS_OF = {c[0]: c[0] for c in KERAS_CLASSES}
_CLASS_OF.update(
    {
        "mean_squared_error": "MeanSquaredError",
        "mean_absolute_error": "MeanAbsoluteError",
        "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
        "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
        "huber": "Huber",
        "log_cosh": "LogCosh",
        "poisson": "Poisson",
        "cosine_similarity": "CosineSimilarity",
        "hinge": "Hinge",
        "squared_hinge": "SquaredHinge",
        "categorical_hinge": "CategoricalHinge",
        "kl_divergence": "KLDivergence",
        "binary_crossentropy": "BinaryCrossentropy",
        "categorical_crossentropy": "CategoricalCrossentropy",
        "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    }
)


@pytest.mark.parametrize("case", INT_CASES, ids=[c[0] for c in INT_CASES])
def test_keras_integer_y_pred(xp, case):
    # Keras's classes cast y_pred (and y_true) to their dtype, float32: the same numbers. Keras's
    # functions compute on the integers as they come (huber casts delta to int, cosine and hinge
    # raise); ours cast to float32 there too.
    from helpers import to_xp

    keras = _keras_jax()
    name, y_true, y_pred = case
    out = getattr(K, _CLASS_OF[name])(reduction=None)(to_xp(xp, y_true), to_xp(xp, y_pred))
    assert str(to_numpy(out).dtype) == "float32"
    _close(
        out,
        np.asarray(getattr(keras.losses, _CLASS_OF[name])(reduction=None)(y_true, y_pred)),
        name,
        rtol=2e-5,
        atol=2e-6,
    )
    cast = y_true.astype(np.float32) if name != "sparse_categorical_crossentropy" else y_true
    _close(
        getattr(K, name)(to_xp(xp, y_true), to_xp(xp, y_pred)),
        to_numpy(getattr(K, name)(to_xp(xp, cast), to_xp(xp, y_pred.astype(np.float32)))),
        "function",
        0,
        0,
    )


@pytest.mark.parametrize("dtype", ["float64", "float16"])
@pytest.mark.parametrize("cls", KERAS_CLASSES[::2], ids=[c[0] for c in KERAS_CLASSES[::2]])
def test_keras_dtype(cls, dtype):
    # dtype=: inputs cast to it, the loss in it; jax.grad of y_pred (float32) against Keras's,
    # and anyloss.value_and_grad on NumPy the same
    jax, keras = _jax(), _keras_jax()
    import jax.numpy as jnp

    name, options, data = cls
    y_true, y_pred = _data(data)
    ours, ref = getattr(K, name)(dtype=dtype, **options), getattr(keras.losses, name)(dtype=dtype, **options)
    assert ours.dtype == ref.dtype == dtype
    tol = {"float64": (2e-6, 1e-7), "float16": (2e-2, 2e-3)}[dtype]
    (v, g), (ref_v, ref_g) = (
        jax.value_and_grad(lambda p, f=f: f(jnp.asarray(y_true), p))(jnp.asarray(y_pred)) for f in (ours, ref)
    )
    assert v.dtype == ref_v.dtype == np.dtype(dtype) and g.dtype == np.float32
    _close(v, ref_v, "value", *tol)
    _close(g, ref_g, "gradient", *tol)
    nv, ng = anyloss.value_and_grad(ours, argnums=1)(y_true, y_pred)
    assert nv.dtype == np.dtype(dtype) and ng.dtype == np.float32
    _close(ng, ref_g, "gradient on NumPy", *tol)


SAMPLE_WEIGHTS = {"list": [0.5, 2.0, 1.0], "nested": [[0.5], [2.0], [1.0]], "ints": [1, 0, 3], "number": 2}


@pytest.mark.parametrize("weights", list(SAMPLE_WEIGHTS))
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", None])
def test_keras_python_sample_weight(weights, reduction):
    keras = _keras_jax()
    y_true, y_pred = _data("cce-logits-smoothing")
    sw = SAMPLE_WEIGHTS[weights]
    options = {"from_logits": True, "reduction": reduction}
    _check_live(
        np,
        lambda p: K.CategoricalCrossentropy(**options)(y_true, p, sample_weight=sw),
        lambda p: keras.losses.CategoricalCrossentropy(**options)(y_true, p, sample_weight=sw),
        (y_pred,),
        {},
        (0,),
        seed=9,
        rtol=2e-5,
        atol=2e-6,
    )


def test_keras_sample_weight_list_value_and_grad():
    jax, keras = _jax(), _keras_jax()
    import jax.numpy as jnp

    y_true, y_pred = _data("mse")
    sw = [1.0, 0.0, 3.0]
    v, g = anyloss.value_and_grad(K.MeanSquaredError(), argnums=1)(y_true, y_pred, sample_weight=sw)
    ref_v, ref_g = jax.value_and_grad(lambda p: keras.losses.MeanSquaredError()(y_true, p, sample_weight=sw))(
        jnp.asarray(y_pred)
    )
    _close(v, ref_v, "value", rtol=2e-5, atol=2e-6)
    _close(g, ref_g, "gradient", rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("axis", [-1, 1])
def test_keras_sparse_axis(axis):
    keras = _keras_jax()
    y_true, y_pred = _data("scce-logits-ignore")
    kwargs = {"from_logits": True, "ignore_class": -1, "axis": axis}
    _check_live(
        np,
        lambda p: K.SparseCategoricalCrossentropy(**kwargs)(y_true, p),
        lambda p: keras.losses.SparseCategoricalCrossentropy(**kwargs)(y_true, p),
        (y_pred,),
        {},
        (0,),
        seed=3,
        rtol=2e-5,
        atol=2e-6,
    )


def test_keras_sparse_axis_other_than_last_raises_as_keras():
    # Keras's own test (jax backend): classes on axis 0 give its shape error
    keras = _keras_jax()
    r = np.random.default_rng(6)
    y_true, y_pred = r.integers(0, 2, (4, 4)), np.moveaxis(r.dirichlet(np.ones(2), (4, 4)), 2, 0)
    for cls in (K.SparseCategoricalCrossentropy, keras.losses.SparseCategoricalCrossentropy):
        with pytest.raises(ValueError, match="must have the same shape up until the last dimension"):
            cls(axis=0)(y_true, y_pred)
    with pytest.raises(ValueError, match="`axis`"):
        K.SparseCategoricalCrossentropy(axis=0)(y_true[:, 0], r.uniform(size=(4, 3)))
