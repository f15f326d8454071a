"""Time each solutions notebook, top to bottom in a fresh kernel, as nbval runs it (the course promises well
under 60 s each on 2 CPU cores). Prints one line per notebook; nothing is written back.

    python -m tools.benchmark_notebooks                 # every lesson
    python -m tools.benchmark_notebooks 01-gru-math     # some lessons
"""

import os
import sys
import time

from nbclient import NotebookClient

from course.lessons import SOLUTIONS, lesson_names, notebook_path, read

BUDGET_SECONDS = 60


def seconds_to_run(path):
    nb = read(path)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv):
    print(f"{os.cpu_count()} CPU cores; budget {BUDGET_SECONDS} s per notebook (kernel start-up included)")
    over_budget = []
    for lesson in argv or lesson_names(SOLUTIONS):
        seconds = seconds_to_run(notebook_path(lesson))
        verdict = "ok" if seconds < BUDGET_SECONDS else "OVER BUDGET"
        print(f"{lesson:<22} {seconds:6.1f} s  {verdict}", flush=True)
        if seconds >= BUDGET_SECONDS:
            over_budget.append(lesson)
    return 1 if over_budget else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
