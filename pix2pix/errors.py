"""The one base class of every error whose message is written for a user.

The CLI and the app catch :class:`Pix2PixError` alone and show its message as one line;
anything else is a bug and keeps its traceback (in the log, never on the page).
"""

from __future__ import annotations


class Pix2PixError(Exception):
    """An input, a file or a request that cannot be used; ``str(e)`` says why and what to do."""


class Superseded(Pix2PixError):
    """A request stopped because a newer one from the same user made it pointless (a drawing
    that changed again while its result was being made)."""

    def __init__(self, message: str = "A newer drawing replaced this one."):
        super().__init__(message)
