"""Forged scores caught: what a sandbox cannot stop (tampering inside the kernel) is detected and marked ``review``.

- ``scan_source``: a static scan of the learner's code (answer cells, and any code cell that is not the
  instructor's) for tampering: IPython hooks and ``get_ipython``, ``set_custom_exc``, ``sys.excepthook``, frames and
  ``linecache``/``inspect``/``traceback``, ``In``/``Out``, assignments into ``torch``, ``nn``, ``F``, ``builtins``
  or the check helpers' names, shadowed built-ins, ``__torch_function__``, dynamic code (``exec``, ``eval``,
  ``__import__``, ``globals()``), reading ``os.environ``/``NBGRADER_EXECUTION``, and the APIs an exercise forbids
  (``"gru_course": {"forbidden": ["nn.GRUCell", ...]}`` in the metadata of the answer cell in ``solutions/``).
- A canary: a last cell, added at grading time and removed after it ran, that must fail; if its error does not
  reach the grader, error reporting was tampered with.
- The findings go into the autograded notebook's metadata (``gru_course.review``); the toolkit marks the
  submission ``review`` in ``grading/autograde-summary.csv`` (score kept), a plain ``nbgrader autograde`` logs them.
- ``cross_check``: ``make export`` compares the gradebook with the autograde summary.
- ``submission_problem``: links in a submission are refused (never followed), and so are oversized notebooks.
"""

import ast
import base64
import binascii
import builtins
import codecs
import re
import secrets
import zlib
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell
from nbgrader.preprocessors import NbGraderPreprocessor

from course.lessons import REPO, is_answer_cell, nbgrader

METADATA_KEY = "gru_course"
MAX_NOTEBOOK_BYTES = 20 * 2**20  # a lesson notebook with outputs is well under 2 MB

CHECKS_FILE = REPO / "tools" / "course_checks.py"
PROTECTED_MODULES = {"torch", "nn", "F", "numbers", "builtins", "__builtins__", "np", "numpy", "math", "random",
                     "operator", "functools"}
CANONICAL_IMPORTS = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "np": "numpy",
                     "numpy": "numpy", "math": "math", "random": "random", "numbers": "numbers",
                     "operator": "operator", "functools": "functools"}
BANNED_NAMES = {
    "get_ipython": "IPython access (get_ipython)", "In": "the input history (In)", "Out": "the output history (Out)",
    "_ih": "the input history (_ih)", "_oh": "the output history (_oh)", "_i": "the input history (_i)",
    "_ii": "the input history (_ii)", "_iii": "the input history (_iii)", "__builtins__": "__builtins__",
    "__import__": "dynamic import (__import__)", "globals": "globals()", "vars": "vars()", "eval": "eval()",
    "exec": "exec()", "compile": "compile()", "breakpoint": "breakpoint()",
}
BANNED_ATTRIBUTES = {
    "_getframe": "frame access (sys._getframe)", "f_back": "frame access (f_back)", "f_locals": "frame access",
    "f_globals": "frame access", "f_builtins": "frame access", "f_code": "frame access", "tb_frame": "frame access",
    "tb_next": "frame access", "gi_frame": "frame access", "cr_frame": "frame access", "ag_frame": "frame access",
    "_current_frames": "frame access", "excepthook": "sys.excepthook", "displayhook": "sys.displayhook",
    "set_custom_exc": "IPython set_custom_exc", "settrace": "a trace hook", "setprofile": "a profile hook",
    "addaudithook": "an audit hook", "__subclasses__": "__subclasses__", "__globals__": "__globals__",
    "__code__": "__code__", "__dict__": "__dict__", "environ": "os.environ", "getenv": "os.getenv",
    "putenv": "os.putenv", "modules": "sys.modules", "__torch_function__": "__torch_function__",
    "__torch_dispatch__": "__torch_dispatch__", "__instancecheck__": "__instancecheck__",
    "__subclasscheck__": "__subclasscheck__", "DisableTorchFunction": "turns off torch function modes",
    "DisableTorchFunctionSubclass": "turns off torch function modes",
    "_disabled_torch_function_impl": "turns off torch function modes",
}
BANNED_DEFINITIONS = {"__torch_function__", "__torch_dispatch__", "__instancecheck__", "__subclasscheck__",
                      "__class__"}
BANNED_MODULES = {"inspect", "linecache", "traceback", "builtins", "__builtin__", "IPython", "ipykernel", "gc",
                  "ctypes", "importlib", "nbformat", "nbgrader", "nbclient", "jupyter_client", "zmq", "code", "dis",
                  "pdb", "atexit"}
BUILTIN_NAMES = {name for name in dir(builtins) if not name.startswith("_")}


def helper_names(path=CHECKS_FILE):
    """Every module-level name the check-helpers cell defines (check, check_type, ..., _isinstance, ...)."""
    names = set()
    for node in ast.parse(Path(path).read_text()).body:
        names |= _bound_names(node)
    return names - {"torch", "numbers", "operator", "_builtins"}


def _bound_names(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _root(node):
    """The name at the root of ``a.b[c].d`` (None if it is not a name)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def scan_source(source, protected_names=frozenset(), forbidden=()):
    """Findings (short phrases) in one cell's code; [] for honest code. Code that does not parse is not
    scanned (nbgrader reports its SyntaxError)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    protected = set(protected_names) | helper_names()
    roots = set(PROTECTED_MODULES)
    found = []

    def flag(message):
        if message not in found:
            found.append(message)

    # Names bound at module level (or declared global) to something rooted in torch, nn, ...: aliases.
    for node in tree.body:
        if isinstance(node, ast.Assign) and _root(node.value) in roots:
            roots |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("torch", "numpy"):
            roots |= {a.asname or a.name for a in node.names}

    for node in tree.body:  # module-level bindings that shadow a built-in, a helper or torch
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = (alias.asname or alias.name).split(".")[0]
                full = alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
                if alias.asname is None and isinstance(node, ast.Import):
                    full = bound
                if bound in CANONICAL_IMPORTS and full != CANONICAL_IMPORTS[bound]:
                    flag(f"rebinds {bound}")
                elif bound in protected or (bound in BUILTIN_NAMES and bound not in CANONICAL_IMPORTS):
                    flag(f"rebinds {bound}")
            continue
        for name in _bound_names(node):
            if name in protected or name in BUILTIN_NAMES or name in PROTECTED_MODULES:
                flag(f"rebinds {name}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in BANNED_NAMES:
            flag(BANNED_NAMES[node.id])
        elif isinstance(node, ast.Attribute) and node.attr in BANNED_ATTRIBUTES:
            flag(BANNED_ATTRIBUTES[node.attr])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in BANNED_MODULES:
                    flag(f"imports {module.split('.')[0]}")
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in BANNED_ATTRIBUTES:
                        flag(BANNED_ATTRIBUTES[alias.name])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                if name in protected or name in BUILTIN_NAMES or name in PROTECTED_MODULES:
                    flag(f"rebinds {name}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in BANNED_DEFINITIONS:
            flag(f"defines {node.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "NBGRADER" in node.value:
            flag("reads NBGRADER_EXECUTION (grading detected)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "setattr", "delattr") and node.args and _root(node.args[0]) in roots | protected:
            flag(f"{node.func.id} on {_root(node.args[0])}")
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root(node)
            if root in roots or root in protected:
                flag(f"assigns into {root}")
        for name in forbidden:
            if isinstance(node, ast.Attribute) and _dotted(node) and _matches(_dotted(node), name):
                flag(f"uses {name}, which this exercise forbids")
            elif isinstance(node, ast.ImportFrom) and any(
                    _matches(f"{node.module}.{a.name}", name) for a in node.names):
                flag(f"uses {name}, which this exercise forbids")
            elif "." not in name and isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    module.split(".")[0] == name for module in _imported_modules(node)):
                flag(f"imports {name}, which this exercise forbids")
    return found


def _imported_modules(node):
    return [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]


def _matches(dotted, forbidden):
    """``nn.GRUCell`` matches ``nn.GRUCell``, ``torch.nn.GRUCell`` and ``torch.nn.modules.rnn.GRUCell``."""
    last = forbidden.split(".")[-1]
    return dotted == forbidden or dotted.endswith("." + forbidden) or (
        dotted.split(".")[-1] == last and dotted.split(".")[0] in ("torch", "nn", "F"))


# --- which cells are the learner's -----------------------------------------------------------------------------

def instructor_sources(*notebooks):
    """The code of the instructor's cells (solutions and the student version), stripped, to recognise them."""
    sources = set()
    for nb in notebooks:
        for cell in nb.cells if nb else []:
            if cell.cell_type == "code" and not is_answer_cell(cell):
                sources.add(cell.source.strip())
    return sources


def scan_notebook(nb, source_nb=None, release_nb=None):
    """[(cell label, [findings])] for the learner's code in ``nb``: every answer cell, and every other code cell
    that is neither read-only (nbgrader restores those) nor one of the instructor's."""
    ours = instructor_sources(source_nb, release_nb)
    source_cells = {nbgrader(c).get("grade_id"): c for c in (source_nb.cells if source_nb else [])}
    protected = set()  # functions and classes the read-only cells define (the checks call them)
    for cell in source_nb.cells if source_nb else []:
        if cell.cell_type == "code" and nbgrader(cell).get("locked") and not is_answer_cell(cell):
            protected |= {node.name for node in _parsed(cell.source)
                          if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    results = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = nbgrader(cell)
        grade_id = meta.get("grade_id")
        if meta.get("locked") and grade_id in source_cells:
            continue  # restored from the instructor's version before it runs
        if not meta.get("solution") and cell.source.strip() in ours:
            continue
        reference = source_cells.get(grade_id)
        forbidden = reference.metadata.get(METADATA_KEY, {}).get("forbidden", []) if reference is not None else []
        # an answer cell defines the exercise's functions: the reference solution's names are its own to define
        allowed = {n for node in _parsed(reference.source) for n in _bound_names(node)} if reference else set()
        findings = scan_source(cell.source, protected - allowed, forbidden)
        if findings:
            results.append((grade_id or f"cell {index}", findings))
    return results


def _parsed(source):
    try:
        return ast.parse(source).body
    except (SyntaxError, ValueError):
        return []


def describe(findings):
    return "; ".join(f"{label}: {', '.join(items)}" for label, items in findings)


# --- nbgrader plug-ins ------------------------------------------------------------------------------------------

def _read(path):
    try:
        return nbformat.read(str(path), as_version=4) if Path(path).is_file() else None
    except Exception:
        return None


def review_notes(nb):
    return nb.metadata.setdefault(METADATA_KEY, {}).setdefault("review", [])


class IntegrityScan(NbGraderPreprocessor):
    """First step of autograde: scan the submitted notebook's own code; findings go into its metadata."""

    def preprocess(self, nb, resources):
        from grading.toolkit.settings import Course

        course = Course.from_env()
        lesson = resources.get("nbgrader", {}).get("assignment", "")
        name = resources.get("nbgrader", {}).get("notebook", lesson)
        source = _read(course.solutions / lesson / f"{name}.ipynb")
        release = _read(course.release / lesson / f"{name}.ipynb")
        notes = review_notes(nb)
        notes[:] = []  # a submission cannot bring its own verdict
        findings = scan_notebook(nb, source, release)
        if findings:
            notes.append("integrity scan: " + describe(findings))
            self.log.warning("REVIEW %s: %s", resources.get("nbgrader", {}).get("student"), notes[-1])
        return nb, resources


CANARY_ERROR = "GradingCanary"


class InsertCanary(NbGraderPreprocessor):
    """Adds the canary, a last cell that must fail (no points: it is not a graded cell)."""

    def preprocess(self, nb, resources):
        token = secrets.token_hex(8)
        nb.metadata.setdefault(METADATA_KEY, {})["canary"] = token
        cell = new_code_cell(f"class {CANARY_ERROR}(Exception):\n    pass\n\nraise {CANARY_ERROR}('{token}')\n")
        cell.metadata[METADATA_KEY] = {"canary": True}
        nb.cells.append(cell)
        return nb, resources


class CheckCanary(NbGraderPreprocessor):
    """Right after execution: the canary's error must be there; the cell is removed again."""

    def preprocess(self, nb, resources):
        from grading.toolkit.preprocessors import KERNEL_DIED, KERNEL_UNRESPONSIVE, NOT_RUN

        token = nb.metadata.get(METADATA_KEY, {}).pop("canary", None)
        canaries = [c for c in nb.cells if c.get("metadata", {}).get(METADATA_KEY, {}).get("canary")]
        nb.cells = [c for c in nb.cells if c not in canaries]
        if not canaries or token is None:
            return nb, resources
        errors = [o for o in canaries[-1].get("outputs", []) if o.get("output_type") == "error"]
        if any(o.get("ename") in (NOT_RUN, KERNEL_DIED, KERNEL_UNRESPONSIVE, "CellTimeoutError") for o in errors):
            return nb, resources  # the kernel was gone or stuck: no verdict
        if not any(o.get("ename") == CANARY_ERROR and token in str(o.get("evalue")) for o in errors):
            review_notes(nb).append("error reporting tampered with: the canary cell's error did not reach the "
                                    "grader")
            self.log.warning("REVIEW %s: %s", resources.get("nbgrader", {}).get("student"), review_notes(nb)[-1])
        return nb, resources


# --- submissions on disk --------------------------------------------------------------------------------------

def links_in(folder):
    """Paths (relative) of the links in ``folder``, found without following any."""
    folder = Path(folder)
    if folder.is_symlink():
        return ["."]
    found = []
    for path in sorted(folder.rglob("*")):  # rglob does not descend into linked folders
        if path.is_symlink():
            found.append(str(path.relative_to(folder)))
    return found


def submission_problem(folder, notebook=None):
    """Why a submission folder is refused (links, an oversized notebook), or None."""
    links = links_in(folder)
    if links:
        return f"refused: the submission contains links ({', '.join(links[:3])}); links are never followed"
    if notebook is not None and Path(notebook).stat().st_size > MAX_NOTEBOOK_BYTES:
        size = Path(notebook).stat().st_size / 2**20
        return f"refused: the notebook is {size:.0f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit"
    return None


# --- feedback: hidden tests, even encoded --------------------------------------------------------------------

ENCODED = re.compile(r"[A-Za-z0-9+/=_-]{24,}|(?:[0-9a-fA-F]{2}){12,}")


def decoded_views(text):
    """``text`` and what a page could hide in it: reversed, rot13, base64/base32/hex runs decoded (and unzipped)."""
    views = [text, text[::-1], codecs.decode(text, "rot13")]
    for blob in ENCODED.findall(text.replace("\n", "").replace(" ", "")) + ENCODED.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode, base64.b32decode, binascii.unhexlify):
            try:
                raw = decode(blob + "=" * (-len(blob) % 4) if decode is not binascii.unhexlify else blob)
            except (ValueError, binascii.Error):
                continue
            for data in (raw, _unzipped(raw)):
                if data:
                    views.append(data.decode("utf-8", "ignore"))
    return views


def _unzipped(raw):
    for wbits in (15, 31, -15):
        try:
            return zlib.decompress(raw, wbits)
        except zlib.error:
            continue
    return None


def encoded_leaks(text, secret_lines):
    """The hidden-test lines found in ``text`` in any of its ``decoded_views``."""
    leaked = []
    for view in decoded_views(text):
        leaked += [line for line in secret_lines if line in view and line not in leaked]
    return leaked
