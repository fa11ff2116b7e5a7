"""Argument checks shared by the public constructors: one clear error at the call.

Every public entry point checks the types and ranges it documents and raises
:class:`TypeError` or :class:`ValueError` naming the argument, so that nothing reaches the
server that it would choke on. Stdlib only.
"""

from __future__ import annotations

import math

__all__ = ["check_bool", "check_int", "check_seconds"]


def _type_name(value: object) -> str:
    return type(value).__name__


def check_int(name: str, value: object, *, minimum: int, optional: bool = False) -> None:
    """Check that ``value`` is an int (not a bool) of at least ``minimum``, or ``None``.

    Raises:
        TypeError: ``value`` has another type.
        ValueError: ``value`` is below ``minimum``.
    """
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        wanted = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {wanted}, not {_type_name(value)} ({value!r:.40})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")


def check_seconds(
    name: str, value: object, *, optional: bool = False, allow_zero: bool = True
) -> None:
    """Check a duration in seconds: a non-negative real number (``math.inf`` allowed).

    Raises:
        TypeError: ``value`` is not an int or float (or ``None`` where allowed).
        ValueError: ``value`` is negative, zero where that is not allowed, or NaN.
    """
    if value is None and optional:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        wanted = "a number of seconds or None" if optional else "a number of seconds"
        raise TypeError(f"{name} must be {wanted}, not {_type_name(value)} ({value!r:.40})")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "at least 0" if allow_zero else "greater than 0"
        raise ValueError(f"{name} must be {bound} seconds, not {value!r}")


def check_bool(name: str, value: object, *, optional: bool = False) -> None:
    """Check that ``value`` is a bool (or ``None`` where allowed).

    Raises:
        TypeError: ``value`` has another type.
    """
    if value is None and optional:
        return
    if not isinstance(value, bool):
        wanted = "True, False or None" if optional else "True or False"
        raise TypeError(f"{name} must be {wanted}, not {_type_name(value)} ({value!r:.40})")
