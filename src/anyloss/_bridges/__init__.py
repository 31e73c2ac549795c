"""Bridges that attach a loss's analytic gradient to a framework's autodiff.

Each module is imported only when an array of its framework arrives, so
``import anyloss`` never imports torch or jax."""
