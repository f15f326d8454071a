"""The integrity scan never flags honest work (every lesson's own answers, the fair-grading tests' correct answers
and plausible mistakes) and flags each kind of tampering; the check helpers keep the originals they rely on; links
are refused; encoded hidden tests are found; grading refuses to run without its sandbox unless told to."""

import base64
import builtins
import importlib
import zlib

import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from course.lessons import NOTEBOOKS, REPO, lesson_names, notebook_path, read
from grading.toolkit import integrity, sandbox
from grading.toolkit.collect import unpack

LESSONS = lesson_names()


@pytest.mark.parametrize("lesson", LESSONS)
def test_a_lessons_own_solution_and_student_version_are_not_flagged(lesson):
    source = read(notebook_path(lesson))
    release = read(notebook_path(lesson, NOTEBOOKS)) if notebook_path(lesson, NOTEBOOKS).is_file() else None
    assert integrity.scan_notebook(source, source, release) == []
    if release is not None:
        assert integrity.scan_notebook(release, source, release) == []


def honest_answers():
    """Every correct answer written differently, and every plausible mistake, in tests/test_lesson_NN.py."""
    found = []
    for path in sorted((REPO / "tests").glob("test_lesson_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        for name, value in vars(module).items():
            if not any(word in name.upper() for word in ("ALT", "CORRECT", "MISTAKE")):
                continue
            values = value.items() if isinstance(value, dict) else [(name, value)]
            found += [(f"{path.stem}:{name}:{key}", code) for key, code in values
                      if isinstance(code, str) and "def " in code]
    return found


def test_the_fair_grading_tests_honest_answers_are_not_flagged():
    answers = honest_answers()
    assert len(answers) > 20
    flagged = {label: integrity.scan_source(code) for label, code in answers if integrity.scan_source(code)}
    assert flagged == {}


TAMPERING = {
    "get_ipython().events.register('post_run_cell', lambda result: None)": "get_ipython",
    "ip = get_ipython()\nip.set_custom_exc((Exception,), None)": "set_custom_exc",
    "import sys\nsys.excepthook = print": "sys.excepthook",
    "import sys\ndef f():\n    return sys._getframe(1).f_locals": "frame access",
    "import linecache\n": "imports linecache",
    "import inspect\n": "imports inspect",
    "def f():\n    return In[-1]": "input history",
    "torch.allclose = lambda *a, **k: True": "assigns into torch",
    "T = torch.Tensor\nT.__eq__ = lambda *a: True": "assigns into T",
    "nn.GRUCell.forward = lambda self, x, h=None: h": "assigns into nn",
    "import builtins\nbuiltins.isinstance = lambda *a: True": "imports builtins",
    "isinstance = lambda *a: True": "rebinds isinstance",
    "def int(x):\n    return 0": "rebinds int",
    "def check_tensor(*args):\n    pass": "rebinds check_tensor",
    "CheckFailed = Exception": "rebinds CheckFailed",
    "import os\nFAST = os.environ.get('NBGRADER_EXECUTION')": "os.environ",
    "import os\nFAST = 'NBGRADER_EXECUTION' in os.environ": "NBGRADER_EXECUTION",
    "setattr(torch, 'allclose', max)": "setattr on torch",
    "exec('x = 1')": "exec()",
    "globals()['check'] = print": "globals()",
    "class T(torch.Tensor):\n    @classmethod\n    def __torch_function__(cls, *a, **k):\n        return True":
        "__torch_function__",
    "import numpy as torch": "rebinds torch",
}


@pytest.mark.parametrize("code, phrase", list(TAMPERING.items()), ids=list(TAMPERING.values()))
def test_each_kind_of_tampering_is_flagged(code, phrase):
    findings = integrity.scan_source(code)
    assert any(phrase in finding for finding in findings), findings


def test_an_exercise_can_forbid_an_api_and_added_cells_are_scanned():
    answer = new_code_cell("def step(x, h, cell):\n    ### BEGIN SOLUTION\n    return h\n    ### END SOLUTION")
    answer.metadata = {"nbgrader": {"solution": True, "grade": False, "grade_id": "ex_step", "locked": False},
                       "gru_course": {"forbidden": ["nn.GRUCell"]}}
    demo = new_code_cell("import os\nsteps = 5 if os.environ.get('NBGRADER_EXECUTION') else 50")
    source = new_notebook(cells=[demo, answer])
    theirs = new_notebook(cells=[new_code_cell(demo.source), new_code_cell("import os\nprint(os.environ)")])
    submitted_answer = new_code_cell("def step(x, h, cell):\n    return torch.nn.GRUCell(3, 3)(x, h)")
    submitted_answer.metadata = {"nbgrader": dict(answer.metadata["nbgrader"])}  # its own metadata stripped
    theirs.cells.append(submitted_answer)
    findings = dict(integrity.scan_notebook(theirs, source))
    assert set(findings) == {"cell 1", "ex_step"}  # the instructor's demo cell is not the learner's code
    assert findings["ex_step"] == ["uses nn.GRUCell, which this exercise forbids"]
    assert findings["cell 1"] == ["os.environ"]


def test_check_helpers_keep_the_originals_they_rely_on(monkeypatch):
    helpers = {}
    exec(compile((REPO / "tools" / "course_checks.py").read_text(), "course-checks", "exec"), helpers)
    # An answer cell run after it shadows built-ins in the notebook's namespace and patches torch.
    helpers.update(isinstance=lambda *a: True, int=lambda *a: 0, tuple=list, all=lambda *a: True)
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "__eq__", lambda *a: True)

    class Lying(builtins.int):
        def __eq__(self, other):
            return True

        def __index__(self):
            return 5

    wrong = [lambda: helpers["check_tensor"](torch.zeros(2), torch.ones(2), "t"),
             lambda: helpers["check_int"](Lying(3), 5, "n"),
             lambda: helpers["check_shape"]([2, 3], (2, 3), "s"),
             lambda: helpers["check_type"]("x", torch.Tensor, "x")]
    for attempt in wrong:
        with pytest.raises(helpers["CheckFailed"]):
            attempt()
    helpers["check_tensor"](torch.ones(2, 3), torch.ones(2, 3), "t")  # honest values still pass
    helpers["check_shape"](torch.Size([2, 3]), (2, 3), "s")
    helpers["check_int"](Lying(5), 5, "n")


def test_links_are_refused_and_never_followed(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "00-x.ipynb").write_text("{}")
    assert integrity.submission_problem(folder) is None
    (folder / "data").symlink_to("/", target_is_directory=True)
    assert "links (data)" in integrity.submission_problem(folder)
    download = tmp_path / "download"
    download.mkdir()
    (download / "ada_00-orientation.ipynb").symlink_to(REPO / "solutions" / "00-orientation" / "00-orientation.ipynb")
    found, skipped = unpack(download, tmp_path)
    assert found == [] and [s.reason for s in skipped] == ["a link: not followed"]


def test_hidden_test_lines_are_found_even_encoded():
    secret = "rng = random.Random(20261124)"
    for encoded in (base64.b64encode(secret.encode()).decode(), secret.encode().hex(), secret[::-1],
                    base64.b64encode(zlib.compress(secret.encode())).decode()):
        assert integrity.encoded_leaks(f"ValueError: {encoded}", [secret]) == [secret], encoded
    assert integrity.encoded_leaks("CheckFailed: expected 114, got 150", [secret]) == []


def test_grading_refuses_without_the_sandbox_and_warns_when_it_is_off(monkeypatch, tmp_path):
    from grading.toolkit.autograde import autograde
    from grading.toolkit.settings import Course

    sandbox.problem.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap here
    try:
        lines = []
        assert autograde(Course(tmp_path, "sqlite://"), out=lines.append) == 2
        assert "apt-get install bubblewrap" in lines[0] and "COURSE_SANDBOX=off" in lines[0]
        monkeypatch.setenv("COURSE_SANDBOX", "off")
        sandbox.check()  # no error: explicitly off
        assert "WITHOUT the sandbox" in sandbox.describe()
    finally:
        sandbox.problem.cache_clear()
