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


@functools.cache
def _flag_words() -> dict[str, tuple[str, bool]]:
    """``--flag`` -> (the form's label for it, whether it is a tick box), from the config's fields."""
    import dataclasses

    from pix2pix.config import ModelConfig, TrainConfig

    words = {}
    for cls in (TrainConfig, ModelConfig):
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if meta.get("label"):
                flag = meta.get("flag") or "--" + f.name.replace("_", "-")
                words[flag] = (meta["label"].split(":")[0].strip(), isinstance(f.default, bool))
    return words


def in_the_apps_words(message: str) -> str:
    """A library message as the app says it: a command-line flag becomes the control that does
    the same (\"use --outlines\" -> \"tick *Photos only*\")."""
    import re

    def say(m: re.Match) -> str:
        label, tick = _flag_words().get(m.group(2), (None, False))
        if label is None:
            return m.group(0)
        return f"tick *{label}*" if tick else f"{m.group(1) or ''}*{label}*"

    return re.sub(r"((?i:use |with |set ))?(--[a-z][a-z0-9-]*)", say, message)


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
            raise gr.Error(in_the_apps_words(str(e)), duration=TOAST_SECONDS, print_exception=False) from None
        except Exception:
            log.exception("%s failed", fn.__name__)
            raise gr.Error(UNEXPECTED, duration=TOAST_SECONDS, print_exception=False) from None

    return wrapper
