"""Argument checks shared by the public constructors: one clear error at the call.

Every public entry point checks the types and ranges it documents and raises
:class:`TypeError` or :class:`ValueError` naming the argument, so that nothing reaches the
server that it would choke on. Stdlib only.
"""

from __future__ import annotations

import math

__all__ = [
    "check_bool",
    "check_callable",
    "check_int",
    "check_seconds",
    "check_str",
    "check_strings",
]


def _type_name(value: object) -> str:
    return type(value).__name__


def _wrong_type(name: str, wanted: str, value: object, optional: bool) -> TypeError:
    """The one wording of every type error here: the argument, what it takes, what it got."""
    if optional:
        wanted += " or None"
    return TypeError(f"{name} must be {wanted}, not {_type_name(value)} ({value!r:.40})")


def check_int(name: str, value: object, *, minimum: int, optional: bool = False) -> None:
    """Check that ``value`` is an int (not a bool) of at least ``minimum``, or ``None``.

    Raises:
        TypeError: ``value`` has another type.
        ValueError: ``value`` is below ``minimum``.
    """
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong_type(name, "an int", value, optional)
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
        raise _wrong_type(name, "a number of seconds", value, optional)
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
        raise _wrong_type(name, "True, False" if optional else "True or False", value, optional)


def check_str(name: str, value: object, *, optional: bool = False) -> None:
    """Check that ``value`` is a str (or ``None`` where allowed).

    Raises:
        TypeError: ``value`` has another type.
    """
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise _wrong_type(name, "a str", value, optional)


def check_callable(name: str, value: object, what: str) -> None:
    """Check that ``value`` is callable.

    Raises:
        TypeError: It is not.
    """
    if not callable(value):
        raise TypeError(f"{name} must be {what}, not {_type_name(value)} ({value!r:.40})")


def check_strings(name: str, value: object, *, optional: bool = False) -> None:
    """Check a collection of strings, such as HTTP methods; a lone str is refused.

    Raises:
        TypeError: ``value`` is a str, not iterable, or holds something other than str.
    """
    if value is None and optional:
        return
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{name} must be a collection of str, such as [{value!r}], not a single "
            f"{_type_name(value)}"
        )
    try:
        items = list(value)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"{name} must be a collection of str, not {_type_name(value)}") from None
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold only str, not {_type_name(item)} ({item!r:.40})")
