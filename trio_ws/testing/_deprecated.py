"""Deprecated names, kept for one release (the release after 0.1.0 removes them)."""

from __future__ import annotations

import warnings

__all__ = ["warn_deprecated"]


def warn_deprecated(old: str, instead: str) -> None:
    """Warn, at the caller's caller, that ``trio_ws.testing.<old>`` is deprecated."""
    warnings.warn(
        f"trio_ws.testing.{old} is deprecated since trio_ws 0.1.0 and will be removed in the "
        f"next release; use trio_ws.testing.{instead}",
        DeprecationWarning,
        stacklevel=3,
    )
