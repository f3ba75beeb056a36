"""Errors the user sees: library exceptions become one plain sentence, never a traceback."""

from __future__ import annotations

import functools
import logging

import gradio as gr

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong on the server; the details are in its log. Please try again."
TOAST_SECONDS = 6  # long enough to read one sentence; a stale error should not sit over a later result


@functools.cache
def _user_facing() -> type[Exception]:
    """The library's base of user-facing errors (imported on first use: the library loads torch)."""
    from pix2pix.errors import Pix2PixError

    return Pix2PixError


def user_errors(fn):
    """Wrap a handler: known errors -> ``gr.Error`` with their message; anything else is
    logged with its traceback and shown as a generic sentence."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as e:
            e.duration = TOAST_SECONDS
            raise
        except _user_facing() as e:
            raise gr.Error(str(e), duration=TOAST_SECONDS, print_exception=False) from None
        except Exception:
            log.exception("%s failed", fn.__name__)
            raise gr.Error(UNEXPECTED, duration=TOAST_SECONDS, print_exception=False) from None

    return wrapper
