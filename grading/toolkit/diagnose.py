"""Why a submission scored what it did, in words for the autograde summary: what was wrong with the file
(missing, misnamed, not a notebook), which check cells were edited or deleted (nbgrader restores them), and which
cells failed while grading (timeouts, a dead kernel, memory, errors in answers)."""

import hashlib
from pathlib import Path

import nbformat

from grading.toolkit.budget import CUT_NOTE
from grading.toolkit.preprocessors import KERNEL_DIED, KERNEL_UNRESPONSIVE, NOT_RUN, split_hidden_tests
from grading.toolkit.settings import format_bytes

MEMORY_MESSAGES = ("can't allocate memory", "Cannot allocate memory", "out of memory")


def folder_fingerprint(folder):
    """sha256 of every file under ``folder`` (names and bytes): a re-run regrades a submission only if it changed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def find_notebook(folder, lesson):
    """(path, note): the notebook to grade in a student's ``folder`` for ``lesson``, or (None, why not).

    ``<lesson>.ipynb`` is graded as is. LMSs rename files (``00-orientation (1).ipynb``): a single other notebook,
    or a single one whose name contains the lesson's, is graded in its place with a note."""
    folder = Path(folder)
    expected = folder / f"{lesson}.ipynb"
    if expected.is_file():
        return expected, None
    notebooks = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    named = [p for p in notebooks if lesson in p.name]
    candidates = notebooks if len(notebooks) == 1 else named
    if len(candidates) == 1:
        found = candidates[0].relative_to(folder)
        return candidates[0], f"misnamed notebook: graded '{found}' as {lesson}.ipynb"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if not notebooks:
        found = f"found only {', '.join(files[:5])}" if files else "the folder is empty"
        return None, f"no notebook: expected {lesson}.ipynb, {found}"
    names = ", ".join(str(p.relative_to(folder)) for p in notebooks[:5])
    return None, f"no {lesson}.ipynb and {len(notebooks)} other notebooks ({names}): cannot tell which to grade"


def read_notebook(path):
    """(notebook, None), or (None, why it is not a notebook nbgrader can grade)."""
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # NotJSONError, ValidationError, UnicodeDecodeError, ...
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return None, f"not a valid notebook file ({type(error).__name__}: {message[:120]})"
    problem = metadata_problem(nb)
    if problem:
        return None, f"malformed nbgrader metadata: {problem}"
    return nb, None


def metadata_problem(nb):
    """Why the nbgrader metadata of ``nb``'s cells has a shape that no notebook made in Jupyter has, or None.
    (Anything else malformed in it is nbgrader's to find: see ``worker.nbgrader_failed``.)"""
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        if not isinstance(meta, dict):
            return f"cell {index}: its nbgrader metadata is not a mapping"
        if not isinstance(meta.get("grade_id", ""), str):
            return f"cell {index}: its grade_id is not text"
    return None


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_locked(cell):
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("locked"))


def _is_answer(cell):
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def assemble(submitted, released):
    """(notebook to grade, notes): the instructor's released notebook with the learner's answer cells put in, by
    grade id. Only answer cells come from the submission; every other cell, and every cell's metadata, is the
    instructor's, so an edited, deleted, added or relabelled cell changes nothing that is run or judged."""
    import copy

    theirs = {}
    for cell in submitted.cells:
        grade_id = _grade_id(cell)
        if grade_id and grade_id not in theirs:
            theirs[grade_id] = cell
    graded = copy.deepcopy(released)
    missing, answered = [], set()
    for cell in graded.cells:
        grade_id = _grade_id(cell)
        if not _is_answer(cell):
            continue
        mine = theirs.get(grade_id)
        if mine is None or mine.get("cell_type") != cell.cell_type or not isinstance(mine.get("source"), str):
            missing.append(grade_id)
            continue
        cell.source = mine.source
        answered.add(grade_id)
    notes = []
    if missing:
        notes.append(f"answer cells missing from the submission (graded as not answered): {', '.join(missing)}")
    extra = [c for c in submitted.cells if c.get("cell_type") == "code" and _grade_id(c) not in answered
             and c.get("source", "").strip() and not _is_locked(c) and not _grade_id(c)]
    if len(extra) > len([c for c in released.cells if c.cell_type == "code" and not _grade_id(c)]):
        notes.append("cells outside the answer cells are not run when graded (only answer cells are)")
    return graded, notes


def without_hidden_tests(source):
    """``source`` without its hidden-test region and surrounding blank space, for comparing check cells: a
    notebook made from the instructor's version (with hidden tests) is not an edited one."""
    return "\n".join(line.rstrip() for line in split_hidden_tests(source)[0]).strip()


def _first_line(text, limit=140):
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def grading_problems(nb, cell_timeout, kernel_memory):
    """(notes, failed checks) read from an autograded notebook's error outputs."""
    notes, failed, not_run = [], [], 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not errors:
            continue
        names = {e.get("ename") for e in errors}
        nbgrader = cell.get("metadata", {}).get("nbgrader", {})
        label = nbgrader.get("grade_id") or f"cell {index}"
        is_check = nbgrader.get("grade") and not nbgrader.get("solution")
        if NOT_RUN in names:
            not_run += 1
            if is_check:
                failed.append(label)
            continue
        if KERNEL_DIED in names:
            notes.append(f"{label}: the kernel died (os._exit, a crash, or out of memory)")
        elif KERNEL_UNRESPONSIVE in names:
            notes.append(f"{label}: ran past the {cell_timeout} s cell timeout and ignored the interrupt")
        elif "CellTimeoutError" in names:
            notes.append(f"{label}: ran past the {cell_timeout} s cell timeout (stopped)")
        elif is_check:
            failed.append(label)
            continue
        else:
            error = errors[-1]
            ename, evalue = error.get("ename", "Error"), error.get("evalue", "")
            if ename == "NotImplementedError" and nbgrader.get("solution"):
                notes.append(f"{label}: not answered")
                continue
            note = f"{label}: {ename}: {_first_line(evalue)}" if _first_line(evalue) else f"{label}: {ename}"
            if ename == "MemoryError" or any(m in str(evalue) for m in MEMORY_MESSAGES):
                note += f" (memory cap {format_bytes(kernel_memory)})"
            notes.append(note)
        if is_check:
            failed.append(label)
    if not_run:
        notes.append(f"{not_run} later cells not run")
    cut = cut_cells(nb)
    if cut:
        more = f" and {len(cut) - 5} more" if len(cut) > 5 else ""
        notes.append(f"output cut (over the output cap of a cell or of the notebook): {', '.join(cut[:5])}{more}")
    return notes, failed


def cut_cells(nb):
    """Labels of the cells whose output ``SafeExecute`` cut (``budget.CUT_NOTE``)."""
    def was_cut(cell):
        streams = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
        return any(CUT_NOTE in str(o.get("text", "")) for o in streams)

    return [_grade_id(cell) or f"cell {index}" for index, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and was_cut(cell)]


def reason(notes, failed):
    """One line for the summary: what went wrong first, then the checks that failed."""
    parts = list(notes)
    if failed:
        parts.append(f"failed checks: {', '.join(failed)}")
    return "; ".join(parts)
