"""``make autograde``: grade every submission in ``grading/submitted/<student>/<lesson>/``, JOBS at a time.

- Workers (``worker.py``) grade in scratch courses; only this process writes the gradebook, one transaction per
  submission, as each result arrives. So parallel grading cannot lock the database or lose a row, and a run
  stopped at any point (Ctrl-C, kill, crash) keeps everything recorded before it.
- ``grading/autograde-summary.csv`` has one row per submission: score, status, reason, and a fingerprint of the
  files and of the lesson's checks. A re-run skips submissions whose fingerprint is unchanged and that the
  gradebook holds; it grades the new, changed and unfinished ones (``--force``: everything again).
- Status ``graded``: nbgrader ran the notebook (the reason lists what went wrong in it, if anything);
  ``not-gradable``: no notebook, not a notebook, a notebook that crashes nbgrader, or it ran past the submission
  time limit: recorded as 0 with the reason; ``error``: grading itself failed (the toolkit or a worker crashed,
  nbgrader cannot grade even the lesson's blank notebook): recorded as 0 and retried by the next run.
- A folder whose name breaks the student id rule (``ids.py``) is refused: not graded, not recorded, listed.
- Exit status: 0 when every submission got a grade or a recorded reason; 1 when grading itself failed for some
  (status ``error``); 2 when grading could not start (no sandbox, another run holds the lock); 130 when
  interrupted (Ctrl-C, ``kill``): everything recorded so far is kept.
"""

import multiprocessing
import os
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from multiprocessing.connection import wait
from pathlib import Path

import nbformat

from course.lessons import lesson_names
from grading.toolkit import gradebook, quotas, sandbox
from grading.toolkit.diagnose import folder_fingerprint
from grading.toolkit.ids import id_problem
from grading.toolkit.progress import Progress
from grading.toolkit.safetext import clean
from grading.toolkit.settings import cell_timeout, default_jobs, format_bytes, kernel_memory, submission_timeout
from grading.toolkit.shard import describe, in_shard
from grading.toolkit.summary import SUMMARY_FIELDS, read_summary, write_summary  # noqa: F401 (the tests import them here)
from grading.toolkit.worker import ERROR, GRADED, NOT_GRADABLE, Job, as_message, result, serve


class Interrupted(Exception):
    pass


class Busy(SystemExit):
    """Another autograde of this course (or shard) holds the lock."""


# --- what to grade -------------------------------------------------------------------------------------------------

def find_submissions(course, lessons=None, students=None):
    """([(student, lesson, folder)], [(folder, why it is not graded)]): folders that are not a lesson of the
    course, and students whose folder name breaks the id rule."""
    known = set(lesson_names(course.solutions))
    found, skipped = [], []
    if not course.submitted.is_dir():
        return found, skipped
    for student_dir in sorted(p for p in course.submitted.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if students and student_dir.name not in students:
            continue
        if id_problem(student_dir.name):
            skipped.append((student_dir, f"refused: {id_problem(student_dir.name)}; not graded (rename the folder)"))
            continue
        for folder in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if lessons and folder.name not in lessons:
                continue
            if folder.name in known:
                found.append((student_dir.name, folder.name, folder))
            else:
                skipped.append((folder, f"'{folder.name}' is not a lesson of this course"))
    return found, skipped


@contextmanager
def single_run(course):
    """One autograde at a time per course: a second one stops at once instead of grading the same files."""
    course.grading.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(course.lock_file, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy("another autograde of this course is running; wait for it to finish") from None
        yield


# --- the worker pool -------------------------------------------------------------------------------------------------

class Worker:
    """A ``worker.serve`` process and the job it is grading."""

    def __init__(self, context, log_path):
        self.connection, child = context.Pipe()
        # The kernels' IPC folders go in a folder of this worker's own, emptied whenever it is replaced.
        self.ipc_root = quotas.new_ipc_root(Path(log_path).stem)
        self.process = context.Process(target=serve, args=(child, str(log_path), str(self.ipc_root)), daemon=True)
        self.process.start()
        child.close()
        self.job, self.deadline = None, None

    def give(self, job, seconds):
        self.job, self.deadline = job, time.monotonic() + seconds
        self.connection.send(as_message(job))

    def kill(self):
        """Stop the worker and its kernel at once (the kernel runs in a session of its own)."""
        try:
            import psutil

            children = psutil.Process(self.process.pid).children(recursive=True)
        except Exception:
            children = []
        for child in children:
            try:
                child.kill()
            except Exception:
                pass
        self.process.kill()
        self.process.join(5)
        self.clean_up()

    def ask_to_stop(self):
        try:
            self.connection.send(None)
        except (BrokenPipeError, OSError):
            pass

    def wait_stopped(self):
        """After ``ask_to_stop``: the worker ends, or is killed after 5 s."""
        self.process.join(5)
        if self.process.is_alive():
            self.kill()
        self.clean_up()

    def clean_up(self):
        """What the worker's kernels leave when they are killed with it: IPC folders, memory cgroups."""
        quotas.remove_ipc_root(self.ipc_root)
        quotas.remove_cgroups(self.process.pid)


class Pool:
    """``n`` worker processes. They start as soon as a run knows it has submissions, and load nbgrader and PyTorch
    while this process prepares the gradebook (``worker.serve``)."""

    def __init__(self, n, work_dir):
        self.context = multiprocessing.get_context("spawn")  # a clean interpreter: no forked threads or databases
        self.work_dir = work_dir
        self.workers = [self._new(index) for index in range(n)]

    def _new(self, index):
        return Worker(self.context, self.work_dir / f"worker-{index}.log")

    def run(self, jobs, on_result):
        """Grade ``jobs``, in this order; call ``on_result(result)`` here, in this process, for each."""
        queue = list(reversed(jobs))
        limit = submission_timeout()
        workers = self.workers
        while queue or any(w.job for w in workers):
            for index, worker in enumerate(workers):
                if worker.job is None and queue:
                    if not worker.process.is_alive():
                        workers[index] = worker = self._new(index)
                    worker.give(queue.pop(), limit)
            busy = {w.connection: w for w in workers if w.job}
            for connection in wait(list(busy), timeout=1.0):
                worker = busy[connection]
                try:
                    answer = connection.recv()
                except (EOFError, OSError):
                    answer = result(worker.job, ERROR, "the grading worker crashed (see grading/.work/*.log)")
                    worker.kill()
                worker.job = None
                on_result(answer)
            for index, worker in enumerate(workers):
                if worker.job and time.monotonic() > worker.deadline:
                    job = worker.job
                    worker.kill()
                    workers[index] = self._new(index)
                    on_result(result(job, NOT_GRADABLE, f"grading stopped after {limit:g} s (the submission time "
                                                        f"limit): the notebook did not finish"))

    def close(self):
        """Kill the workers still grading (an interrupted run); stop the others, all at once."""
        idle = []
        for worker in self.workers:
            if worker.job:
                worker.kill()
            else:
                worker.ask_to_stop()
                idle.append(worker)
        for worker in idle:
            worker.wait_stopped()


# --- the command -----------------------------------------------------------------------------------------------------

def autograde(course, lessons=None, students=None, jobs=None, force=False, out=print):
    """Grade, record and summarise; returns the exit status (module docstring). Raises ``Busy`` when another
    run of this course holds the lock."""
    jobs = jobs or default_jobs()
    try:
        sandbox.check()  # refuse (how to install bubblewrap) rather than grade hostile code unsandboxed
    except sandbox.SandboxUnavailable as refused:
        out(f"error: {refused}")
        return 2
    out(sandbox.describe())
    out(quotas.describe(kernel_memory()))
    with single_run(course):  # another run of this course: Busy, exit status 2 (__main__.py)
        found, skipped = find_submissions(course, lessons, students)
        mine = [s for s in found if in_shard(course, s[0])]  # --shard i/N: this shard's students only
        if describe(course, mine, found):  # only with --shard
            out(describe(course, mine, found))
        found = mine
        for folder, why in skipped:
            out(clean(f"skipped {folder.relative_to(course.root)}: {why}"))
        if not found:
            out("no submissions to grade in " + str(course.submitted.relative_to(course.root)))
            return 0
        shutil.rmtree(course.work, ignore_errors=True)
        course.work.mkdir(parents=True)
        pool = Pool(min(jobs, len(found)), course.work)
        try:
            todo, summary = prepare(course, found, force, jobs, out)
            return grade_all(course, pool, todo, summary, jobs, out, skipped)
        finally:
            pool.close()
            shutil.rmtree(course.work, ignore_errors=True)


def prepare(course, found, force, jobs, out):
    """(the jobs to run, longest first; the summary so far): the gradebook gets any lesson it lacks, and the
    template gradebook the workers grade into."""
    needed = sorted({lesson for _, lesson, _ in found})
    for lesson in gradebook.ensure_lessons(course, needed):
        out(f"recorded {lesson} in the gradebook (it was not released into this gradebook yet)")
    checks = gradebook.lesson_fingerprints(course.db_url, needed)
    summary = read_summary(course.summary_csv)
    template = course.work / "template.db"
    gradebook.write_template(course.db_url, needed, template)
    todo = plan(course, found, checks, summary, template, force, threads=max(1, default_jobs() // jobs))
    out(f"grading {len(todo)} submissions with {min(jobs, max(1, len(todo)))} jobs "
        f"({len(found) - len(todo)} unchanged and already graded; cell timeout {cell_timeout()} s, "
        f"kernel memory cap {format_bytes(kernel_memory())})")
    return longest_first(todo), summary


def grade_all(course, pool, todo, summary, jobs, out, skipped):
    """Grade ``todo`` on ``pool``, recording each result as it arrives; report; the exit status."""
    done = []
    started = time.monotonic()
    progress = Progress(len(todo), out)  # a bar in a terminal, else a line per submission
    with opened_gradebook(course) as gb, sigterm_as_interrupt():
        def on_result(answer):
            row = save(course, gb, answer, summary)
            done.append(row)
            progress.update(row)
        try:
            pool.run(todo, on_result)
        except (KeyboardInterrupt, Interrupted):
            out(f"\ninterrupted: {len(done)} of {len(todo)} submissions graded and saved; "
                f"run the same command again to grade the rest")
            return 130
        finally:
            progress.close()
    report(course, done, time.monotonic() - started, jobs, out, skipped)
    return 1 if any(row["status"] == ERROR for row in done) else 0


def longest_first(jobs):
    """The jobs, the longest expected first, so that no worker is left with a long notebook at the end while the
    others wait: lessons with more code cells first, and within a lesson the larger submissions (a file that is
    not a notebook takes no time)."""
    code_cells = {}
    for job in jobs:
        if job.lesson not in code_cells:
            try:
                release = nbformat.read(job.release, as_version=4)
                code_cells[job.lesson] = sum(cell.cell_type == "code" for cell in release.cells)
            except Exception:  # no release to count: order by size alone
                code_cells[job.lesson] = 0
    return sorted(jobs, key=lambda job: (code_cells[job.lesson], folder_size(job.folder)), reverse=True)


def folder_size(folder):
    try:
        return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file() and not path.is_symlink())
    except OSError:  # a file that went away or cannot be read: the worker will say so
        return 0


def plan(course, found, checks, summary, template, force, threads=0):
    """The jobs to run: every submission that is new, changed, or not completely in the gradebook."""
    todo = []
    with gradebook.opened(course.db_url) as gb:
        for student, lesson, folder in found:
            fingerprint = f"{folder_fingerprint(folder)}-{checks[lesson]}"
            row = summary.get((student, lesson))
            up_to_date = (
                row is not None and row["fingerprint"] == fingerprint
                and row["status"] in (GRADED, NOT_GRADABLE) and gradebook.is_recorded(gb, lesson, student)
                and (row["status"] == NOT_GRADABLE or (course.autograded / student / lesson).is_dir()))
            if force or not up_to_date:
                todo.append(Job(
                    student=student, lesson=lesson, folder=str(folder), solutions=str(course.solutions),
                    release=str(course.release / lesson / f"{lesson}.ipynb"), template_db=str(template),
                    scratch=str(course.work / f"{student}--{lesson}"), cell_timeout=cell_timeout(),
                    kernel_memory=kernel_memory(), fingerprint=fingerprint, threads=threads))
    return todo


@contextmanager
def opened_gradebook(course):
    with gradebook.opened(course.db_url) as gb:
        yield gb


@contextmanager
def sigterm_as_interrupt():
    """``kill <pid>`` stops a run as cleanly as Ctrl-C: workers stopped, scratch removed, grades kept."""
    def handler(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def save(course, gb, answer, summary):
    """Put one result in place: the autograded notebook, the gradebook (one transaction), the summary row."""
    student, lesson = answer["student"], answer["lesson"]
    target = course.autograded / student / lesson
    if answer["status"] == GRADED:
        staged = target.with_name(f".{lesson}.new")
        shutil.rmtree(staged, ignore_errors=True)
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(answer["autograded"], staged)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staged, target)
        graded = answer["graded"]
    else:
        shutil.rmtree(target, ignore_errors=True)  # an older grading of a file that is now broken
        graded = gradebook.zero_submission(gb, lesson)
    gradebook.record(gb, lesson, student, graded)
    max_score = sum(cell.max_score for nb in gb.find_assignment(lesson).notebooks
                    for cell in [*nb.grade_cells, *nb.task_cells])
    score = sum(v or 0 for nb in graded["notebooks"].values() for v in nb["grades"].values())
    summary[(student, lesson)] = {
        "student": student, "lesson": lesson, "score": f"{score:g}", "max_score": f"{max_score:g}",
        "status": answer["status"], "reason": clean(answer["reason"]), "seconds": answer["seconds"],
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # an error is retried by the next run: no fingerprint to match
        "fingerprint": answer["fingerprint"] if answer["status"] != ERROR else "",
    }
    write_summary(course.summary_csv, summary)
    shutil.rmtree(course.work / f"{student}--{lesson}", ignore_errors=True)
    if answer["status"] in (ERROR, NOT_GRADABLE) and answer.get("log"):  # the toolkit's, or nbgrader's crash
        log_dir = course.grading / "autograde-errors"
        log_dir.mkdir(exist_ok=True)
        (log_dir / f"{student}--{lesson}.log").write_text(answer["log"])
    return summary[(student, lesson)]


def report(course, rows, elapsed, jobs, out, skipped=()):
    refused = [(folder, why) for folder, why in skipped if why.startswith("refused")]
    if refused:
        out("\nrefused (not graded, not recorded):")
        for folder, why in refused:
            out(clean(f"  {folder.relative_to(course.root)}: {why}"))
    if not rows:
        out("nothing to grade: every submission is unchanged and in the gradebook (--force / FORCE=1 regrades)")
        return
    counts = {status: sum(r["status"] == status for r in rows) for status in (GRADED, NOT_GRADABLE, ERROR)}
    flagged = [r for r in rows if r["reason"]]
    if flagged:
        out("\nsubmissions with problems (all recorded; reasons also in the summary file):")
        width = max(len(f"{r['student']} {r['lesson']}") for r in flagged)
        for r in flagged:
            out(f"  {r['student'] + ' ' + r['lesson']:<{width}}  {r['score']:>5}/{r['max_score']:<5} "
                f"{r['status']:<12} {r['reason']}")
    per = f", {elapsed / len(rows):.1f} s per submission" if rows else ""
    out(f"\n{len(rows)} submissions in {elapsed:.0f} s with {jobs} jobs{per}: {counts[GRADED]} graded, "
        f"{counts[NOT_GRADABLE]} not gradable (recorded as 0), {counts[ERROR]} errors")
    if not sandbox.enabled():
        out(sandbox.OFF_WARNING)
    out(f"summary: {course.summary_csv.relative_to(course.root)}; grades: the gradebook ({course.db_url})")
    if counts[ERROR]:
        out(f"errors: the toolkit could not grade these; details in "
            f"{(course.grading / 'autograde-errors').relative_to(course.root)}/; the next run retries them")
        sys.stdout.flush()
