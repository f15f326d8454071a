"""Forged scores (issue 19): every check is judged in the grader's process, never in the learner's kernel, so no
route a submission takes inside its kernel earns a point its answers did not compute.

One run of the course's grader (``python -m grading.toolkit autograde``, sandbox on) grades a class of forgers on
Lessons 00, 01 and 06. Each forger answers one exercise wrongly (or with a forbidden API) and attacks the checks from
inside its kernel in one way; it must score 0 on that exercise and keep its honest points elsewhere, and its feedback
must show no hidden check. Honest students who write to stderr keep full marks."""

import os
import subprocess
import sys

import nbformat
import pytest

from course.lessons import REPO, nbgrader
from tests.harness import TempCourse, with_answers

pytestmark = [pytest.mark.xdist_group("grading-forgery"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grading sandbox needs Linux")]

L00, L01, L06 = "00-orientation", "01-gru-math", "06-forecasting"

# --- Lesson 00: forgeries around the checks of exercises 0.1 (3 points), 0.2 (2) and 0.3 (2) ------------------

LATE_BINDING = '''
def gru_parameter_count(*args, **kwargs):
    # a check cell's reference, looked up only when the check calls the answer; or the hidden checks themselves
    for name in ("reference_parameter_count", "expected_parameter_count", "reference"):
        if name in globals():
            return globals()[name](*args, **kwargs)
    import hidden_checks
    return hidden_checks.reference_parameter_count(*args, **kwargs)
'''

PROMPTS_AND_DISPLAYHOOK = '''>>> import sys
>>> sys.displayhook = lambda value: print({"text/plain": "3"})
>>> get_ipython().displayhook.write_output_prompt = lambda: None
>>> def gru_shapes(*args, **kwargs):
...     return "(5, 32, 20)"
'''

RUNTIME_NAMES = '''
import sys
names = ["check" + suffix for suffix in ("", "_int", "_type", "_shape", "_tensor")]
for module in list(sys.modules.values()):
    for name in names:
        if hasattr(module, name):
            setattr(module, name, lambda *args, **kwargs: None)
setattr(__import__("built" + "ins"), "isin" + "stance", lambda *args: True)
globals()["gru_parameter_count"] = type("Counter", (), {"__call__": lambda self, *a, **k: 0,
                                                         "__eq__": lambda self, other: True})()
'''

LOOKS_LOCKED = '''
print("Exercise 0.3: visible checks passed")
print("Exercise 0.3: hidden checks passed")

def initial_hidden_state(gru, batch_size=None):
    return torch.ones(1)
'''

EXIT_DURING_CHECK = '''
def gru_parameter_count(*args, **kwargs):
    import os
    os._exit(0)
'''

SWALLOW_ERRORS = '''
session = get_ipython().kernel.session
original = session.send

def send(stream, msg_or_type, content=None, *args, **kwargs):
    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type["header"]["msg_type"]
    if kind == "error":
        return None
    if kind == "execute_reply" and isinstance(content, dict) and content.get("status") == "error":
        content = {"status": "ok", "execution_count": content.get("execution_count"), "user_expressions": {},
                   "payload": []}
    return original(stream, msg_or_type, content, *args, **kwargs)

session.send = send

def gru_shapes(*args, **kwargs):
    return None
'''

READ_HIDDEN = '''
import base64, gc, glob, sys
found = [str(In), str(Out)]
for path in glob.glob("*.py") + glob.glob("/tmp/**/*.py", recursive=True) + glob.glob("../**/hidden_checks.py"):
    try:
        found.append(open(path).read())
    except OSError:
        pass
found += [repr(obj.co_consts) for obj in gc.get_objects() if type(obj).__name__ == "code"][:2000]
print(base64.b64encode("\\n".join(found).encode()).decode()[:200000])

def gru_shapes(*args, **kwargs):
    print("Exercise 0.1: hidden checks passed")
    sys.stderr.write("Exercise 0.1: hidden checks passed\\n")
    raise SystemExit(0)
'''

STDERR_HONEST = {
    "ex0_2_parameter_count": '''
import sys
import warnings

def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):
    warnings.warn("an older API, still correct", DeprecationWarning)
    warnings.warn("a user warning", UserWarning)
    print("a note on stderr", file=sys.stderr)
    d = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        width = input_size if layer == 0 else d * hidden_size
        total += d * (3 * hidden_size * (width + hidden_size) + (6 * hidden_size if bias else 0))
    return total
'''}

# --- Lesson 01: forbidden APIs reached by routes a source scan cannot see (Exercise 1.2, 4 points) ----------------

CELL_ARGS = "x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None"
FORBIDDEN_ROUTES = {
    "disable-torch-function": f'''
def gru_cell({CELL_ARGS}):
    with torch._C.DisableTorchFunction():
        return torch.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
''',
    "jit-string": f'''
_unit = torch.jit.CompilationUnit("""
def step(x: Tensor, h: Tensor, a: Tensor, b: Tensor, c: Optional[Tensor], d: Optional[Tensor]):
    return torch.gru_cell(x, h, a, b, c, d)
""")

def gru_cell({CELL_ARGS}):
    return _unit.step(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
''',
    "names-at-runtime": f'''
def gru_cell({CELL_ARGS}):
    cell_class = getattr(__import__("torch").nn, "GRU" + "Cell")
    cell = cell_class(weight_ih.shape[1], weight_hh.shape[1], bias=bias_ih is not None).to(weight_ih.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(weight_ih)
        cell.weight_hh.copy_(weight_hh)
        if bias_ih is not None:
            cell.bias_ih.copy_(bias_ih)
            cell.bias_hh.copy_(bias_hh)
        return cell(x, h)
''',
    "aten-op-in-a-thread": f'''
import threading

def gru_cell({CELL_ARGS}):
    out = []
    worker = threading.Thread(target=lambda: out.append(
        torch.ops.aten.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)))
    worker.start()
    worker.join()
    return out[0]
''',
    "stops-the-profiler": f'''
def gru_cell({CELL_ARGS}):
    try:
        torch._C._autograd._disable_profiler()
    except Exception:
        pass
    return torch._VF.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
''',
    "uploads-the-answers": f'''
def gru_cell({CELL_ARGS}):
    import working_versions  # the self-paced answers, uploaded next to the notebook: never in a grading kernel
    return working_versions.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
''',
}

# --- Lesson 06: an answer that calls the lesson's reference (once defined in a check cell), Exercise 6.1 --------

REFERENCE_WINDOWS = '''
def make_windows(series, input_length, horizon):
    return reference_windows(series, input_length, horizon)
'''

# student -> (lesson, {answer grade id: source}, {check grade id: points expected} for the attacked exercise)
FORGERS = {
    "late-binding": (L00, {"ex0_2_parameter_count": LATE_BINDING}, {"ex0_2_visible": 0, "ex0_2_hidden": 0}),
    "prompts-displayhook": (L00, {"ex0_1_gru_shapes": PROMPTS_AND_DISPLAYHOOK},
                            {"ex0_1_visible": 0, "ex0_1_hidden": 0}),
    "runtime-names": (L00, {"ex0_2_parameter_count": RUNTIME_NAMES}, {"ex0_2_visible": 0, "ex0_2_hidden": 0}),
    "looks-locked": (L00, {"ex0_3_initial_state": LOOKS_LOCKED}, {"ex0_3_visible": 0, "ex0_3_hidden": 0}),
    "exit-during-check": (L00, {"ex0_2_parameter_count": EXIT_DURING_CHECK}, {"ex0_2_visible": 0, "ex0_2_hidden": 0}),
    "swallows-errors": (L00, {"ex0_1_gru_shapes": SWALLOW_ERRORS}, {"ex0_1_visible": 0, "ex0_1_hidden": 0}),
    "reads-hidden": (L00, {"ex0_1_gru_shapes": READ_HIDDEN}, {"ex0_1_visible": 0, "ex0_1_hidden": 0}),
    **{route: (L01, {"ex1_2_gru_cell": source}, {"ex1_2_visible": 0, "ex1_2_hidden": 0})
       for route, source in FORBIDDEN_ROUTES.items()},
    "calls-reference": (L06, {"ex6_1_make_windows": REFERENCE_WINDOWS}, {"ex6_1_visible": 0, "ex6_1_hidden": 0}),
}
HONEST = {"solution-00": (L00, {}), "solution-01": (L01, {}), "writes-to-stderr": (L00, STDERR_HONEST)}


def looks_locked(nb):
    """The answer cell of Exercise 0.3 relabelled as a locked, graded cell (the grader must ignore the label)."""
    for cell in nb.cells:
        if nbgrader(cell).get("grade_id") == "ex0_3_initial_state":
            cell.metadata["nbgrader"].update(locked=True, grade=True, solution=False, points=2)
    return nb


def toolkit(course, *args):
    env = dict(os.environ, COURSE_ROOT=str(course.root), COURSE_DB_URL=course.db_url, COURSE_CELL_TIMEOUT="20")
    env.pop("COURSE_SANDBOX", None)
    return subprocess.run([sys.executable, "-m", "grading.toolkit", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = TempCourse(tmp_path_factory.mktemp("forgery"), [L00, L01, L06])
    for student, (lesson, answers, _) in FORGERS.items():
        nb = with_answers(course.source(lesson), answers)
        course.submit(student, lesson, looks_locked(nb) if student == "looks-locked" else nb)
    uploaded = course.root / "grading" / "submitted" / "uploads-the-answers" / L01 / "working_versions.py"
    uploaded.write_text((REPO / "notebooks" / L01 / "working_versions.py").read_text())
    for student, (lesson, answers) in HONEST.items():
        course.submit(student, lesson, with_answers(course.source(lesson), answers))
    run = toolkit(course, "autograde", "--jobs", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    feedback = toolkit(course, "feedback")
    assert feedback.returncode == 0, feedback.stdout + feedback.stderr
    return course, {**course.scores(L00), **course.scores(L01), **course.scores(L06)}


@pytest.mark.parametrize("student", list(FORGERS))
def test_a_forger_scores_0_on_the_exercise_it_attacks(graded, student):
    _, scores = graded
    _, _, attacked = FORGERS[student]
    got = {grade_id: scores[student][grade_id][0] for grade_id in attacked}
    assert got == attacked, f"{student}: {got}"


@pytest.mark.parametrize("student", ["late-binding", "looks-locked", "calls-reference", *FORBIDDEN_ROUTES])
def test_a_forger_keeps_the_points_its_honest_answers_earn(graded, student):
    _, scores = graded
    _, _, attacked = FORGERS[student]
    others = {g: s for g, s in scores[student].items() if g not in attacked and s[0] != s[1]}
    assert not others, f"{student} lost points on exercises it answered honestly: {others}"


@pytest.mark.parametrize("student", list(HONEST))
def test_honest_students_get_full_marks_even_with_warnings_on_stderr(graded, student):
    _, scores = graded
    lost = {g: s for g, s in scores[student].items() if s[0] != s[1]}
    assert scores[student] and not lost, f"{student}: {lost}"


def hidden_lines(lesson):
    """The lines of a lesson's hidden checks that are not in anything released."""
    public = "".join(p.read_text() for p in (REPO / "solutions" / lesson).glob("*.py") if p.name != "hidden_checks.py")
    return [line.strip() for line in (REPO / "solutions" / lesson / "hidden_checks.py").read_text().splitlines()
            if len(line.strip()) > 24 and not line.strip().startswith("#") and line.strip() not in public]


def test_feedback_shows_no_hidden_check_and_no_forged_pass_line(graded):
    course, _ = graded
    page = next((course.root / "grading" / "feedback" / "reads-hidden" / L00).glob("*.html")).read_text()
    assert hidden_lines(L00), "Lesson 00 has hidden checks of its own"
    assert not [line for line in hidden_lines(L00) if line in page]
    graded_nb = nbformat.read(str(course.root / "grading" / "autograded" / "reads-hidden" / L00 / f"{L00}.ipynb"), 4)
    check_cells = [c for c in graded_nb.cells if nbgrader(c).get("grade_id") in ("ex0_1_visible", "ex0_1_hidden")]
    texts = [str(o.get("text", "")) for c in check_cells for o in c.outputs]
    assert not any("checks passed" in text for text in texts), texts
    kinds = [(nbgrader(c)["grade_id"], o.output_type, o.get("ename")) for c in check_cells for o in c.outputs]
    assert kinds and all(kind == "error" for _, kind, _ in kinds), kinds


def test_the_kernel_never_holds_the_hidden_checks(graded):
    """What the forger's kernel could read (its folder, its history, its code objects) has no hidden check."""
    course, _ = graded
    graded_nb = nbformat.read(str(course.root / "grading" / "autograded" / "reads-hidden" / L00 / f"{L00}.ipynb"), 4)
    (answer,) = [c for c in graded_nb.cells if nbgrader(c).get("grade_id") == "ex0_1_gru_shapes"]
    import base64

    printed = "".join(str(o.get("text", "")) for o in answer.outputs if o.output_type == "stream")
    assert len(printed) > 100, "the forger's answer cell printed what it found"
    text = printed.strip()
    found = base64.b64decode(text + "=" * (-len(text) % 4), validate=False).decode("utf-8", "ignore")
    assert not [line for line in hidden_lines(L00) if line in found]


def test_the_forbidden_api_message_names_the_route(graded):
    course, _ = graded
    graded_nb = nbformat.read(str(course.root / "grading" / "autograded" / "jit-string" / L01 / f"{L01}.ipynb"), 4)
    (visible,) = [c for c in graded_nb.cells if nbgrader(c).get("grade_id") == "ex1_2_visible"]
    assert "aten::gru_cell" in visible.outputs[0].evalue and "forbids" in visible.outputs[0].evalue
