"""Code layout: `course/` is the base layer; the maintainer's scripts (`tools/`) and the instructor's grading
toolkit (`grading/toolkit/`) each depend on it and never on each other."""

import ast

import pytest

from course.lessons import REPO, lesson_names

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


@pytest.mark.parametrize("lesson", lesson_names())
def test_every_lesson_has_a_test_module_that_autogrades_it(lesson):
    """tests/test_lesson_NN.py names its LESSON, AUTOGRADED students and ALTERNATIVE answers, and subclasses the
    shared LessonTests (tests/harness.py), which grade the solution, the blank notebook and those students through
    nbgrader, and the alternative answers in-process."""
    path = REPO / "tests" / f"test_lesson_{lesson[:2]}.py"
    assert path.exists(), f"{lesson} has no test module {path.relative_to(REPO)}"
    tree = ast.parse(path.read_text(), str(path))
    assigned = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    assert isinstance(assigned.get("LESSON"), ast.Constant) and assigned["LESSON"].value == lesson
    assert {"AUTOGRADED", "ALTERNATIVE"} <= set(assigned), f"{path.name} must name AUTOGRADED and ALTERNATIVE"
    shared = [node.name for node in tree.body if isinstance(node, ast.ClassDef) and node.name.startswith("Test")
              and any(isinstance(base, ast.Name) and base.id == "LessonTests" for base in node.bases)]
    assert shared, f"{path.name} has no `class Test...(LessonTests)`: the shared checks do not run on {lesson}"
