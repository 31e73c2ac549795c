"""JAX bridge: one ``jax.custom_vjp`` per loss and set of static options.

Options (reduction, margins, ignore_index, ...) are closed over and stay
static; arrays are the function's arguments, so ``jax.jit``, ``jax.grad`` and
``jax.vmap`` work, and ``jax.grad`` uses the loss's analytic gradient.
Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) is not supported
by ``custom_vjp``: a call under it raises a ``TypeError`` that says so and
names the reverse-mode transformations to use. (Forward-over-reverse works:
``jax.hessian`` differentiates the analytic gradient. Where the jvp reaches
the loss only through an outer ``jax.jit``, or later, from ``jax.linearize``'s
function, JAX raises its own "can't apply forward-mode autodiff (jvp) to a
custom_vjp function".)
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from .._call import Record, backward, forward


def _make(spec, xp, reduction, options):
    @jax.custom_vjp
    def loss(*arrays):
        return forward(spec, xp, arrays, reduction, options)[0]

    def loss_fwd(*arrays):
        value, rec = forward(spec, xp, arrays, reduction, options)
        return value, (arrays, value, rec.loss, rec.divisor, rec.res)

    def loss_bwd(saved, g):
        arrays, value, unreduced, divisor, res = saved
        rec = Record(spec, xp, arrays, options, reduction, value, unreduced, divisor, res)
        cts = backward(rec, g)
        out = []
        for a, ct in zip(arrays, cts):
            if a is None:
                out.append(None)
            elif not xp.isdtype(a.dtype, "real floating"):
                out.append(np.zeros(a.shape, dtype=jax.dtypes.float0))  # integer arguments
            else:
                out.append(xp.zeros_like(a) if ct is None else ct)
        return tuple(out)

    loss.defvjp(loss_fwd, loss_bwd)
    # Compiled as a whole: called eagerly, JAX would otherwise run (and compile)
    # the traced forward op by op. Under an outer `jit` this inlines.
    return jax.jit(loss)


@functools.lru_cache(maxsize=256)
def _cached(spec, xp, reduction, options_items):
    return _make(spec, xp, reduction, dict(options_items))


def apply(spec, xp, arrays, reduction, options):
    try:
        fn = _cached(spec, xp, reduction, tuple(sorted(options.items())))
    except TypeError:  # an unhashable option: build the function for this call only
        fn = _make(spec, xp, reduction, options)
    try:
        return fn(*arrays)
    except TypeError as e:
        if "forward-mode" not in str(e) or "custom_vjp" not in str(e):
            raise
        raise TypeError(
            f"{spec.name}: anyloss gradients on JAX are reverse-mode (jax.custom_vjp): use jax.grad, "
            "jax.vjp or jax.jacrev (jax.hessian works too), not jax.jvp, jax.jacfwd or jax.linearize"
        ) from e
