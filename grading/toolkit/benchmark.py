"""Time ``make autograde`` on a synthetic class: seconds per submission with 1 and 2 jobs, the speed-up, the
floor (starting a kernel and importing torch, which every graded notebook pays), and all of it with the grading
sandbox on and off, side by side; then the course's grader (checks judged outside the kernel) against a plain
``nbgrader autograde`` of the same class (checks in the kernel, one submission at a time), in the same run. Works in
a temporary course; the repository's gradebook and grading/ folder are not touched.

    python -m grading.toolkit.benchmark                          # 5 students x every released lesson
    python -m grading.toolkit.benchmark --students 6 --lessons 00-orientation --jobs 1 2 4 --sandbox on

The class mixes good and bad work, cycling per student and lesson through: the solution (twice), the untouched
student notebook, a syntax error in the first answer, and a file that is not a notebook. Endless loops are left
out: they would measure the cell timeout, not the toolkit.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from course.commands import nbgrader as run_nbgrader
from course.lessons import GRADING, NOTEBOOKS, SOLUTIONS, lesson_names, nbgrader, notebook_path, read
from grading.toolkit import sandbox
from grading.toolkit.autograde import autograde, read_summary
from grading.toolkit.gradebook import sqlite_url
from grading.toolkit.settings import Course, default_jobs


def with_syntax_error(nb):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and nbgrader(cell).get("solution"):
            cell.source = "def broken(:\n    pass\n"
            break
    return nb


VARIANTS = {
    "solution": lambda source, blank: source,
    "solution-again": lambda source, blank: source,
    "untouched": lambda source, blank: blank,
    "syntax-error": lambda source, blank: with_syntax_error(source),
    "not-a-notebook": None,
}


def build_class(root, lessons, students):
    (root / "grading").mkdir(parents=True)
    db_url = sqlite_url(root / "grading" / "gradebook.db")
    for lesson in lessons:
        shutil.copytree(SOLUTIONS / lesson, root / "solutions" / lesson)
        run_nbgrader(["generate_assignment", lesson, "--force"], root, db_url)
    names = list(VARIANTS)
    mix = dict.fromkeys(names, 0)
    variants = {}
    for lesson_index, lesson in enumerate(lessons):
        source, blank = read(notebook_path(lesson, root / "solutions")), read(notebook_path(lesson, root / "notebooks"))
        for i in range(students):
            variant = names[(i + lesson_index) % len(names)]
            mix[variant] += 1
            variants[(f"student{i:03d}", lesson)] = variant
            path = root / "grading" / "submitted" / f"student{i:03d}" / lesson / f"{lesson}.ipynb"
            path.parent.mkdir(parents=True)
            if VARIANTS[variant] is None:
                path.write_text("this upload is not a notebook")
            else:
                nbformat.write(VARIANTS[variant](source, blank), str(path))
    return Course(root, db_url), mix, variants


def kernel_floor(repeats=3):
    """Median seconds to start a kernel, import torch and shut it down: what every graded notebook costs (in the
    grading sandbox when COURSE_SANDBOX is on)."""
    import asyncio

    async def once():
        km = sandbox.SandboxedKernelManager(kernel_name="python3")
        await km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # its start-up chatter
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=120)
        await kc.execute_interactive("import torch", timeout=120)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        asyncio.run(once())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plain_run(lesson):
    """Seconds to run the lesson's solution top to bottom in a fresh kernel, as grading does (NBGRADER_EXECUTION
    set, so training demos are short), without nbgrader: the floor for that lesson."""
    from nbclient import NotebookClient

    path = notebook_path(lesson)
    nb = read(path)
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", shutdown_kernel="immediate",
                       resources={"metadata": {"path": str(path.parent)}}).execute(
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the kernel's start-up chatter
        return time.perf_counter() - start
    finally:
        del os.environ["NBGRADER_EXECUTION"]


def plain_nbgrader(course, lessons):
    """Seconds a plain ``nbgrader autograde`` (sandbox on, as grading/nbgrader_config.py sets it) takes for the class:
    one lesson after another, each submission after the other, every check in the kernel."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, COURSE_ROOT=str(course.root), COURSE_DB_URL=course.db_url, COURSE_SANDBOX="on",
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    for lesson in lessons:  # its exit code is not the point: some submissions are broken on purpose
        subprocess.run([str(bin_dir / "nbgrader"), "autograde", lesson, "--force"], cwd=GRADING, env=env,
                       capture_output=True, text=True)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=5)
    parser.add_argument("--lessons", nargs="*", default=None, help="default: every released lesson")
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--sandbox", nargs="*", default=["off", "on"], choices=["off", "on"])
    args = parser.parse_args(argv)
    lessons = args.lessons or lesson_names(NOTEBOOKS)
    saved = os.environ.get("COURSE_SANDBOX")

    with tempfile.TemporaryDirectory(prefix="benchmark-grading-") as scratch:
        course, mix, variants = build_class(Path(scratch) / "course", lessons, args.students)
        n = args.students * len(lessons)
        print(f"synthetic class: {args.students} students x {len(lessons)} lessons ({', '.join(lessons)}) = {n} "
              f"submissions; mix: {', '.join(f'{k} {v}' for k, v in mix.items())}")
        print(f"machine: {default_jobs()} cores available to this process, load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the start")
        plain = {lesson: min(plain_run(lesson) for _ in range(2)) for lesson in lessons}  # the 1st warms caches
        floors, results, graded_times = {}, {}, {}
        try:
            for mode in args.sandbox:
                os.environ["COURSE_SANDBOX"] = mode
                floors[mode] = kernel_floor()
                print(f"sandbox {mode}: floor (kernel start-up + import torch + shutdown) {floors[mode]:.2f} s",
                      flush=True)
                for jobs in args.jobs:
                    start = time.perf_counter()
                    code = autograde(course, jobs=jobs, force=True, out=lambda *a: None)
                    elapsed = time.perf_counter() - start
                    rows = read_summary(course.summary_csv).values()
                    graded_times[mode, jobs] = {lesson: statistics.median(
                        float(r["seconds"]) for r in rows
                        if r["lesson"] == lesson and variants[(r["student"], lesson)].startswith("solution"))
                        for lesson in lessons}
                    results[mode, jobs] = elapsed
                    print(f"sandbox {mode}, JOBS={jobs}: {elapsed:6.1f} s in all, {elapsed / n:5.2f} s per "
                          f"submission{'' if code == 0 else '; EXIT CODE ' + str(code)}", flush=True)
        finally:
            if saved is None:
                os.environ.pop("COURSE_SANDBOX", None)
            else:
                os.environ["COURSE_SANDBOX"] = saved
        modes = args.sandbox
        print("\n| | " + " | ".join(f"sandbox {m}" for m in modes) + (" | sandbox cost |" if len(modes) == 2 else " |"))
        print("|---" * (len(modes) + 1 + (len(modes) == 2)) + "|")

        def row(label, values, unit="s"):
            cells = [f"{v:.2f} {unit}" for v in values]
            if len(values) == 2:
                cells.append(f"{100 * (values[1] - values[0]) / values[0]:+.1f} %")
            print(f"| {label} | " + " | ".join(cells) + " |")

        row("floor: kernel start-up + import torch", [floors[m] for m in modes])
        for jobs in args.jobs:
            row(f"JOBS={jobs}: wall time for the class", [results[m, jobs] for m in modes])
            row(f"JOBS={jobs}: seconds per submission", [results[m, jobs] / n for m in modes])
        first = args.jobs[0]
        for lesson in lessons:
            row(f"{lesson}: a solution graded (JOBS={first}, median; plain run {plain[lesson]:.2f} s)",
                [graded_times[m, first][lesson] for m in modes])
        if "on" in modes and 2 in args.jobs:
            os.environ["COURSE_SANDBOX"] = "on"
            try:
                in_kernel = plain_nbgrader(course, lessons)
            finally:
                os.environ.pop("COURSE_SANDBOX", None) if saved is None else os.environ.update(COURSE_SANDBOX=saved)
            trusted = results["on", 2]
            print(f"\n| sandbox on, same class | wall time | per submission |\n|---|---|---|\n"
                  f"| plain `nbgrader autograde` (checks in the kernel, one at a time) | {in_kernel:.1f} s | "
                  f"{in_kernel / n:.2f} s |\n"
                  f"| `make autograde JOBS=2` (checks judged outside the kernel) | {trusted:.1f} s | "
                  f"{trusted / n:.2f} s |\n"
                  f"| speed-up | {in_kernel / trusted:.2f}x | |")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
