"""Hostile submissions, graded with the sandbox on (the default) by the real command (``python -m grading.toolkit
autograde``, what ``make autograde`` runs) with 2 jobs on Lesson 00: each ends with no leak, no damage to other
students' grades, submissions or feedback, nothing that persists into a later run, and no in-kernel forgery earns a
point (checks are judged outside the kernel; tests/test_grading_forgery.py has every route). Then feedback (no hidden
test code, even encoded; no student HTML or JavaScript run) and export (a gradebook changed behind the toolkit's back
is listed).

Every payload is bounded (its processes sleep a few seconds at most, its writes stop at 100 MB), uses no network
and aims only at paths inside the test's temporary folder (its ``$HOME`` is there too), so a sandbox that failed
would damage nothing else."""

import base64
import binascii
import copy
import hashlib
import os
import re
import subprocess
import sys
import time

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from course.lessons import REPO
from grading.toolkit.autograde import read_summary
from grading.toolkit.gradebook import opened
from tests.harness import TempCourse, with_answers

pytestmark = [pytest.mark.xdist_group("grading-hostile"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grading sandbox needs Linux")]

LESSON = "00-orientation"
TOKEN = "gru-hostile-7f3a"  # in the command line of every process a payload leaves behind

SOLUTION_EX0_1 = '''
def gru_shapes(seq_len, batch_size, input_size, hidden_size, num_layers=1,
               bidirectional=False, batch_first=False, unbatched=False):
    d = 2 if bidirectional else 1
    if unbatched:
        return (seq_len, d * hidden_size), (d * num_layers, hidden_size)
    out = (batch_size, seq_len, d * hidden_size) if batch_first else (seq_len, batch_size, d * hidden_size)
    return out, (d * num_layers, batch_size, hidden_size)
'''

# Escape the grader: read what a kernel must not see, write where it must not, persist, outlive the kernel, fork,
# fill the disk, flood the output. Then answer correctly: the score itself is not what it is after.
ESCAPE = '''
import os, subprocess, sys, time
ROOT = {root!r}
secrets = [ROOT + "/solutions/00-orientation/00-orientation.ipynb", ROOT + "/grading/gradebook.db",
           ROOT + "/grading/.work/template.db", ROOT + "/grading/submitted/victim/00-orientation/00-orientation.ipynb",
           ROOT + "/home/secret.txt", "../../../gradebook.db", {config!r},
           "../../../../../solutions/00-orientation/00-orientation.ipynb"]
for path in secrets:
    try:
        with open(path, "rb") as f:
            print("LEAKED", path, len(f.read()))
    except OSError as error:
        print("blocked", path, type(error).__name__)
targets = [ROOT + "/grading/gradebook.db", ROOT + "/grading/submitted/victim/00-orientation/00-orientation.ipynb",
           ROOT + "/grading/pwned.txt", ROOT + "/home/.ipython/profile_default/startup/00-evil.py"]
for path in targets + [os.path.expanduser("~/.ipython/profile_default/startup/00-evil.py"),
                       os.path.expanduser("~/.jupyter/jupyter_config.py")]:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("import sys; print('persisted', file=sys.stderr)\\n")
        print("WROTE", path)
    except OSError as error:
        print("blocked", path, type(error).__name__)
later = "import time, os; time.sleep(4); open({root!r} + '/grading/pwned-later.txt', 'w').write('x')"
subprocess.Popen([sys.executable, "-c", later, {token!r}], start_new_session=True)
children, failed = [], None
try:
    for _ in range(300):
        children.append(subprocess.Popen(["sleep", "2"]))
except OSError as error:
    failed = type(error).__name__
for child in children:  # the kernel itself can start no thread while they hold the process limit
    child.wait()
print("fork stopped at", len(children), failed)
for where in (".", os.path.expanduser("~")):
    written = 0
    try:
        with open(os.path.join(where, "filler.bin"), "wb") as f:
            for _ in range(100):
                f.write(b"x" * 2**20)
                written += 1
    except OSError as error:
        print("disk stopped at", written, "MB:", error.strerror)
    finally:
        os.remove(os.path.join(where, "filler.bin"))
sys.stdout.flush()  # the lines above reach the grader in their own message, before the flood below is cut
for _ in range(8):
    print("y" * 2**20)
''' + SOLUTION_EX0_1

# Read the hidden check that calls it (frames, linecache), print it, and smuggle it out base64-encoded in an error.
FRAMES = '''
import base64, linecache, sys

def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):
    caller = sys._getframe(1)
    source = "".join(linecache.getlines(caller.f_code.co_filename))
    print(source)
    raise ValueError(base64.b64encode(source.encode()).decode())
'''

SHADOW_HELPERS = '''
def check(*args, **kwargs):
    pass

check_type = check_int = check_shape = check_tensor = check

def gru_shapes(*args, **kwargs):
    return None
'''

PATCHES = '''
import torch
isinstance = lambda *args: True
torch.allclose = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda *args: True

def gru_parameter_count(*args, **kwargs):
    return 0
'''

WRONG_EX0_3 = '''
def initial_hidden_state(gru, batch_size=None):
    rows = (2 if gru.bidirectional else 1) * gru.num_layers
    shape = (rows, gru.hidden_size) if batch_size is None else (rows, batch_size, gru.hidden_size)
    return torch.ones(shape, dtype=gru.weight_hh_l0.dtype)
'''

IPYTHON_HOOK = '''
session = get_ipython().kernel.session
original = session.send

def send(stream, msg_or_type, content=None, *args, **kwargs):  # no error reaches the grader: every check passes
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

HTML_CELL = '''
class Page:
    def _repr_html_(self):
        return "<script>alert('xss-output')</script><b>bold</b>"

print("<script>alert('xss-print')</script>")
display(Page())
''' + SOLUTION_EX0_1

# student: (status, words the reason must contain, score out of 7)
EXPECTED = {
    "honest": ("graded", [], 7),
    "victim": ("graded", [], 7),
    "escape": ("graded", [], 7),
    "frames": ("graded", ["ex0_2_visible"], 5),  # its Exercise 0.2 raises: 0 of 2
    "shadow-helpers": ("graded", ["ex0_1_visible"], 4),  # its Exercise 0.1 is wrong: 0 of 3
    "patches": ("graded", ["not answered: ex0_1"], 0),  # 0.1 unanswered, 0.2 and 0.3 wrong
    "ipython-hook": ("graded", ["ex0_1_visible"], 0),  # every error hidden from nbgrader: nothing earned
    "html": ("graded", [], 7),
    "link-notebook": ("not-gradable", ["links"], 0),
    "link-folder": ("not-gradable", ["links", "data"], 0),
    "huge-notebook": ("not-gradable", ["MiB", "limit"], 0),
}


def folder(course, student):
    return course.root / "grading" / "submitted" / student / LESSON


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_submissions(course):
    source, blank = course.source(LESSON), course.student_version(LESSON)
    root = str(course.root)
    escape = ESCAPE.format(root=root, config=str(REPO / "grading" / "nbgrader_config.py"), token=TOKEN)
    answers = {
        "honest": {}, "victim": {}, "escape": {"ex0_1_gru_shapes": escape},
        "frames": {"ex0_2_parameter_count": FRAMES},
        "shadow-helpers": {"ex0_1_gru_shapes": SHADOW_HELPERS},
        "ipython-hook": {"ex0_1_gru_shapes": IPYTHON_HOOK},
    }
    for student, swapped in answers.items():
        course.submit(student, LESSON, with_answers(source if student != "ipython-hook" else blank, swapped))
    course.submit("patches", LESSON, with_answers(blank, {"ex0_2_parameter_count": PATCHES,
                                                          "ex0_3_initial_state": WRONG_EX0_3}))
    html = with_answers(source, {"ex0_1_gru_shapes": HTML_CELL})
    html.cells += [new_markdown_cell("<script>alert('xss-markdown')</script> *done*"), new_code_cell("print(1)")]
    course.submit("html", LESSON, html)

    linked = folder(course, "link-notebook")
    linked.mkdir(parents=True)
    (linked / f"{LESSON}.ipynb").symlink_to(course.root / "solutions" / LESSON / f"{LESSON}.ipynb")
    course.submit("link-folder", LESSON, blank)
    (folder(course, "link-folder") / "data").symlink_to("/", target_is_directory=True)
    huge = copy.deepcopy(blank)
    huge.cells.append(new_markdown_cell("z" * (25 * 2**20)))
    course.submit("huge-notebook", LESSON, huge)
    (course.root / "home").mkdir()
    (course.root / "home" / "secret.txt").write_text("the grader's own file")


def toolkit(course, *args):
    env = dict(os.environ, COURSE_ROOT=str(course.root), COURSE_DB_URL=course.db_url, HOME=str(course.root / "home"),
               COURSE_CELL_TIMEOUT="20")
    env.pop("COURSE_SANDBOX", None)  # the default, sandbox on, is what is tested
    return subprocess.run([sys.executable, "-m", "grading.toolkit", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = TempCourse(tmp_path_factory.mktemp("hostile"), [LESSON])
    make_submissions(course)
    before = {s: digest(folder(course, s) / f"{LESSON}.ipynb") for s in ("victim", "honest")}
    run = toolkit(course, "autograde", "--jobs", "2")
    print(run.stdout, run.stderr)
    time.sleep(5)  # what a payload left behind would act now
    return course, run, before


def summary(course):
    return read_summary(course.root / "grading" / "autograde-summary.csv")


def autograded(course, student):
    return nbformat.read(str(course.root / "grading" / "autograded" / student / LESSON / f"{LESSON}.ipynb"), 4)


def outputs_text(nb):
    return "\n".join(str(o.get("text", "")) + str(o.get("data", "")) + str(o.get("evalue", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_the_run_is_sandboxed_and_grades_everything(graded):
    course, run, _ = graded
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sandbox: bubblewrap" in run.stdout
    assert set(summary(course)) == {(s, LESSON) for s in EXPECTED}


@pytest.mark.parametrize("student", list(EXPECTED))
def test_each_hostile_submission_gets_its_status_and_reason(graded, student):
    course, _, _ = graded
    status, words, score = EXPECTED[student]
    row = summary(course)[(student, LESSON)]
    assert row["status"] == status, row
    for word in words:
        assert word in row["reason"], f"{student}: {word!r} not in {row['reason']!r}"
    assert float(row["score"]) == score, row
    if status == "graded" and not words and student not in ("escape", "html"):
        assert row["reason"] == "", row


def test_nothing_leaks_out_of_the_sandbox_and_nothing_is_damaged(graded):
    course, _, before = graded
    text = outputs_text(autograded(course, "escape"))
    assert "LEAKED" not in text and "WROTE /" not in text.replace("WROTE /tmp", "")
    assert text.count("blocked") >= 8
    assert re.search(r"fork stopped at \d+ BlockingIOError", text), ("the process limit did not stop the fork loop: "
                                                                      + text[text.find("blocked"):][:3000])
    assert re.search(r"disk stopped at \d+ MB: File too large", text)
    assert "[output cut: this cell wrote more than 2 MiB" in text
    size = (course.root / "grading" / "autograded" / "escape" / LESSON / f"{LESSON}.ipynb").stat().st_size
    assert size < 4 * 2**20
    for student, sha in before.items():  # other submissions untouched, their grades intact
        assert digest(folder(course, student) / f"{LESSON}.ipynb") == sha
        assert float(summary(course)[(student, LESSON)]["score"]) == 7
    assert not list((course.root / "grading").glob("pwned*"))
    assert not (course.root / "home" / ".ipython" / "profile_default" / "startup" / "00-evil.py").exists()
    assert not (course.root / "home" / ".jupyter" / "jupyter_config.py").exists()
    assert not [p for p in psutil.process_iter(["cmdline"]) if TOKEN in " ".join(p.info["cmdline"] or [])]


def test_checks_keep_the_original_builtins_and_torch(graded):
    course, _, _ = graded
    from tests.harness import points

    scores = course.scores(LESSON)
    for grade_id in ("ex0_2_visible", "ex0_2_hidden", "ex0_3_visible", "ex0_3_hidden"):
        assert points(scores, "patches", grade_id) == 0, grade_id


def test_persistence_attempts_do_not_reach_a_later_run(graded):
    course, _, _ = graded
    again = toolkit(course, "autograde", "--jobs", "1", "--force", "--student", "honest")
    assert again.returncode == 0, again.stdout + again.stderr
    row = summary(course)[("honest", LESSON)]
    assert (row["status"], float(row["score"]), row["reason"]) == ("graded", 7, "")


def decoded(text):
    """The text and every base64 run in it decoded, as a reader determined to find hidden tests would."""
    views = [text]
    for run in re.findall(r"[A-Za-z0-9+/=]{16,}", text):
        try:
            views.append(base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "ignore"))
        except (ValueError, binascii.Error):
            pass
    return "\n".join(views)


def test_feedback_shows_no_hidden_test_and_runs_no_student_html(graded):
    course, _, _ = graded
    run = toolkit(course, "feedback")
    secret = "rng = random.Random(7)"  # a hidden line of ex0_2_hidden, which the frames payload reads
    pages = {p.parent.parent.name: p.read_text() for p in
             (course.root / "grading" / "feedback").glob(f"*/{LESSON}/{LESSON}.html")}
    assert set(pages) == set(EXPECTED)
    for student, page in pages.items():
        assert secret not in decoded(re.sub(r"<[^>]+>", "", page)), student
    assert run.returncode == 0 and "withheld" not in pages["frames"]  # nothing hidden was in its kernel to find
    scripts = re.findall(r"<script[^>]*>[^<]*", pages["html"])  # the page's own scripts (MathJax, ...) only
    assert not [s for s in scripts if "xss-" in s], scripts
    assert "xss-print" in pages["html"]  # shown as text
    assert "xss-markdown" not in pages["html"]  # a cell added to the submission is not graded, nor shown
    assert "refused" in pages["link-notebook"] and "links" in pages["link-notebook"]


def test_export_lists_a_gradebook_changed_behind_its_back(graded):
    course, _, _ = graded
    with opened(course.db_url) as gb:  # what a process left running could have done to the gradebook
        grade = gb.find_grade("ex0_1_hidden", LESSON, LESSON, "victim")
        grade.auto_score = 0
        gb.db.commit()
    run = toolkit(course, "export")
    assert run.returncode == 0, run.stdout + run.stderr
    text = (course.root / "grading" / "summary" / "summary.md").read_text()
    section = text.split("## To review", 1)[1]
    assert re.search(r"\| victim \| 00-orientation \|.*gradebook 5 vs summary 7", section)
    assert "honest" not in section


PROBE = '''
import os, socket
print("PROBE uid", os.getuid())
for path in {secrets!r}:
    print("PROBE sees", path, os.path.exists(path))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("PROBE network reached")
except OSError as error:
    print("PROBE no network:", type(error).__name__)
''' + SOLUTION_EX0_1


def test_plain_nbgrader_autograde_from_grading_runs_the_kernel_in_the_sandbox(tmp_path):
    """Not only the toolkit: a plain `nbgrader autograde` run by hand from grading/ (checks in the kernel, as
    nbgrader always has) starts its kernel through the sandbox that grading/nbgrader_config.py installs."""
    course = TempCourse(tmp_path, [LESSON])
    secrets = [str(course.root / "solutions" / LESSON), str(course.root / "grading" / "gradebook.db")]
    course.submit("probe", LESSON, with_answers(course.source(LESSON),
                                                {"ex0_1_gru_shapes": PROBE.format(secrets=secrets)}))
    course.autograde_in_kernel(LESSON)
    text = outputs_text(nbformat.read(str(course.root / "grading" / "autograded" / "probe" / LESSON /
                                          f"{LESSON}.ipynb"), 4))
    uid = int(re.search(r"PROBE uid (\d+)", text).group(1))
    if os.geteuid() == 0:
        assert uid != 0, "the kernel ran as root"
    for path in secrets:
        assert f"PROBE sees {path} False" in text, text
    assert "PROBE no network" in text, text
    assert sum(score for score, _ in course.scores(LESSON)["probe"].values()) == 7  # and it is graded as usual
