"""The code stays readable in small pieces: limits a reviewer holds every change to."""

import ast

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
