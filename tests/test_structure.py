"""The code stays readable in small pieces: limits a reviewer holds every change to."""

import ast
import subprocess
import sys

import pytest

from conftest import ROOT

MAX_FUNCTION, MAX_CLASS = 60, 250


@pytest.mark.parametrize("package", ["pix2pix", "demo"])
def test_no_long_functions_or_classes(package):
    too_long = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            limit = MAX_CLASS if isinstance(node, ast.ClassDef) else \
                MAX_FUNCTION if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            if limit and node.end_lineno - node.lineno + 1 > limit:
                too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                                f"({node.end_lineno - node.lineno + 1} lines > {limit})")
    assert not too_long, "split these:\n" + "\n".join(too_long)


MAX_MODULE = 400


def test_no_module_is_too_long():
    long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in sorted([*(ROOT / "pix2pix").rglob("*.py"),
                                                                   *(ROOT / "demo").rglob("*.py")])
            if (n := len(p.read_text().splitlines())) > MAX_MODULE]
    assert not long, f"split these (at most {MAX_MODULE} lines a module):\n" + "\n".join(long)


def _imports(path, package: str) -> set[str]:
    """The modules of ``package`` that ``path`` imports at its top level or in functions,
    as dotted names (relative imports resolved; TYPE_CHECKING blocks included)."""
    here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    parent = here.rsplit(".", 1)[0] if not path.name == "__init__.py" else here.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(parent.split(".")[: len(parent.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}")
                found.add(base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / package).rglob("*.py")}
    return {m for m in found if m in modules and m != here}


def test_the_library_has_no_import_cycles():
    """Each module of pix2pix can be read before the ones that import it (a cycle makes
    import order matter, and a thread importing half of one can see it half-done)."""
    graph = {".".join(p.relative_to(ROOT).with_suffix("").parts): _imports(p, "pix2pix")
             for p in (ROOT / "pix2pix").rglob("*.py")}
    graph = {k.removesuffix(".__init__"): {d.removesuffix(".__init__") for d in v} for k, v in graph.items()}
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for d in sorted(graph.get(m, ())):
            if d != m and not m.startswith(d + "."):  # a package's __init__ is not a cycle
                visit(d)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_the_library_is_grouped_by_concern():
    """Training, inference and image handling each sit in their own package; only the pieces
    they share (and the command line) stay at the top."""
    top = sorted(p.stem for p in (ROOT / "pix2pix").glob("*.py"))
    assert top == ["__init__", "__main__", "bench", "catalog", "cli", "config", "errors", "hardware", "io", "models",
                   "upsampling"]
    for package in ("training", "inference", "images"):
        assert (ROOT / "pix2pix" / package / "__init__.py").is_file()


def test_the_two_ways_in_import_from_the_top_without_the_web_stack():
    code = ("import sys, pix2pix\n"
            "assert not any(m.split('.')[0] in ('torch', 'gradio', 'fastapi') for m in sys.modules), 'import pix2pix'\n"
            "from pix2pix import Sketch2Image, Trainer\n"
            "assert Sketch2Image.__module__ == 'pix2pix.inference.infer' and Trainer.__module__ == 'pix2pix.training.trainer'\n"
            "assert not any(m.split('.')[0] in ('gradio', 'fastapi') for m in sys.modules), 'the web stack was loaded'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
