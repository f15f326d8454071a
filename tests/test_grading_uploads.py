"""What goes into grading and what comes out of it, tried as a hostile class would: student ids, LMS downloads
(``make collect``), CSV files and summaries, feedback pages, resource caps per submission, and submissions that
crash nbgrader. Fast unit tests first, then one batch: a small class of honest and hostile students graded end to
end by the real commands (autograde, feedback, export), where the honest scores stay exactly as they were and
every refused or cut submission gets one clear row."""

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from course.lessons import NOTEBOOKS, REPO, SOLUTIONS
from grading.toolkit.autograde import read_summary, single_run
from grading.toolkit.gradebook import opened, record, sqlite_url
from grading.toolkit.settings import Course
from tests.harness import TempCourse, with_answers

# The toolkit's parts under test are imported in each test, so that every test runs (and fails for its own
# reason) against a toolkit that lacks some of them.

pytestmark = [pytest.mark.xdist_group("grading-uploads"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="grading needs Linux")]

LESSON = "00-orientation"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what no summary, CSV cell or terminal line may carry


# --- student ids ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("student", ["ada", "jane_doe", "jane.doe@uni.edu", "s1234567", "A-b.c_d", "x" * 64])
def test_ordinary_ids_follow_the_rule(student):
    from grading.toolkit.ids import id_problem

    assert id_problem(student) is None


@pytest.mark.parametrize("student", ['=HYPERLINK("http://evil","x")', "+1", "-1+1", "@SUM(A1)", "a,b", "..", ".x",
                                     "a/b", "a b", "x" * 65, "", "ada\x1b[2J", "caf\u00e9", "ad\u202ea", "_x"])
def test_hostile_ids_are_refused_with_the_rule(student):
    from grading.toolkit.ids import id_problem

    assert "breaks the id rule" in id_problem(student)


# --- CSV cells and text --------------------------------------------------------------------------------------------

def test_csv_files_run_no_formula_and_keep_their_columns(tmp_path):
    from grading.toolkit.safetext import clean, csv_cell, write_csv

    evil = ['=HYPERLINK("http://evil","7")', "+1", "-1+1", "@SUM(A1)", "\t=1", "\uff1d1+1", "a,b\r\nc,d",
            "\x1b[31mred\x1b[0m\x07", "ok"]
    write_csv(tmp_path / "t.csv", ["value", "score"], [[v, 7] for v in evil] + [["-3.5", -3.5]])
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert all(len(row) == 2 for row in rows)
    for (value, score), original in zip(rows, evil, strict=False):
        assert score == "7" and not CONTROL.search(value), value
        assert not value.startswith(("=", "+", "-", "@", "\t", "\uff1d")), value
        assert clean(original).lstrip("=+-@\t\uff1d") in value
    assert rows[-1] == ["-3.5", "-3.5"]  # numbers stay numbers
    assert csv_cell(3) == 3 and csv_cell("red\x1b[0m") == "red"


def test_markdown_cells_quote_text_without_links_html_or_columns():
    from grading.toolkit.safetext import markdown_cell

    text = markdown_cell("<img src=x onerror=alert(1)> | [x](javascript:alert(1)) ![i](data:x) `c`\n# h")
    assert not re.search(r"(?<!\\)<img|(?<!\\)\]\(javascript|(?<!\\)!(?<!\\)\[", text)
    assert text.count("|") == text.count("\\|") and "\n" not in text


# --- make collect ----------------------------------------------------------------------------------------------

def course_root(tmp_path):
    root = tmp_path / "course"
    (root / "grading").mkdir(parents=True)
    shutil.copytree(SOLUTIONS / LESSON, root / "solutions" / LESSON)
    shutil.copytree(NOTEBOOKS / LESSON, root / "notebooks" / LESSON)
    return root


def zip_bytes(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, date in entries:
            z.writestr(zipfile.ZipInfo(name, date_time=date), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def test_collect_takes_ids_from_the_download_only_and_checks_sizes_before_extracting(tmp_path):
    from grading.toolkit.collect import collect

    root = course_root(tmp_path)
    honest = (NOTEBOOKS / LESSON / f"{LESSON}.ipynb").read_bytes()
    forged = honest.replace(b"YOUR CODE HERE", b"MALLORY WAS HERE")
    old, new = (2020, 1, 1, 0, 0, 0), (2030, 1, 1, 0, 0, 0)
    # mallory's own upload is a zip holding a notebook named for victim, dated later than victim's own file
    upload = zip_bytes([(f"victim_{LESSON}.ipynb", forged, new)])
    bomb = b"\0" * (30 * 2**20)  # 30 MiB that compress to about 30 KiB
    dense = b"{" + b"a" * (6 * 2**20) + b"}"  # 6 MiB, under the size limit, compressed over 1000 times
    download = tmp_path / "download.zip"
    download.write_bytes(zip_bytes([
        (f"victim_{LESSON}.ipynb", honest, old),
        (f"mallory/mallory_{LESSON}.zip", upload, new),
        (f"ben_{LESSON}.ipynb", forged, new),  # earlier in the download, though dated later
        (f"late/ben_{LESSON}.ipynb", honest, old),  # later in the download: this one wins
        (f"bomb_{LESSON}.ipynb", bomb, old),
        (f"dense_{LESSON}.ipynb", dense, old),
        (f'=HYPERLINK("http://evil","x")_{LESSON}.ipynb', honest, old),
        (f"+1_{LESSON}.ipynb", honest, old),
        (f"-1+1_{LESSON}.ipynb", honest, old),
        (f"ev\x1b[2Jil_{LESSON}.ipynb", honest, old),
        (f"../escape_{LESSON}.ipynb", honest, old),
    ]))
    lines = []
    assert collect(Course(root, f"sqlite:///{root / 'grading' / 'gradebook.db'}"), download, out=lines.append) == 0
    submitted = root / "grading" / "submitted"
    assert sorted(p.parent.parent.name for p in submitted.rglob("*.ipynb")) == ["ben", "victim"]
    assert (submitted / "victim" / LESSON / f"{LESSON}.ipynb").read_bytes() == honest
    assert (submitted / "ben" / LESSON / f"{LESSON}.ipynb").read_bytes() == honest
    assert not list(root.rglob("*bomb*")) and not list(root.rglob("*dense*"))  # never extracted

    with open(root / "grading" / "collect-report.csv", newline="") as f:
        report = {row["file"].split("!", 1)[1]: row for row in csv.DictReader(f)}
    reasons = {name: row["reason"] for name, row in report.items()}
    assert "archive inside the download: not opened" in reasons[f"mallory/mallory_{LESSON}.zip"]
    assert "earlier duplicate" in reasons[f"ben_{LESSON}.ipynb"]
    assert "over the 20 MiB limit" in reasons[f"bomb_{LESSON}.ipynb"]
    assert "expands" in reasons[f"dense_{LESSON}.ipynb"]
    assert "unsafe path" in reasons[f"../escape_{LESSON}.ipynb"]
    for name in report:
        if name.startswith(("=", "+", "-1", "ev")):
            assert "breaks the id rule" in reasons[name], name
    text = "\n".join(lines) + (root / "grading" / "collect-report.csv").read_text()
    assert not CONTROL.search(text.replace("\n", "").replace("\r", ""))
    with open(root / "grading" / "collect-report.csv", newline="") as f:
        assert not [cell for row in csv.reader(f) for cell in row if cell.startswith(("=", "+", "-", "@"))]


# --- output and feedback budgets, feedback HTML -------------------------------------------------------------------

def test_the_output_budget_is_per_notebook_as_well_as_per_cell():
    from grading.toolkit.budget import OutputBudget

    budget = OutputBudget(per_cell=2 * 2**20, total=8 * 2**20)
    kept = [budget.take(cell, 2**20) is None for cell in range(12)]
    assert kept == [True] * 8 + [False] * 4 and budget.used == 8 * 2**20
    assert "more than 1 MiB in all" in OutputBudget(per_cell=0, total=2**20).take(0, 2**21)
    one = OutputBudget(per_cell=2 * 2**20, total=0)
    assert one.take(0, 2 * 2**20) is None and "this cell wrote more than 2 MiB" in one.take(0, 1)
    assert one.take(0, 1) == ""  # one note per cell


HOSTILE_MARKDOWN = """[click](javascript:window.__pwned=1) [d](data:text/html,<script>window.__pwned=2</script>)
[v](vbscript:msgbox) [J](JaVaScRiPt:window.__pwned=3) [e](&#106;avascript:window.__pwned=4) [a](<javascript:x>)
![i](javascript:window.__pwned=5) <a href="javascript:window.__pwned=6">raw</a>
<img src=x onerror="window.__pwned=7"> [ok](https://example.com) [r][ref]

[ref]: javascript:window.__pwned=8
"""


def test_feedback_markdown_keeps_no_link_that_runs_code():
    from grading.toolkit.safe_html import SafeHTMLExporter, unsafe_urls

    nb = new_notebook(cells=[new_markdown_cell(HOSTILE_MARKDOWN)])
    exporter = SafeHTMLExporter()
    exporter.sanitize_html = True
    page, _ = exporter.from_notebook_node(nb)
    assert unsafe_urls(page) == [] and page.count("#harmful-link") >= 6
    assert 'href="https://example.com"' in page


# --- resource caps ---------------------------------------------------------------------------------------------------

def test_a_kernel_cgroup_counts_shared_memory_and_is_removed():
    from grading.toolkit import quotas

    if quotas.cgroup_base() is None:
        pytest.skip("no memory cgroup can be made here")

    cgroup = quotas.new_kernel_cgroup(256 * 2**20)
    try:
        payload = ("import mmap\nm = mmap.mmap(-1, 512 * 2**20)\n"
                   "for i in range(0, len(m), 4096):\n    m[i] = 1\nprint('allocated')")
        command = [sys.executable, str(REPO / "grading" / "toolkit" / "limits.py"), f"--cgroup={cgroup}", "--",
                   sys.executable, "-c", payload]
        run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert run.returncode != 0 and "allocated" not in run.stdout  # killed at the cap, not at 512 MiB
    finally:
        quotas.remove_cgroup(cgroup)
    assert not cgroup.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the private IPC tmpfs needs root")
def test_a_workers_ipc_folder_is_a_private_capped_tmpfs(tmp_path):

    script = """
import os, sys
from grading.toolkit import quotas
print(quotas.enter_private_ipc(sys.argv[1], 2**20))
n = 0
try:
    for i in range(8):
        open(os.path.join(sys.argv[1], str(i)), "wb").write(b"x" * 2**19)
        n += 1
except OSError as e:
    print("stopped", n, e.strerror)
"""
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert re.match(r"True\nstopped [12] No space left", run.stdout), run.stdout + run.stderr
    assert list(tmp_path.iterdir()) == []  # written in the worker's own mount: nothing on the host's disk


def test_a_second_autograde_exits_2(tmp_path, monkeypatch, capsys):
    from grading.toolkit.__main__ import main

    course = Course(tmp_path, sqlite_url(tmp_path / "grading" / "gradebook.db"))
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    monkeypatch.setenv("COURSE_DB_URL", course.db_url)
    with single_run(course):
        assert main(["autograde"]) == 2
    assert "error: another autograde of this course is running" in capsys.readouterr().err


# --- make export: grades.csv, the cross-check, summary.md ----------------------------------------------------------

def test_export_writes_safe_grades_and_checks_the_written_file(tmp_path):
    from grading.toolkit.export import check_written_grades, export
    from grading.toolkit.safetext import write_csv

    course = Course(tmp_path, sqlite_url(tmp_path / "grading" / "gradebook.db"))
    (tmp_path / "grading").mkdir()
    evil_id = '=HYPERLINK("http://evil","7")'
    with opened(course.db_url) as gb:
        gb.update_or_create_assignment(LESSON)
        gb.update_or_create_notebook(LESSON, LESSON)
        for name in ["check_a", "check_b"]:
            gb.update_or_create_grade_cell(name, LESSON, LESSON, max_score=2, cell_type="code")
        gb.update_or_create_solution_cell("answer", LESSON, LESSON)
        graded = {"timestamp": None, "notebooks": {LESSON: {"grades": {"check_a": 2.0, "check_b": 0.0},
                                                            "comments": {"answer": None}, "late_penalty": None}}}
        for student in ("ada", "bo", evil_id, "a,b"):
            record(gb, LESSON, student, graded)
        gb.update_or_create_student("bo", first_name="=cmd|' /C calc'!A0", last_name="Smith, Jr.")
    write_csv(course.summary_csv, ["student", "lesson", "score", "max_score", "status", "reason", "seconds",
                                   "graded_at", "fingerprint"],
              [["ada", LESSON, "2", "4", "graded", "", "1", "2026-01-01T00:00:00+00:00", "f"],
               ["bo", LESSON, "2", "4", "not-gradable", "<img src=x onerror=alert(1)> | [x](javascript:alert(1))",
                "1", "2026-01-01T00:00:00+00:00", "f"]])
    lines = []
    assert export(course, out=lines.append) == 0

    with open(tmp_path / "grading" / "grades.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in rows)
    by_id = {row[header.index("student_id")]: row for row in rows}
    assert set(by_id) == {"ada", "bo"}  # the ids that break the rule are left out, and listed
    assert float(by_id["bo"][header.index("score")]) == 2
    assert by_id["bo"][header.index("first_name")].startswith("'=")
    for folder in ("grading", "grading/summary", "grading/lms"):
        for path in (tmp_path / folder).glob("*.csv"):
            with open(path, newline="") as f:
                cells = [cell for row in csv.reader(f) for cell in row]
            assert not [c for c in cells if c.startswith(("=", "+", "@")) or c.startswith("-") and
                        not re.fullmatch(r"-[\d.]+", c)], path
    assert any("breaks the id rule" in line and "HYPERLINK" in line for line in lines)
    review = (tmp_path / "grading" / "summary" / "summary.md").read_text().split("## To review", 1)[1]
    assert not re.search(r"(?<!\\)<img|(?<!\\)\]\(javascript", review)
    assert "\\<img" in review and "\\[x\\]" in review

    # A file written as nbgrader's export writes it (values joined with commas) does not match the gradebook.
    naive = (tmp_path / "naive.csv")
    naive.write_text(",".join(header) + "\n" + ",".join([LESSON, "", "", "a,b", "", "", "", "0", "0", "7", "4"]))
    assert check_written_grades(course, naive)


# --- the batch -----------------------------------------------------------------------------------------------------

SOLUTION_EX0_3 = '''
def initial_hidden_state(gru, batch_size=None):
    weight = gru.weight_hh_l0
    rows = (2 if gru.bidirectional else 1) * gru.num_layers
    shape = (rows, gru.hidden_size) if batch_size is None else (rows, batch_size, gru.hidden_size)
    return torch.zeros(shape, device=weight.device, dtype=weight.dtype)
'''

WRONG_EX0_2 = '''
def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):
    d = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else d * hidden_size
        total += d * (3 * hidden_size * (n_in + hidden_size) + 6 * hidden_size)  # bias=False ignored
    return total
'''

# 2 GiB of anonymous shared memory, which RLIMIT_DATA does not count (the batch's cap is 1.5 GiB)
SHARED_MEMORY = '''
import mmap
shared = mmap.mmap(-1, 2 * 2**30)
for i in range(0, len(shared), 4096):
    shared[i] = 1
print("SHARED ALLOCATED")
''' + SOLUTION_EX0_3

# Fill the kernel's IPC folder (where its connection file is) with 40 MiB.
FILL_IPC = '''
import os, sys
ipc_folder = os.path.dirname([a for a in sys.argv if a.endswith(".json")][0])
written = 0
try:
    for number in range(40):
        with open(os.path.join(ipc_folder, f"fill{number}"), "wb") as fill:
            fill.write(b"x" * 2**20)
        written += 1
    print("IPC wrote", written, "MiB")
except OSError as error:
    print("IPC stopped at", written, "MiB:", error.strerror)
'''

# An error message that would clear the instructor's terminal, retitle it and forge a CSV row.
ANSI_ERROR = 'raise ValueError("\\x1b[2J\\x1b]0;owned\\x07\\x1b[31mred\\x00\\x08 =HYPERLINK(1),7,graded")\n'

HONEST = {"jane.doe@uni.edu": (7, ""), "bo": (1, "ex0_2_hidden")}
BAD_IDS = ["+1", '=HYPERLINK("evil","x")', "-1+1"]


def set_grade_meta(nb, grade_id, key, value):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            if key is None:
                cell.metadata["nbgrader"] = value
            else:
                cell.metadata["nbgrader"][key] = value
    return nb


def make_class(course):
    """Two honest students; three folders named with ids that break the rule; "resources" (its IPC folder filled,
    then more shared memory than the cap); "mallory" (an error message full of control characters, links that
    would run code in the feedback page, and 11 MiB of output in added cells); two notebooks with malformed
    nbgrader metadata (one crashes nbgrader, one would crash the toolkit)."""
    source, blank = course.source(LESSON), course.student_version(LESSON)
    course.submit("jane.doe@uni.edu", LESSON, source)
    course.submit("bo", LESSON, with_answers(blank, {"ex0_2_parameter_count": WRONG_EX0_2}))
    for student in BAD_IDS:
        course.submit(student, LESSON, source)
    resources = with_answers(source, {"ex0_3_initial_state": SHARED_MEMORY})
    resources.cells[18].source = FILL_IPC + resources.cells[18].source  # ex0_1's answer fills the IPC folder
    course.submit("resources", LESSON, resources)
    # Only answer cells are graded: mallory's links and floods come from its answer cells (1.9 MiB each).
    mallory = with_answers(source, {"ex0_2_parameter_count": "print('2' * (19 * 2**20 // 10))\n" + ANSI_ERROR})
    shown = f"from IPython.display import Markdown, display\ndisplay(Markdown({HOSTILE_MARKDOWN!r}))\n"
    for index in (18, 26):  # the answers of Exercises 0.1 and 0.3, still right
        mallory.cells[index].source = shown + f"print('{index}' * (19 * 2**20 // 20))\n" + mallory.cells[index].source
    course.submit("mallory", LESSON, mallory)
    course.submit("points-str", LESSON, set_grade_meta(with_answers(source, {}), "ex0_1_visible", "points", "abc"))
    course.submit("meta-not-dict", LESSON, set_grade_meta(with_answers(source, {}), "ex0_1_gru_shapes", None, "x"))


def toolkit(course, tmp, *args):
    env = dict(os.environ, COURSE_ROOT=str(course.root), COURSE_DB_URL=course.db_url, COURSE_CELL_TIMEOUT="60",
               COURSE_KERNEL_MEMORY="1536M", COURSE_OUTPUT_TOTAL="4M", TMPDIR=str(tmp))
    env.pop("COURSE_SANDBOX", None)
    return subprocess.run([sys.executable, "-m", "grading.toolkit", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    course = TempCourse(tmp_path_factory.mktemp("uploads"), [LESSON])
    make_class(course)
    tmp = tempfile.mkdtemp(prefix="gu-", dir="/tmp")  # short: Unix socket paths are limited to 107 bytes
    try:
        runs = {command: toolkit(course, tmp, command, *(["--jobs", "2"] if command == "autograde" else []))
                for command in ("autograde", "feedback", "export")}
        leftovers = os.listdir(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for command, run in runs.items():
        print(command, run.returncode, run.stdout, run.stderr)
    return course, runs, leftovers


def summary(course):
    return read_summary(course.root / "grading" / "autograde-summary.csv")


def test_the_batch_completes_with_exit_0_and_the_honest_scores_intact(batch):
    course, runs, _ = batch
    assert runs["autograde"].returncode == 0, runs["autograde"].stdout + runs["autograde"].stderr
    rows = summary(course)
    for student, (score, reason) in HONEST.items():
        row = rows[(student, LESSON)]
        assert (row["status"], float(row["score"])) == ("graded", score), row
        assert reason in row["reason"] and (reason or row["reason"] == ""), row
    assert set(rows) == {(s, LESSON) for s in [*HONEST, "resources", "mallory", "points-str", "meta-not-dict"]}


def test_ids_that_break_the_rule_are_refused_by_name(batch):
    course, runs, _ = batch
    refused = runs["autograde"].stdout.split("refused (not graded, not recorded):", 1)[1]
    for student in BAD_IDS:
        assert f"grading/submitted/{student}: refused: student id" in refused, student
    with opened(course.db_url) as gb:
        assert not {s.id for s in gb.students} & set(BAD_IDS)
    for folder in (course.root / "grading" / "feedback").iterdir():
        assert folder.name not in BAD_IDS


def test_submissions_that_crash_nbgrader_are_recorded_with_the_reason(batch):
    course, runs, _ = batch
    rows = summary(course)
    # A check cell's metadata that crashed nbgrader (points "abc") is never used: the instructor's cells are graded,
    # with the learner's answer cells in them, so the submission gets its honest score.
    assert (rows[("points-str", LESSON)]["status"], float(rows[("points-str", LESSON)]["score"])) == ("graded", 7)
    assert rows[("meta-not-dict", LESSON)]["status"] == "not-gradable"
    assert rows[("meta-not-dict", LESSON)]["reason"].startswith("malformed nbgrader metadata: cell 18")
    assert ", 0 errors" in runs["autograde"].stdout and "the next run retries them" not in runs["autograde"].stdout


def test_shared_memory_counts_against_the_memory_cap(batch):
    from grading.toolkit import quotas

    course, _, _ = batch
    if quotas.cgroup_base() is None:
        pytest.skip("no memory cgroup can be made here: shared memory is bounded only by the sandbox's tmpfs sizes")
    row = summary(course)[("resources", LESSON)]
    assert "ex0_3_initial_state: the kernel died" in row["reason"] and float(row["score"]) == 5, row
    assert "SHARED ALLOCATED" not in graded_outputs(course, "resources")


def graded_outputs(course, student):
    nb = nbformat.read(str(course.root / "grading" / "autograded" / student / LESSON / f"{LESSON}.ipynb"), 4)
    return "".join(str(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_the_ipc_folder_is_capped_and_removed_after_the_kernel(batch):
    course, _, leftovers = batch
    assert leftovers == []  # no IPC folder, no worker folder left in the run's temporary folder
    if os.geteuid() == 0:
        assert re.search(r"IPC stopped at \d MiB: No space left on device", graded_outputs(course, "resources"))
    from grading.toolkit import quotas

    base = quotas.cgroup_base()  # and no memory cgroup left behind (other tests' kernels may be running now)
    left = [] if base is None else [g for g in base[1].glob(f"{quotas.CGROUP_PREFIX}*")
                                    if g.is_dir() and not (g / "cgroup.procs").read_text().strip()]
    assert not left, left


def test_output_is_capped_per_submission_and_the_row_says_so(batch):
    course, runs, _ = batch
    row = summary(course)[("mallory", LESSON)]
    assert float(row["score"]) == 5 and "output cut (over the output cap" in row["reason"], row
    graded = course.root / "grading" / "autograded" / "mallory" / LESSON / f"{LESSON}.ipynb"
    assert graded.stat().st_size < 9 * 2**20
    page = course.root / "grading" / "feedback" / "mallory" / LESSON / f"{LESSON}.html"
    assert page.stat().st_size < 8 * 2**20


def test_summaries_csv_and_terminal_lines_carry_no_control_characters(batch):
    course, runs, _ = batch
    row = summary(course)[("mallory", LESSON)]
    assert "ex0_2_parameter_count: ValueError: red =HYPERLINK(1),7,graded" in row["reason"], row
    texts = [(course.root / "grading" / "autograde-summary.csv").read_text(), runs["autograde"].stdout,
             runs["feedback"].stdout, runs["export"].stdout, (course.root / "grading" / "grades.csv").read_text(),
             (course.root / "grading" / "summary" / "summary.md").read_text()]
    for text in texts:
        found = CONTROL.search(text.replace("\r\n", "\n"))
        assert not found, repr(text[max(0, found.start() - 80):found.end() + 80])
    with open(course.root / "grading" / "autograde-summary.csv", newline="") as f:
        assert {len(r) for r in csv.reader(f)} == {9}


def test_feedback_pages_hold_no_link_that_runs_code(batch):
    from grading.toolkit.safe_html import unsafe_urls

    course, runs, _ = batch
    assert runs["feedback"].returncode == 0, runs["feedback"].stdout + runs["feedback"].stderr
    page = (course.root / "grading" / "feedback" / "mallory" / LESSON / f"{LESSON}.html").read_text()
    assert unsafe_urls(page) == [] and "#harmful-link" in page


def test_export_lists_every_submission_that_needs_a_look(batch):
    course, runs, _ = batch
    assert runs["export"].returncode == 0, runs["export"].stdout + runs["export"].stderr
    review = (course.root / "grading" / "summary" / "summary.md").read_text().split("## To review", 1)[1]
    for student in ("meta-not-dict", "mallory"):
        assert f"| {student} | {LESSON} |" in review, student
    for student in HONEST:
        assert f"| {student} |" not in review
    with open(course.root / "grading" / "grades.csv", newline="") as f:
        scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    assert {s: scores[s] for s in HONEST} == {s: float(v[0]) for s, v in HONEST.items()}
