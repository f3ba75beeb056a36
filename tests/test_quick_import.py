"""app.py imports gradio without re-reading its sources for typing stubs (demo/quick_import.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import types

from conftest import ROOT, cli_env
from demo import quick_import

# In a fresh interpreter: import gradio (hooked or not), count the gradio sources opened as
# text (stub writing; imports read bytecode or open sources as bytes) and use a component.
PROBE = """
import json, sys
texts = []
sys.addaudithook(lambda event, args: texts.append(args[0]) if event == "open" and isinstance(args[0], str)
                 and "gradio" in args[0] and args[0].endswith(".py") and args[1] == "r" else None)
if sys.argv[1] == "hooked":
    from demo.quick_import import skip_stub_writing
    assert skip_stub_writing()
import gradio as gr
import gradio.component_meta
with gr.Blocks() as demo:
    pad = gr.Sketchpad()
    out = gr.Image()
    pad.change(lambda x: x, pad, out)
meta = gradio.component_meta
print(json.dumps({"sources_read": len(texts), "writer": meta.create_or_modify_pyi.__name__,
                  "events": len(demo.fns), "source": "class ComponentMeta" in meta.__loader__.get_source(meta.__name__)}))
"""


def probe(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, env=cli_env(PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_gradio_imports_without_reading_its_sources_and_still_works():
    plain, hooked = probe("plain"), probe("hooked")
    assert plain["sources_read"] > 20 and plain["writer"] == "create_or_modify_pyi"  # what the hook saves
    assert hooked == {"sources_read": 0, "writer": "_no_stub", "events": plain["events"], "source": True}
    assert hooked["events"] == 1


def test_too_late_changes_nothing():
    import gradio  # noqa: F401  (imported already by the other app tests; here for certain)

    before = list(sys.meta_path)
    assert quick_import.skip_stub_writing() is False  # gradio's components are made: nothing to gain
    assert sys.meta_path == before


def test_a_gradio_without_the_stub_writer_imports_as_before():
    """If gradio renames the function, the hook leaves the module alone."""

    class Inner:
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            module.other = len

    module = types.ModuleType(quick_import.STUB_MODULE)
    quick_import._Loader(Inner()).exec_module(module)
    assert module.other is len and not hasattr(module, quick_import.STUB_FUNCTION)
