"""Grade one submission in a scratch course of its own, with nbgrader's autograde run in this process.

A worker process (``serve``) imports nbgrader once and grades one submission after another: that saves the
couple of seconds nbgrader takes to import on every submission. Each submission gets a fresh scratch course
root: its lesson's source (a link to ``solutions/<lesson>``), a copy of the template gradebook (SQLite, only
this submission in it) and the student's files. Nothing a worker does touches the real gradebook; the main
process records the result (see ``autograde.py``).
"""

import io
import logging
import os
import shutil
import signal
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from grading.toolkit import diagnose, integrity
from grading.toolkit.gradebook import read_submission, sqlite_url
from grading.toolkit.settings import CONFIG_DIR

GRADED, NOT_GRADABLE, ERROR = "graded", "not-gradable", "error"


@dataclass
class Job:
    student: str
    lesson: str
    folder: str  # the submission: grading/submitted/<student>/<lesson>
    solutions: str  # the course's solutions/ (nbgrader's source)
    release: str  # the student version of the lesson notebook, to spot edited read-only cells
    template_db: str
    scratch: str
    cell_timeout: int
    kernel_memory: int
    fingerprint: str = ""
    threads: int = 0  # CPU threads for the kernel's torch/OpenMP (0: their default, one per core)


def result(job, status, reason, graded=None, autograded=None, started=None, log=""):
    return {
        "student": job.student, "lesson": job.lesson, "status": status, "reason": reason, "graded": graded,
        "autograded": str(autograded) if autograded else None, "fingerprint": job.fingerprint,
        "seconds": round(time.monotonic() - started, 2) if started else 0.0, "log": log[-4000:],
    }


def grade(job):
    started = time.monotonic()
    scratch = Path(job.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    refused = integrity.submission_problem(job.folder)  # links are refused before anything reads the folder
    if refused:
        return result(job, NOT_GRADABLE, refused, started=started)
    notebook_path, note = diagnose.find_notebook(job.folder, job.lesson)
    if notebook_path is None:
        return result(job, NOT_GRADABLE, note, started=started)
    refused = integrity.submission_problem(job.folder, notebook_path)
    if refused:
        return result(job, NOT_GRADABLE, refused, started=started)
    nb, problem = diagnose.read_notebook(notebook_path)
    if nb is None:
        return result(job, NOT_GRADABLE, problem, started=started)
    notes = [note] if note else []
    # Only the learner's answer cells are taken from the submission; every other cell is the instructor's.
    nb, assembly_notes = diagnose.assemble(nb, nbformat.read(job.release, as_version=4))
    notes += assembly_notes

    db = scratch / "grading" / "gradebook.db"
    prepare_scratch_course(job, nb, scratch, db)
    env = dict(COURSE_ROOT=str(scratch), COURSE_DB_URL=sqlite_url(db), COURSE_CELL_TIMEOUT=str(job.cell_timeout),
               COURSE_KERNEL_MEMORY=str(job.kernel_memory), COURSE_TRUSTED_CHECKS="1")
    if job.threads and "OMP_NUM_THREADS" not in os.environ:
        # JOBS kernels at once, each with a thread per core, would fight over the cores: share them out.
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(job.threads)
    returncode, log = run_nbgrader(["autograde", job.lesson, "--student", job.student, "--force"], **env)
    autograded = scratch / "grading" / "autograded" / job.student / job.lesson
    graded_nb = autograded / f"{job.lesson}.ipynb"
    if returncode != 0 or not graded_nb.is_file():
        errors = [line for line in log.splitlines() if "ERROR" in line or "Error" in line]
        why = errors[-1].strip() if errors else f"exit code {returncode}"
        return result(job, ERROR, f"nbgrader could not grade it: {why[:300]}", started=started, log=log)

    graded_notebook = nbformat.read(str(graded_nb), as_version=4)
    problems, failed = diagnose.grading_problems(graded_notebook, job.cell_timeout, job.kernel_memory)
    graded = read_submission(sqlite_url(db), job.lesson, job.student)
    # nbgrader comments "No response." on answer cells left as released
    blank = [cell for nb in graded["notebooks"].values() for cell, comment in nb["comments"].items()
             if comment == "No response."]
    if blank:
        notes.append(f"not answered: {', '.join(blank)}")
    return result(job, GRADED, diagnose.reason(notes + problems, failed), graded, autograded, started, log)


def prepare_scratch_course(job, nb, scratch, db):
    (scratch / "solutions").mkdir(parents=True)
    # nbgrader copies the lesson's data files from the source folder; a link is enough, nothing is written there.
    # The grading kernel never sees the scratch course (sandbox.py): it gets read-only copies of the data files.
    (scratch / "solutions" / job.lesson).symlink_to(Path(job.solutions) / job.lesson, target_is_directory=True)
    db.parent.mkdir(parents=True)
    shutil.copyfile(job.template_db, db)
    # The notebook alone: a student's other files never reach the kernel (nbgrader adds the lesson's own files).
    target = scratch / "grading" / "submitted" / job.student / job.lesson
    target.mkdir(parents=True)
    nbformat.write(nb, str(target / f"{job.lesson}.ipynb"))


def run_nbgrader(args, **env):
    """``nbgrader ARGS`` in this process, from grading/ (where the config is), with ``env`` set meanwhile:
    (exit code, log). The same way nbgrader's own test-suite runs it."""
    from jupyter_core.application import NoStart
    from nbgrader.apps import NbGraderApp

    saved = os.environ.copy()
    os.environ.update(env)
    buffer = io.StringIO()
    app = NbGraderApp.instance()
    try:
        app.initialize(args)
        app.init_logging(logging.StreamHandler, [buffer], color=False, subapps=True)
        app.start()
        code = 0
    except NoStart:  # how a jupyter application with subcommands says it finished
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except Exception:
        buffer.write(traceback.format_exc())
        code = 1
    finally:
        app.reset()
        os.environ.clear()
        os.environ.update(saved)
    return code, buffer.getvalue()


def serve(connection, log_path):
    """Worker process: receive ``Job``s as dicts, send back results, until ``None`` or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's job: it stops the workers
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)  # nbgrader's and the kernels' chatter goes to the log, not the instructor's terminal
    os.dup2(log, 2)
    os.chdir(CONFIG_DIR)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job = Job(**message)
        try:
            answer = grade(job)
        except Exception:
            answer = result(job, ERROR, "the toolkit failed: " + traceback.format_exc().strip().splitlines()[-1],
                            log=traceback.format_exc())
        try:
            connection.send(answer)
        except (BrokenPipeError, OSError):
            return


def as_message(job):
    return asdict(job)
