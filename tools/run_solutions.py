"""Run solutions notebooks top to bottom in a fresh kernel and store their outputs (nbval's reference).

    python -m tools.run_solutions                 # every lesson
    python -m tools.run_solutions 01-gru-math     # some lessons
"""

import sys

import nbformat
from nbclient import NotebookClient

from course.lessons import SOLUTIONS, lesson_names, notebook_path, read


def run_in_place(path, timeout=300):
    nb = read(path)
    # record_timing=False keeps wall-clock timestamps out of the stored notebook.
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.validate(nb)
    nbformat.write(nb, str(path))


def main(argv):
    for lesson in argv or lesson_names(SOLUTIONS):
        path = notebook_path(lesson)
        print(f"running {path.relative_to(SOLUTIONS.parent)}", flush=True)
        run_in_place(path)


if __name__ == "__main__":
    main(sys.argv[1:])
