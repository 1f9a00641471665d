"""Docstrings of fastpool.grad's functions (filled in later)."""


def docstring(name):
    return f"Gradient of :func:`fastpool.{name}` with respect to ``input``."
