"""Code layout: `course/` is the base layer; the maintainer's scripts (`tools/`) and the instructor's grading
toolkit (`grading/toolkit/`) each depend on it and never on each other."""

import ast

import pytest

from course.lessons import REPO

LAYERS = {"course": set(), "tools": {"course"}, "grading": {"course"}}


def imported_top_packages(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layer_imports_only_the_base(layer):
    allowed = LAYERS[layer] | {layer}
    wrong = sorted({(str(path.relative_to(REPO)), package)
                    for path in (REPO / layer).rglob("*.py")
                    for package in imported_top_packages(path)
                    if package in LAYERS and package not in allowed})
    assert not wrong, f"{layer}/ may import only {sorted(allowed)}; found {wrong}"
