"""JAX bridge: one ``jax.custom_jvp`` per loss and set of static options.

Options (reduction, margins, ignore_index, ...) are closed over and stay
static; arrays are the function's arguments, so ``jax.jit``, ``jax.vmap`` and
sharded inputs work as for any ``jnp`` code.

The tangent rule is the loss's analytic gradient: the output tangent is
``J t``, the transpose of the loss's VJP (``backward``, linear in its
cotangent) applied to the input tangents. So forward mode (``jax.jvp``,
``jax.jacfwd``) works, and JAX derives reverse mode (``jax.grad``,
``jax.vjp``) by transposing that rule back into the VJP itself: the same
analytic backward, at the same cost. Second order (``jax.hessian``)
differentiates the backward's operations.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from jax.custom_derivatives import SymbolicZero

from .._engine import backward, forward, wanted_mask
from .._typing import Namespace


def _make(spec: Any, xp: Namespace, reduction: Any, options: Any, computed: Any) -> Any:
    @jax.custom_jvp
    def loss(*arrays: Any) -> Any:
        return forward(spec, xp, arrays, reduction, options, computed)[0]

    def loss_jvp(primals: Any, tangents: Any) -> Any:
        value, rec = forward(spec, xp, primals, reduction, options, computed)
        # Only the arrays with a tangent: a cotangent that is NaN somewhere (the
        # target's of kl_div at 0) must not reach an output through a zero tangent.
        diff = [
            k for k, w in enumerate(wanted_mask(spec, xp, primals)) if w and not isinstance(tangents[k], SymbolicZero)
        ]
        if not diff:
            return value, xp.zeros_like(value)

        def vjp(g: Any) -> Any:
            cts = backward(rec, g)
            return tuple(xp.zeros_like(primals[k]) if cts[k] is None else cts[k] for k in diff)

        transpose = jax.linear_transpose(vjp, jax.ShapeDtypeStruct(value.shape, value.dtype))
        (jt,) = transpose(tuple(tangents[k] for k in diff))
        return value, jt

    loss.defjvp(loss_jvp, symbolic_zeros=True)

    # Compiled as a whole: called eagerly, JAX would otherwise run (and compile)
    # the traced forward op by op. Under an outer `jit` this inlines.
    return jax.jit(loss)


@functools.lru_cache(maxsize=256)
def _cached(spec: Any, xp: Namespace, reduction: Any, options_items: Any, computed_items: Any) -> Any:
    return _make(spec, xp, reduction, dict(options_items), dict(computed_items))


def apply(spec: Any, xp: Namespace, arrays: Any, reduction: Any, options: Any, computed: Any) -> Any:
    try:
        fn = _cached(spec, xp, reduction, tuple(sorted(options.items())), tuple(sorted(computed.items())))
    except TypeError:  # an unhashable option: build the function for this call only
        fn = _make(spec, xp, reduction, options, computed)
    return fn(*arrays)
