"""longctx: exact ring attention over a one-sided runtime (see longctx.jax)."""
__version__ = "0.1.0"
