"""The one base class of every error whose message is written for a user.

The CLI and the app catch :class:`Pix2PixError` alone and show its message as one line;
anything else is a bug and keeps its traceback (in the log, never on the page).
"""

from __future__ import annotations


class Pix2PixError(Exception):
    """An input, a file or a request that cannot be used; ``str(e)`` says why and what to do."""
