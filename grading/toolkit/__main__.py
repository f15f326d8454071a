"""The instructor's grading commands (the Makefile's collect, autograde, feedback and export targets call these).

    python -m grading.toolkit collect FOLDER_OR_ZIP
    python -m grading.toolkit autograde [--lesson NN-slug ...] [--student ID ...] [--jobs N] [--force] [--shard i/N]
    python -m grading.toolkit feedback [--lesson NN-slug ...]
    python -m grading.toolkit export [--canvas CANVAS-EXPORT.csv]

The course root and gradebook come from COURSE_ROOT and COURSE_DB_URL (default: this repository and
grading/gradebook.db); the grading limits from COURSE_CELL_TIMEOUT, COURSE_KERNEL_MEMORY and
COURSE_SUBMISSION_TIMEOUT (see grading/toolkit/settings.py).
"""

import argparse
import sys

from grading.toolkit.settings import Course


def words(value):
    """``--lesson "00-orientation 01-gru-math"`` and ``--lesson 00-orientation --lesson 01-gru-math`` alike."""
    return value.replace(",", " ").split()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grading.toolkit", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    collect = commands.add_parser("collect", help="import LMS downloads into grading/submitted/")
    collect.add_argument("source", help="a folder or a .zip of downloaded submissions")

    autograde = commands.add_parser("autograde", help="grade every submission, in parallel")
    autograde.add_argument("--lesson", type=words, action="extend", help="only these lessons")
    autograde.add_argument("--student", type=words, action="extend", help="only these students")
    autograde.add_argument("--jobs", type=int, default=None, help="students graded at once (default: cores)")
    autograde.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    autograde.add_argument("--shard", help="i/N: grade only shard i of N (N hosts, one PostgreSQL gradebook)")

    feedback = commands.add_parser("feedback", help="HTML feedback per student and lesson, hidden tests hidden")
    feedback.add_argument("--lesson", type=words, action="extend", help="only these lessons")

    export = commands.add_parser("export", help="grading/grades.csv, the class summary in grading/summary/ and "
                                                "LMS files in grading/lms/")
    export.add_argument("--canvas", help="a gradebook CSV exported from Canvas, to fill in (grading/lms/)")

    args = parser.parse_args(argv)
    course = Course.from_env()
    if args.command == "collect":
        from grading.toolkit.collect import collect as run

        return run(course, args.source)
    if args.command == "autograde":
        from grading.toolkit.autograde import Busy
        from grading.toolkit.autograde import autograde as run
        from grading.toolkit.shard import for_shard

        if args.shard:
            try:
                course = for_shard(course, args.shard)
            except ValueError as error:
                parser.error(str(error))
        try:
            return run(course, args.lesson, args.student, args.jobs, args.force)
        except Busy as busy:  # grading did not start: exit status 2, like a missing sandbox
            print(f"error: {busy}", file=sys.stderr)
            return 2
    if args.command == "feedback":
        from grading.toolkit.feedback import feedback as run

        return run(course, args.lesson)
    from grading.toolkit.export import export as run

    return run(course, canvas=args.canvas)


if __name__ == "__main__":
    sys.exit(main())
