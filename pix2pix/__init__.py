"""pix2pix: image-to-image translation with conditional GANs (Isola et al. 2017).

The library, grouped by concern: :mod:`.training` (a folder of pairs to a model),
:mod:`.inference` (a model to fast images), :mod:`.images` (drawings, outlines, files), and
the pieces both share at the top: :mod:`.config`, :mod:`.models`, :mod:`.io`, :mod:`.catalog`,
:mod:`.hardware`. The two ways in are importable from here::

    from pix2pix import Sketch2Image, Trainer

They load on first use, so ``import pix2pix`` stays light (no torch, no web stack).
"""

__version__ = "0.1.0"

_EXPORTS = {"Sketch2Image": "pix2pix.inference.infer", "Trainer": "pix2pix.training.trainer"}

__all__ = ["Sketch2Image", "Trainer", "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pix2pix' has no attribute {name!r}")
