"""Import gradio without the work it does for its own developers.

Each time a component class is defined, gradio re-reads and parses that class's source
file to keep the ``.pyi`` typing stub beside it up to date (``component_meta.
create_or_modify_pyi``). The stubs already ship in the wheel and nothing at run time reads
them, yet it is about half of ``import gradio`` (2.7 s against 1.4 s without it on a 2-core
box), and the page waits for it: skipped, the page answered 2.90 → 1.79 s and the model was
ready 4.87 → 3.77 s after launch (medians of 6, ``scripts/bench_cold_start.py``). In a
read-only install the writes fail silently anyway.

``skip_stub_writing()`` must run before gradio is first imported. If gradio ever moves or
renames that function, the hook finds nothing to replace and gradio imports as before.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

STUB_MODULE = "gradio.component_meta"
STUB_FUNCTION = "create_or_modify_pyi"


def _no_stub(*_args, **_kwargs) -> None:
    """Stands in for gradio's stub writer: the class is made, no source file is read."""


class _Loader(importlib.abc.Loader):
    """Runs the module's own loader, then swaps its stub writer for ``_no_stub``."""

    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def __getattr__(self, name):  # get_source, get_filename, ...: tracebacks and inspect read through these
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        if callable(getattr(module, STUB_FUNCTION, None)):
            setattr(module, STUB_FUNCTION, _no_stub)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of ``gradio.component_meta`` once, then takes itself off the path."""

    def find_spec(self, name, path, target=None):
        if name != STUB_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def skip_stub_writing() -> bool:
    """Arrange for gradio's stub writer to be skipped; False when gradio is already imported
    (too late: its components exist) or the hook is already in place."""
    if STUB_MODULE in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _Finder())
    return True
