"""nbgrader's exchange, as a JupyterHub course uses it (grading/README.md, "On JupyterHub"), end to end in
temporary folders: an exchange root, the course root and two student homes, with one nbgrader configuration that
every user reads (the README's /etc/jupyter/nbgrader_config.py; here JUPYTER_CONFIG_PATH points at it).

The instructor releases Lesson 00 to the exchange; ada and bo fetch it, answer and submit; the due date falls
between their submissions, so bo is late. The instructor collects, grades with the toolkit (``make autograde``),
makes feedback (``make feedback``) and releases it; each student fetches their own feedback, without hidden tests.

nbgrader's commands run in this process, the way nbgrader's own test-suite runs them; every "user" here is the
test's own account, so each student names themself with ``--student`` (nbgrader otherwise takes the Unix
account's name, or JUPYTERHUB_USER in a hub's ``jovyan`` containers), and ``collect`` warns that the owner does
not match, as it would for a student who submits under another's name. The toolkit's commands are the real
ones."""

import os
import shutil
import stat
from datetime import datetime, timezone

import nbformat
import pytest

from course.lessons import GRADING, SOLUTIONS, nbgrader, notebook_path, read
from grading.toolkit.autograde import autograde, read_summary
from grading.toolkit.feedback import feedback, page_text, secret_lines
from grading.toolkit.gradebook import opened, sqlite_url, tools_on_path
from grading.toolkit.settings import Course
from grading.toolkit.worker import run_nbgrader
from tests.harness import with_answers

pytestmark = pytest.mark.xdist_group("grading-exchange")

LESSON = "00-orientation"
COURSE_ID = "gru-course"  # grading/nbgrader_config.py
WRONG_EX0_2 = "def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):\n" \
              "    return 3 * hidden_size * (input_size + hidden_size + 2)\n"


class Hub:
    def __init__(self, tmp_path, monkeypatch):
        self.tmp, self.monkeypatch = tmp_path, monkeypatch
        self.exchange = tmp_path / "srv" / "nbgrader" / "exchange"
        self.exchange.mkdir(parents=True)
        self.exchange.chmod(0o1777)  # README: world-writable with the sticky bit
        etc = tmp_path / "etc-jupyter"
        etc.mkdir()
        (etc / "nbgrader_config.py").write_text(f"c = get_config()\nc.Exchange.root = {str(self.exchange)!r}\n"
                                                f"c.CourseDirectory.course_id = {COURSE_ID!r}\n")
        monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(etc))
        root = tmp_path / "grader" / "gru-course"
        (root / "grading").mkdir(parents=True)
        shutil.copytree(SOLUTIONS / LESSON, root / "solutions" / LESSON)
        self.course = Course(root, sqlite_url(root / "grading" / "gradebook.db"))
        self.grader("generate_assignment", LESSON, "--force")  # make release

    def grader(self, *args):
        """An nbgrader command of the instructor, from the course's grading/ folder (where its config is)."""
        return self.run(GRADING, args, COURSE_ROOT=str(self.course.root), COURSE_DB_URL=self.course.db_url)

    def home(self, student):
        return self.tmp / "home" / student

    def student(self, student, *args):
        """An nbgrader command of ``student``, in their home (the hub's single-user server starts there)."""
        home = self.home(student)
        home.mkdir(parents=True, exist_ok=True)
        env = {name: value for name, value in os.environ.items() if not name.startswith("COURSE_")}
        env.update(HOME=str(home), JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"))
        return self.run(home, args, _replace=env)

    def run(self, cwd, args, _replace=None, **env):
        tools_on_path()  # nbgrader runs alembic by name
        self.monkeypatch.chdir(cwd)
        saved = os.environ.copy()
        if _replace is not None:
            os.environ.clear()
            os.environ.update(_replace)
        try:
            code, log = run_nbgrader(list(args), **env)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert code == 0, f"nbgrader {' '.join(args)} failed:\n{log}"
        return log


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    try:
        hub = Hub(tmp_path_factory.mktemp("hub"), monkeypatch)
        source = read(notebook_path(LESSON, SOLUTIONS))
        solution = {nbgrader(c)["grade_id"]: c.source for c in source.cells if nbgrader(c).get("solution")}
        hub.grader("release_assignment", LESSON)
        for student in ("ada", "bo"):
            hub.student(student, "fetch_assignment", LESSON)
        def answer(student, answers):  # the student fills in the answer cells of the notebook they fetched
            path = hub.home(student) / LESSON / f"{LESSON}.ipynb"
            nbformat.write(with_answers(read(path), answers), str(path))

        answer("ada", solution)
        answer("bo", {**solution, "ex0_2_parameter_count": WRONG_EX0_2})
        hub.student("ada", "submit", LESSON, "--student", "ada")
        due = datetime.now(timezone.utc)
        with opened(hub.course.db_url) as gb:  # nbgrader db assignment add --duedate, from Python
            gb.update_or_create_assignment(LESSON, duedate=due.replace(tzinfo=None))
        hub.student("bo", "submit", LESSON, "--student", "bo")
        hub.collect_log = hub.grader("collect", LESSON)

        lines = []
        hub.graded = autograde(hub.course, jobs=1, out=lines.append), lines  # make autograde JOBS=1
        hub.feedback = feedback(hub.course, out=lines.append)  # make feedback
        hub.grader("release_feedback", LESSON)
        for student in ("ada", "bo"):
            hub.student(student, "fetch_feedback", LESSON, "--student", student)
        hub.due = due
        yield hub
    finally:
        monkeypatch.undo()


def test_collect_puts_both_submissions_where_the_toolkit_grades_them(hub):
    submitted = hub.course.root / "grading" / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ada", "bo"]
    for student in ("ada", "bo"):
        assert (submitted / student / LESSON / f"{LESSON}.ipynb").is_file()
        assert (submitted / student / LESSON / "timestamp.txt").is_file()
        # nbgrader only warns when the folder's owner is not the student it claims to be (README: exposure)
        assert f"claims to be submitted by {student} but is owned by" in hub.collect_log


def test_the_toolkit_grades_what_was_collected_and_nbgrader_records_who_was_late(hub):
    code, lines = hub.graded
    assert code == 0, "\n".join(lines)
    rows = read_summary(hub.course.root / "grading" / "autograde-summary.csv")
    assert {(s, r["score"], r["status"]) for (s, _), r in rows.items()} == {("ada", "7", "graded"),
                                                                              ("bo", "5", "graded")}
    with opened(hub.course.db_url) as gb:
        on_time, late = gb.find_submission(LESSON, "ada"), gb.find_submission(LESSON, "bo")
        assert on_time.timestamp < hub.due.replace(tzinfo=None) < late.timestamp
        assert on_time.total_seconds_late == 0
        assert 0 < late.total_seconds_late < 600


def test_each_student_fetches_their_feedback_without_hidden_tests(hub):
    assert hub.feedback == 0
    secrets = secret_lines(hub.course, LESSON)
    assert len(secrets) > 20
    for student, score in (("ada", "7"), ("bo", "5")):
        pages = list((hub.home(student) / LESSON / "feedback").glob(f"*/{LESSON}.html"))
        assert len(pages) == 1, f"{student}: {pages}"
        text = page_text(pages[0].read_text(encoding="utf-8"))
        assert f"Score: {score}" in text.replace("\n", " ") or f"{score} / 7" in text, text[:500]
        assert not [line for line in secrets if line in text], student
        assert "BEGIN HIDDEN TESTS" not in text
    bo = page_text(next((hub.home("bo") / LESSON / "feedback").glob(f"*/{LESSON}.html")).read_text())
    assert "ex0_2_hidden" in bo  # which hidden check failed is shown, its code is not


def test_the_exchange_permissions_the_readme_describes(hub):
    """What grading/README.md says about the exchange folder: nbgrader keeps its root world-writable (the sticky
    bit, added by the admin, survives), the course folder is the instructor's, inbound is write-only for students
    and feedback is reachable only by the secret name of each page."""
    mode = {path: stat.S_IMODE(os.stat(hub.exchange / path).st_mode)
            for path in (".", COURSE_ID, f"{COURSE_ID}/outbound", f"{COURSE_ID}/inbound", f"{COURSE_ID}/feedback")}
    assert mode["."] == 0o1777
    assert mode[COURSE_ID] == mode[f"{COURSE_ID}/outbound"] == 0o755
    assert mode[f"{COURSE_ID}/inbound"] == 0o2733
    assert mode[f"{COURSE_ID}/feedback"] == 0o711  # pages are named by a hash of each submission's secret
