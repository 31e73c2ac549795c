"""The switches a user may want, in one place: ``anyloss.configure``.

* ``native``: on PyTorch tensors, a built-in loss that ``torch.nn.functional``
  has under the same name hands the call to it once anyloss's own checks and
  warnings have passed (same numbers by definition, PyTorch's kernels and
  autograd). ``False`` runs anyloss's own Array API code there too, as on
  every other backend. Default: on (``ANYLOSS_NATIVE=0`` turns it off).
* ``threads``: threads that compute NumPy's row blocks (``ANYLOSS_THREADS``;
  default the usable cores, at most 2; 1 turns them off).
* ``compiled``: whether the optional numba kernels (the ``fast`` extra) are
  used where they apply (``ANYLOSS_NUMBA=0`` turns them off).

The values are plain module attributes, read on every call: the frameworks'
tracers (``torch.compile``, ``jax.jit``) read them like constants and retrace
when they change.
"""

from __future__ import annotations

import os
from typing import Any


def _default_threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return int(os.environ.get("ANYLOSS_THREADS", min(2, cores)))


native: bool = os.environ.get("ANYLOSS_NATIVE", os.environ.get("ANYLOSS_TORCH_KERNELS", "1")) != "0"
threads: int = _default_threads()
compiled: bool = os.environ.get("ANYLOSS_NUMBA", "1") != "0"

_NAMES = ("native", "threads", "compiled")


def configure(*, native: bool | None = None, threads: int | None = None, compiled: bool | None = None) -> _Configured:
    """Set anyloss's switches, for the rest of the program or, used as a
    context manager, for a block::

        anyloss.configure(native=False)          # anyloss's own code on PyTorch tensors from now on
        with anyloss.configure(native=False):    # ... only inside the block
            loss = F.cross_entropy(logits, target)

    Options left as ``None`` keep their value. ``anyloss.configure()`` with no
    argument changes nothing; ``anyloss.configure().current`` reads them.
    """
    if native is not None and not isinstance(native, bool):
        raise TypeError(f"`native` must be a bool; got {type(native).__name__} {native!r}")
    if compiled is not None and not isinstance(compiled, bool):
        raise TypeError(f"`compiled` must be a bool; got {type(compiled).__name__} {compiled!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"`threads` must be an int >= 1; got {threads!r}")
    saved = _Configured({k: globals()[k] for k in _NAMES})
    new = {"native": native, "threads": threads, "compiled": compiled}
    globals().update({k: v for k, v in new.items() if v is not None})
    return saved


class _Configured:
    """What ``configure`` returns: a context manager that restores the
    switches as they were before the call."""

    def __init__(self, saved: dict[str, Any]) -> None:
        self._saved = saved

    @property
    def current(self) -> dict[str, Any]:
        """The switches in force."""
        return {k: globals()[k] for k in _NAMES}

    def __enter__(self) -> _Configured:
        return self

    def __exit__(self, *exc: Any) -> None:
        globals().update(self._saved)

    def __repr__(self) -> str:
        return "anyloss.configure(" + ", ".join(f"{k}={v!r}" for k, v in self.current.items()) + ")"
