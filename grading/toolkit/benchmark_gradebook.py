"""How long the gradebook takes to record one submission: the part of grading that a run does in one process,
and that N shards do at the same time on one server. No kernels: the grades are made up.

    python -m grading.toolkit.benchmark_gradebook [--db-url postgresql://...] [--submissions 200] [--writers 2]

Prints, for an SQLite gradebook in a temporary folder and for ``--db-url`` (an empty PostgreSQL database you
created), the seconds per recorded submission with one writer and with ``--writers`` processes at once (each
its own students, as shards), and whether any write failed.
"""

import argparse
import multiprocessing
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from course.commands import nbgrader
from course.lessons import SOLUTIONS
from grading.toolkit.gradebook import opened, record, sqlite_url, zero_submission

LESSON = "00-orientation"


def release(db_url, scratch):
    """Record the lesson in the gradebook, as ``make release`` does."""
    root = Path(scratch) / "course"
    shutil.copytree(SOLUTIONS / LESSON, root / "solutions" / LESSON)
    (root / "grading").mkdir(parents=True)
    nbgrader(["generate_assignment", LESSON, "--force"], root, db_url)


def write(db_url, students, barrier=None, results=None):
    """Record ``students`` (after every writer is ready, with ``barrier``); (seconds, error or "")."""
    try:
        with opened(db_url) as gb:
            graded = zero_submission(gb, LESSON)
            for nb in graded["notebooks"].values():
                nb["grades"] = {name: 1.0 for name in nb["grades"]}
            if barrier is not None:
                barrier.wait()  # start together: process start-up is not part of the figure
            start = time.perf_counter()
            for student in students:
                record(gb, LESSON, student, graded)
            answer = (time.perf_counter() - start, "")
    except Exception:
        answer = (0.0, traceback.format_exc().strip().splitlines()[-1])
    if results is not None:
        results.put(answer)
    return answer


def measure(db_url, prefix, n, writers):
    """(s per submission alone, s per submission with ``writers`` at once (the slowest writer's time over all
    their submissions), rows in the gradebook, errors)."""
    alone, error = write(db_url, [f"{prefix}-alone-{i}" for i in range(n)])
    per_writer = n // writers
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(writers), context.Queue()
    processes = [context.Process(target=write, args=(db_url, [f"{prefix}-w{w}-{i}" for i in range(per_writer)],
                                                     barrier, results)) for w in range(writers)]
    for process in processes:
        process.start()
    answers = [results.get() for _ in processes]
    for process in processes:
        process.join()
    errors = [e for _, e in answers if e] + ([error] if error else [])
    with opened(db_url) as gb:
        rows = len(gb.find_assignment(LESSON).submissions)
    return alone / n, max(t for t, _ in answers) / (per_writer * writers), rows, errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-url", help="a server gradebook to measure besides SQLite (an empty database)")
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--writers", type=int, default=2)
    args = parser.parse_args(argv)
    n = args.submissions
    print(f"{n} submissions of {LESSON} recorded by one writer, then {n} by {args.writers} writers at once")
    print("| gradebook | one writer: s per submission | writers at once: s per submission (wall) | rows | errors |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="benchmark-gradebook-") as scratch:
        urls = [("SQLite", sqlite_url(Path(scratch) / "gradebook.db"))]
        if args.db_url:
            urls.append((args.db_url.split(":")[0], args.db_url))
        for index, (name, url) in enumerate(urls):
            release(url, Path(scratch) / str(index))
            alone, together, rows, errors = measure(url, "student", n, args.writers)
            print(f"| {name} | {alone:.4f} | {together:.4f} | {rows} | {'; '.join(errors) or 'none'} |", flush=True)


if __name__ == "__main__":
    main()
