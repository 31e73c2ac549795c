"""Curves shared by several losses' ``LossSpec.curve`` (what ``anyloss plot`` draws).

Each maps a 1-D float64 ``x`` to the loss's arguments for ``len(x)`` samples;
see ``anyloss.plot`` for the contract.
"""

from __future__ import annotations

from typing import Any

from .._spec import Curve
from .._typing import Namespace
from .._xp import log_sigmoid, sigmoid

MARGIN = "margin input[target] − input[other] (2 classes)"


def two_class_logits(xp: Namespace, x: Any, label: str = MARGIN) -> Curve:
    """Scores ``(0, x)`` of two classes, target class 1: ``x`` is the margin."""
    n = x.shape[0]
    scores = xp.stack([xp.zeros_like(x), x], axis=1)
    tangent = xp.stack([xp.zeros_like(x), xp.ones_like(x)], axis=1)
    return Curve((scores, xp.ones(n, dtype=xp.int64)), label, {0: tangent})


def two_class_log_probs(xp: Namespace, x: Any) -> Any:
    """``log_softmax((0, x))`` of two classes and its derivative in ``x``."""
    # log p = (log sigmoid(-x), log sigmoid(x)); d/dx = (-sigmoid(x), sigmoid(-x)).
    return (
        xp.stack([log_sigmoid(xp, -x), log_sigmoid(xp, x)], axis=1),
        xp.stack([-sigmoid(xp, x), sigmoid(xp, -x)], axis=1),
    )


def triplet(xp: Namespace, x: Any, distance_function: Any = None) -> Curve:
    """1-D points: positive at -10, negative at +10, anchor at ``x / 2``, so that
    d(anchor, positive) - d(anchor, negative) = ``x`` for ``|x| < 20``."""
    n = x.shape[0]
    anchor = xp.reshape(x / 2.0, (n, 1))
    positive = xp.full((n, 1), -10.0, dtype=x.dtype)
    negative = xp.full((n, 1), 10.0, dtype=x.dtype)
    label = (
        "d(anchor, positive) − d(anchor, negative)"
        if distance_function is None
        else "2 × anchor position (positive at −10, negative at 10)"
    )
    return Curve((anchor, positive, negative), label, {0: 0.5}, (-20.0, 20.0))


def nll_two_class(xp: Namespace, x: Any) -> Curve:
    """``nll_loss`` of the log-probabilities ``log_softmax((0, x))``, target 1."""
    log_p, tangent = two_class_log_probs(xp, x)
    return Curve(
        (log_p, xp.ones(x.shape[0], dtype=xp.int64)), "logit margin (input = log_softmax(0, x), target 1)", {0: tangent}
    )


def kl_two_class(xp: Namespace, x: Any, log_target: bool = False) -> Curve:
    """KL(p || q) of two classes, p = (1/4, 3/4) and q = softmax((0, x))."""
    log_q, tangent = two_class_log_probs(xp, x)
    p = xp.zeros_like(log_q) + xp.asarray([0.25, 0.75], dtype=x.dtype)
    return Curve(
        (log_q, xp.log(p) if log_target else p), "logit of q = softmax(0, x) (2 classes, p = (1/4, 3/4))", {0: tangent}
    )


def cosine_angle(xp: Namespace, x: Any) -> Curve:
    """Unit vectors at angle ``x`` (radians) to each other, target 1."""
    c, s = xp.cos(x), xp.sin(x)
    input1 = xp.stack([c, s], axis=1)
    input2 = xp.stack([xp.ones_like(x), xp.zeros_like(x)], axis=1)
    return Curve(
        (input1, input2, xp.ones_like(x)),
        "angle between input1 and input2, radians (target 1)",
        {0: xp.stack([-s, c], axis=1)},
    )


def multilabel_two_class(xp: Namespace, x: Any) -> Curve:
    """Scores ``(0, x)`` of two classes, class 1 the only label (target ``[1, -1]``)."""
    c = two_class_logits(xp, x)
    one = xp.ones(x.shape[0], dtype=xp.int64)
    return c._replace(args=(c.args[0], xp.stack([one, -one], axis=1)))


def linear_two_class(xp: Namespace, x: Any) -> Curve:
    """One feature ``x``, weight rows ``(0, 1)``: logits ``(0, x)``, target 1."""
    n = x.shape[0]
    return Curve(
        (xp.reshape(x, (n, 1)), xp.asarray([[0.0], [1.0]], dtype=x.dtype), xp.ones(n, dtype=xp.int64)),
        "input feature, logits = (0, input) (weight rows (0, 1), target 1)",
    )
