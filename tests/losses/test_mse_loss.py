"""F.mse_loss / anyloss.MSELoss against PyTorch."""

import numpy as np

import anyloss
import anyloss.functional as F
from helpers import (
    Case,
    Error,
    cases,
    errors,
    legacy_class,
    pair,
    rand,
    re_arg,
    run_case,
    run_error,
    uniform,
    with_options,
)

NAME = "mse_loss"


CASES = [
    Case(f"{shape}-{red}", with_options(pair(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case("broadcast-target", pair((3, 4), (4,))),
    Case("broadcast-target-none", with_options(pair((3, 1)), reduction="none")),
    Case("broadcast-input", with_options(pair((1, 4), (3, 4)), reduction="sum")),
    Case("int-target", lambda rng, dt: ((rand(rng, (4,), dt), np.arange(4)), {})),
    Case("legacy-size_average", with_options(pair((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(pair((3, 4)), reduce=False)),
    Case("legacy-both", with_options(pair((3, 4)), size_average=True, reduce=True)),
]
CASES += [
    Case(f"weight-{red}", with_options(pair((3, 4)), reduction=red, weight=uniform((3, 4))))
    for red in ["none", "mean", "sum"]
]
CASES += [Case("mixed-float", lambda rng, dt: ((rand(rng, (3,), np.float32), rand(rng, (3,), np.float64)), {}))]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(pair((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("shape", pair((3,), (4,)), ValueError, re_arg("target")),
    Error("int-input", lambda rng, dt: ((np.arange(3), np.arange(3)), {}), TypeError, re_arg("input")),
    Error(
        "weight-shape",
        with_options(pair((3,)), weight=lambda rng, dt: rand(rng, (1,), dt)),
        ValueError,
        re_arg("weight"),
    ),
    Error(
        "not-array",
        lambda rng, dt: (([1.0, 2.0], rand(rng, (2,), dt)), {}),
        TypeError,
        re_arg("input"),
        torch_raises=True,
    ),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # PyTorch docs' classic example: MSE of ones(2, 2) against [[0, 1], [2, 3]].
    x, y = np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]])
    assert float(F.mse_loss(x, y)) == 1.5
    assert float(anyloss.MSELoss()(x, y)) == 1.5


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x, y = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64)
    loss = legacy_class(anyloss.MSELoss, "sum", size_average=False)
    np.testing.assert_array_equal(loss(x, y), F.mse_loss(x, y, reduction="sum"))


@cases(
    Case("weight-broadcast-input", with_options(pair((1, 4), (3, 4)), weight=uniform((1, 4)))),
    Case("int-input-float-target", lambda rng, dt: ((np.arange(4), rand(rng, (4,), dt)), {})),
)
def test_matches_torch_edge(case, xp, dtype):
    run_case(NAME, case, xp, dtype)
