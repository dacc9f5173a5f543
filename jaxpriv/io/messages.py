"""One-line error text shared by the io modules (and the video writer)."""

from __future__ import annotations

import os


def shown(path: str | os.PathLike[str]) -> str:
    """The path as given, with control characters escaped so messages stay on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def reason(e: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
