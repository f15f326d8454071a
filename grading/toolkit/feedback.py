"""``make feedback``: one HTML page per student and lesson in ``grading/feedback/<student>/<lesson>/``.

nbgrader's ``generate_feedback`` makes the pages from the autograded notebooks; ``grading/nbgrader_config.py``
adds ``RedactHiddenTests`` to it, so hidden test code never reaches a page (a failed hidden check shows its
error name and message: which check failed and why). As a safety net every page is then searched for the lines
of the hidden tests; a page that contains one is deleted and the command fails. A submission that could not be
graded gets a short page with its reason.

What a learner wrote cannot run in a page: Markdown links and images keep only safe URL schemes
(``safe_html.SafeHTMLExporter``), and a page with a ``javascript:``/``data:`` URL left in it is withheld. Pages
are of bounded size (``budget.LimitFeedback``); the ones that were cut are listed. Student folders whose name
breaks the id rule (``ids.py``) get no page.
"""

import html
import re
import shutil
from contextlib import contextmanager

import nbformat

from course.commands import nbgrader
from grading.toolkit.budget import FEEDBACK_CUT_NOTE
from grading.toolkit.diagnose import without_hidden_tests
from grading.toolkit.ids import id_problem
from grading.toolkit.integrity import encoded_leaks, links_in
from grading.toolkit.preprocessors import hidden_lines
from grading.toolkit.safe_html import unsafe_urls
from grading.toolkit.safetext import clean
from grading.toolkit.shard import class_summary

TAG = re.compile(r"<[^>]+>")
PAGE_LIMIT = 64 * 2**20  # LimitFeedback keeps a page far below this; a bigger one is withheld


def feedback(course, wanted=None, out=print):
    """Feedback for every lesson with autograded notebooks (or only the ``wanted`` ones); returns the exit code."""
    summary = class_summary(course)  # every shard's summary file
    graded = {p.name for p in course.autograded.glob("*/*") if p.is_dir() and not p.name.startswith(".")}
    lessons = sorted(lesson for lesson in graded if not wanted or lesson in wanted)
    refused = [p for p in course.autograded.glob("*/*") if p.name in lessons and links_in(p)]
    for folder in refused:  # the toolkit never puts a link there; whatever did, nbgrader must not follow it
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder)
        out(f"refused {folder.relative_to(course.root)}: it contains links (never followed); no feedback made")
    bad_ids = [p for p in course.autograded.glob("*") if p.is_dir() and id_problem(p.name)]
    for folder in bad_ids:
        out(clean(f"refused {folder.relative_to(course.root)}: {id_problem(folder.name)}; no feedback made"))
    with set_aside(bad_ids):  # nbgrader makes a page for every folder it finds
        for lesson in lessons:
            nbgrader(["generate_feedback", lesson, "--force"], course.root, course.db_url)
    leaked, unsafe, cut, pages = [], [], [], 0
    for lesson in lessons:
        secrets = secret_lines(course, lesson)
        for graded_folder in course.autograded.glob(f"*/{lesson}"):
            for page in (course.feedback / graded_folder.parent.name / lesson).glob("*.html"):
                pages += 1
                if page.stat().st_size > PAGE_LIMIT:
                    withhold(page, "it is too large to show")
                    unsafe.append(page)
                    continue
                text = page.read_text(encoding="utf-8")
                if leaks(text, secrets):
                    withhold(page)
                    leaked.append(page)
                elif unsafe_urls(text):
                    withhold(page, "it would have held a link that runs code")
                    unsafe.append(page)
                elif FEEDBACK_CUT_NOTE in page_text(text):  # code is highlighted: tags between the words
                    cut.append(page)

    placeholders = 0
    for (student, lesson), row in sorted(summary.items()):
        if row["status"] == "graded" or (wanted and lesson not in wanted) or id_problem(student):
            continue
        write_placeholder(course, student, lesson, row)
        placeholders += 1

    shown = pages - len(leaked) - len(unsafe)
    out(f"feedback: {shown} pages from nbgrader and {placeholders} for submissions that could "
        f"not be graded, in {course.feedback.relative_to(course.root)}/<student>/<lesson>/")
    if cut:
        out("cut: these pages show only part of the notebook (over the size limit of a feedback page):\n  "
            + "\n  ".join(clean(p.relative_to(course.root)) for p in cut))
    if unsafe:
        out("ERROR: these pages were withheld (a link that runs code, or too large to show):\n  "
            + "\n  ".join(clean(p.relative_to(course.root)) for p in unsafe))
    if leaked:
        out("ERROR: hidden test code found in these pages (perhaps encoded); they were replaced by a notice "
            "that the feedback is withheld:\n  "
            + "\n  ".join(clean(p.relative_to(course.root)) for p in leaked))
    return 1 if leaked or unsafe else 0


@contextmanager
def set_aside(folders):
    """Hide ``folders`` from nbgrader meanwhile (a name starting with "." is never a student), then put them back."""
    moved = []
    try:
        for index, folder in enumerate(folders):
            hidden = folder.with_name(f".refused-{index}")
            folder.rename(hidden)
            moved.append((hidden, folder))
        yield
    finally:
        for hidden, folder in moved:
            hidden.rename(folder)


def secret_lines(course, lesson):
    """Lines of the lesson's hidden checks (``hidden_checks.py`` and the hidden part of its check cells) that
    appear nowhere in what learners get (short or shared lines such as ``import random`` reveal nothing)."""
    folder = course.solutions / lesson
    source = nbformat.read(str(folder / f"{lesson}.ipynb"), as_version=4)
    public = "\n".join(without_hidden_tests(c.source) for c in source.cells)
    public += "".join(path.read_text() for path in folder.glob("*.py") if path.name != "hidden_checks.py")
    hidden = [line for cell in source.cells for line in hidden_lines(cell.source)]
    module = folder / "hidden_checks.py"
    if module.is_file():
        hidden += [line.strip() for line in module.read_text().splitlines() if not line.strip().startswith("#")]
    boilerplate = ("import hidden_checks", "hidden_checks.")  # the hidden cell's call: it reveals no check
    return [line for line in dict.fromkeys(hidden)
            if len(line) >= 12 and line not in public and not line.startswith(boilerplate)]


def page_text(page_html):
    """What a reader of the page sees: tags (syntax highlighting splits code into many) and entities removed."""
    return html.unescape(TAG.sub("", page_html))


def leaks(page_html, secrets):
    """The hidden-test lines a reader of the page could recover: as text, or encoded (base64, hex, zlib, ...)."""
    text = page_text(page_html)
    return [line for line in secrets if line in text] or encoded_leaks(text, secrets)


def withhold(page, why="it would have shown hidden test code"):
    page.write_text("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Feedback withheld</title>"
                    f"</head><body><p>The feedback on this submission is withheld: {why}. Ask your instructor."
                    "</p></body></html>\n", encoding="utf-8")


def write_placeholder(course, student, lesson, row):
    folder = course.feedback / student / lesson
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in ("timestamp.txt", "submission_secret.txt"):  # what `nbgrader release_feedback` needs beside it
        if (course.submitted / student / lesson / name).is_file():
            shutil.copy(course.submitted / student / lesson / name, folder / name)
    status = "could not be graded" if row["status"] == "not-gradable" else "could not be graded automatically"
    (folder / f"{lesson}.html").write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(lesson)}: feedback for {html.escape(student)}</title>
</head><body>
<h1>{html.escape(lesson)}</h1>
<p>Student: {html.escape(student)}.
Score: <strong>{html.escape(row["score"])} / {html.escape(row["max_score"])}</strong>.</p>
<p>Your submission {status}: {html.escape(row["reason"])}.</p>
<p>Submit the notebook <code>{html.escape(lesson)}.ipynb</code> as you downloaded it from the course and saved it
in Jupyter, or ask your instructor.</p>
</body></html>
""", encoding="utf-8")
