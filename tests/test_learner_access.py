"""Every way into the course works: the "Open in Colab" badge and Colab set-up cell of every student notebook,
the README's Colab and Binder badges, environment.yml as Binder (repo2docker) reads it, device selection that runs
on CUDA or the CPU (MPS when the learner opts in) with TF32 off on old and new PyTorch, and `make test-gpu`'s
guard and sanitizers. (The course in a real browser is
tests/test_browser.py.)"""

import ast
import re
import shutil
import subprocess
import sys
import types
from urllib.parse import urlparse

import nbformat
import pytest
import yaml
from nbval.plugin import get_sanitize_patterns

from course.lessons import (
    NOTEBOOKS,
    REPO,
    SOLUTIONS,
    is_answer_cell,
    lesson_names,
    nbgrader,
    notebook_path,
    read,
)
from tests.harness import TempCourse, with_answers
from tools.learner_access import (
    BADGE_CELL_ID,
    COLAB_CELL_ID,
    COLAB_HELPER,
    README_END,
    README_START,
    Location,
    colab_cell_source,
    colab_packages,
    data_files,
    location,
    readme_badges,
    stamp,
    stamp_student_notebooks,
)

LESSONS = lesson_names(NOTEBOOKS)
COLAB_LINK = re.compile(r"\]\((https://colab\.research\.google\.com/github/[^)\s]+)\)")


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


# --- Colab: the badge and the set-up cell of every student notebook ---------------------------------------------

@pytest.mark.parametrize("lesson", LESSONS)
def test_student_notebook_starts_with_a_colab_badge_to_its_own_path(lesson):
    path = notebook_path(lesson, NOTEBOOKS)
    first = read(path).cells[0]
    assert first.cell_type == "markdown" and first.get("id") == BADGE_CELL_ID, f"{lesson}: no Colab badge first"
    assert "colab-badge.svg" in first.source
    links = COLAB_LINK.findall(first.source)
    assert len(links) == 1, f"{lesson}: expected one Colab link, found {links}"
    where = location()
    owner_repo, blob, branch, notebook = re.fullmatch(r"/github/([^/]+/[^/]+)/(blob)/([^/]+)/(.+)",
                                                      urlparse(links[0]).path).groups()
    assert (owner_repo, branch) == (where.repository, where.branch), f"{lesson}: badge points at another repository"
    assert notebook == path.relative_to(REPO).as_posix(), f"{lesson}: badge opens {notebook}, not this notebook"


@pytest.mark.parametrize("lesson", LESSONS)
def test_colab_cell_is_the_first_code_cell_and_plain(lesson):
    nb = read(notebook_path(lesson, NOTEBOOKS))
    cell = code_cells(nb)[0]
    assert cell.get("id") == COLAB_CELL_ID, f"{lesson}: the first code cell is not the Colab set-up cell"
    assert nb.cells.index(cell) == 1, f"{lesson}: the Colab cell must come right after the badge"
    assert not nbgrader(cell), f"{lesson}: the Colab cell must carry no nbgrader metadata"
    assert sum(c.get("id") == COLAB_CELL_ID for c in nb.cells) == 1
    assert 'if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:' in cell.source
    # Colab ships its own torch (with CUDA): the cell never installs it.
    assert not re.search(r"[\"']torch[=\"']", cell.source), f"{lesson}: the Colab cell would install torch"


def set_up_call(source):
    """The keyword arguments of the cell's ``set_up(...)`` call, as Python values (and its positional ones)."""
    calls = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "set_up"]
    assert len(calls) == 1, "the Colab cell must call set_up once"
    call = calls[0]
    return [ast.get_source_segment(source, a) for a in call.args], {k.arg: ast.literal_eval(k.value)
                                                                      for k in call.keywords}


@pytest.mark.parametrize("lesson", LESSONS)
def test_colab_cell_fetches_exactly_the_lessons_data_files(lesson):
    source = code_cells(read(notebook_path(lesson, NOTEBOOKS)))[0].source
    args, kwargs = set_up_call(source)
    assert args == ["course", f'"{lesson}"'], f"{lesson}: the Colab cell sets up {args}"
    files = data_files(NOTEBOOKS / lesson)
    assert kwargs.get("files", []) == files, f"{lesson}: the Colab cell fetches {kwargs.get('files')}, not {files}"
    assert f'course = "{location().raw_base_url()}"' in source
    assert kwargs.get("packages", {}) == colab_packages(read(notebook_path(lesson, NOTEBOOKS)))


@pytest.mark.parametrize("lesson", LESSONS)
def test_colab_cell_is_short(lesson):
    """A local learner's first screen is the lesson: the Colab cell is a few lines, its logic is in the helper."""
    source = code_cells(read(notebook_path(lesson, NOTEBOOKS)))[0].source
    lines = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    listed = len(data_files(NOTEBOOKS / lesson)) + len(colab_packages(read(notebook_path(lesson, NOTEBOOKS))))
    assert len(lines) <= 10 or len(lines) <= 12 + listed, source  # long lists of files take a line each
    assert all(len(line) <= 120 for line in source.splitlines())


def test_colab_helper_is_in_the_repository_and_uses_only_the_standard_library():
    """The cell downloads tools/colab_setup.py from the configured branch; on Colab nothing of the course is
    installed yet, so the helper may import only the standard library (and torch, which Colab has)."""
    helper = REPO / COLAB_HELPER
    assert helper.exists()
    imported = set()
    for node in ast.walk(ast.parse(helper.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported - {"torch"} <= set(sys.stdlib_module_names), imported


def test_colab_cell_is_a_silent_no_op_outside_colab():
    """Run each lesson's Colab cell in a fresh interpreter (no Colab marker): it prints nothing and imports
    nothing beyond os and sys."""
    sources = [code_cells(read(notebook_path(lesson, NOTEBOOKS)))[0].source for lesson in LESSONS]
    program = ("import sys\n"
               "for source in sys.argv[1:]:\n"
               "    exec(compile(source, 'colab-cell', 'exec'), {})\n"
               "assert 'torch' not in sys.modules and 'google.colab' not in sys.modules\n"
               "assert 'urllib.request' not in sys.modules and 'colab_setup' not in sys.modules\n")
    env = {"PATH": "/usr/bin:/bin"}  # no COLAB_RELEASE_TAG
    result = subprocess.run([sys.executable, "-c", program, *sources], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_colab_cell_on_colab_installs_only_what_is_missing_and_fetches_data(tmp_path, monkeypatch, capsys):
    """The cell as Colab runs it, with the network, pip and torch stubbed: it downloads the helper from the
    repository, a module Colab has is not reinstalled, a missing one is installed at its pinned version, and the
    data files are fetched to their relative paths (a file already there is kept)."""
    where = Location("someone/gru-course", "main")
    packages = {"numpy": "numpy==2.4.6", "module_colab_lacks": "package-colab-lacks==1.0"}
    files = ["data/train set.csv", "README-data.txt"]
    source = colab_cell_source("05-data", where, packages, files)
    (tmp_path / "README-data.txt").write_text("already here")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # a notebook's folder is on sys.path, as in Jupyter
    monkeypatch.delitem(sys.modules, "colab_setup", raising=False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    installs, downloads = [], []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: installs.append(command))
    import urllib.request

    def fake_download(url, name):
        downloads.append((url, name))
        if url.endswith(COLAB_HELPER):
            shutil.copy(REPO / COLAB_HELPER, name)

    monkeypatch.setattr(urllib.request, "urlretrieve", fake_download)

    exec(compile(source, "colab-cell", "exec"), {})

    assert installs == [[sys.executable, "-m", "pip", "install", "--quiet", "package-colab-lacks==1.0"]]
    assert downloads == [
        ("https://raw.githubusercontent.com/someone/gru-course/main/tools/colab_setup.py", "colab_setup.py"),
        ("https://raw.githubusercontent.com/someone/gru-course/main/notebooks/05-data/data/train%20set.csv",
         "data/train set.csv")]
    assert (tmp_path / "data").is_dir() and (tmp_path / "README-data.txt").read_text() == "already here"
    assert "No GPU in this Colab runtime" in capsys.readouterr().out
    monkeypatch.delitem(sys.modules, "colab_setup", raising=False)


def test_colab_packages_are_the_pinned_imports_but_never_torch():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nimport os\nimport torch\nfrom torch import nn"),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfrom tqdm.auto import tqdm\nimport numpy as np"),
        nbformat.v4.new_code_cell("!pip list\nimport ipywidgets"),
    ])
    pins = {"torch": "torch==2.13.0", "numpy": "numpy==2.4.6", "matplotlib": "matplotlib==3.11.2",
            "tqdm": "tqdm==4.70.1", "ipywidgets": "ipywidgets==8.1.9"}
    assert colab_packages(nb, pins) == {"ipywidgets": "ipywidgets==8.1.9", "matplotlib": "matplotlib==3.11.2",
                                        "numpy": "numpy==2.4.6", "tqdm": "tqdm==4.70.1"}


def test_stamping_twice_changes_nothing():
    lesson = LESSONS[0]
    nb = read(notebook_path(lesson, NOTEBOOKS))
    again = stamp(read(notebook_path(lesson, NOTEBOOKS)), lesson, NOTEBOOKS / lesson)
    assert again == nb


def test_lesson_data_files_are_listed_and_ship_with_the_release(tmp_path):
    """A lesson with a data folder: the release copies it and the Colab cell fetches it."""
    course = TempCourse(tmp_path, [])
    (course.root / "solutions").mkdir()
    lesson = LESSONS[0]
    source = course.root / "solutions" / lesson
    source.mkdir()
    nbformat.write(read(notebook_path(lesson)), str(notebook_path(lesson, course.root / "solutions")))
    (source / "data").mkdir()
    (source / "data" / "numbers.csv").write_text("1,2\n")
    course.nbgrader("generate_assignment", lesson, "--force")
    stamp_student_notebooks(course.root)
    released = notebook_path(lesson, course.root / "notebooks")
    assert (released.parent / "data" / "numbers.csv").exists()
    assert '"data/numbers.csv"' in code_cells(read(released))[0].source


def test_stamped_student_notebook_autogrades_as_before(tmp_path):
    """The badge and Colab cells confuse nothing in nbgrader: the stamped notebook with the reference answers
    scores full marks, untouched it scores zero, and both keep the Colab cells."""
    lesson = "00-orientation"
    course = TempCourse(tmp_path, [lesson])
    stamp_student_notebooks(course.root)
    student = course.student_version(lesson)
    assert student.cells[0].get("id") == BADGE_CELL_ID
    answers = {nbgrader(c)["grade_id"]: c.source for c in course.source(lesson).cells if is_answer_cell(c)}
    course.submit("answered", lesson, with_answers(student, answers))
    course.submit("untouched", lesson, student)
    course.autograde(lesson)
    scores = course.scores(lesson)
    assert scores["answered"] and all(s == m and m > 0 for s, m in scores["answered"].values()), scores
    assert all(s == 0 for s, _ in scores["untouched"].values()), scores
    graded = read(notebook_path(lesson, course.root / "grading" / "autograded" / "answered"))
    assert [c.get("id") for c in graded.cells[:2]] == [BADGE_CELL_ID, COLAB_CELL_ID]


# --- The repository location setting ------------------------------------------------------------------------------

def test_location_comes_from_pyproject_and_the_environment_overrides_it(tmp_path, monkeypatch):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n\n[tool.gru-course]\nrepository = "me/course"\nbranch = "dev"\n'
                         '\n[tool.other]\nrepository = "not/this"\n')
    assert location(pyproject, {}) == Location("me/course", "dev")
    assert location(pyproject, {"COURSE_REPOSITORY": "fork/gru", "COURSE_BRANCH": "main"}) == Location("fork/gru",
                                                                                                      "main")
    monkeypatch.setitem(sys.modules, "tomllib", None)  # Python 3.10 has no tomllib: the fallback reader
    assert location(pyproject, {}) == Location("me/course", "dev")
    with pytest.raises(ValueError, match="owner/name"):
        location(pyproject, {"COURSE_REPOSITORY": "https://github.com/me/course"})


def test_repository_setting_is_valid():
    where = location(REPO / "pyproject.toml", {})
    assert where.colab_url("00-orientation").startswith(f"https://colab.research.google.com/github/{where.repository}/")


# --- README badges and Binder ---------------------------------------------------------------------------------

def test_readme_badges_are_current():
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(README_START), readme.index(README_END)
    assert readme[start + len(README_START):end].strip() == readme_badges(), (
        "README.md's Colab/Binder badges are out of date: run `make release`")


def test_binder_badge_opens_jupyterlab_on_lesson_00():
    where = location()
    binder = re.search(r"\((https://mybinder\.org/v2/gh/[^)\s]+)\)", readme_badges()).group(1)
    url = urlparse(binder)
    assert url.path == f"/v2/gh/{where.repository}/{where.branch}"
    assert url.query == "urlpath=lab/tree/notebooks/00-orientation/00-orientation.ipynb"
    assert (REPO / "notebooks" / "00-orientation" / "00-orientation.ipynb").exists()


def test_environment_yml_is_what_repo2docker_needs():
    """repo2docker reads environment.yml as YAML (a mapping), takes the Python version from `python=X.Y`, and hands
    the `pip:` list to pip as a requirements file, where an `--extra-index-url` line is allowed. The CPU index
    must come before torch is pinned, and every pip line is either that option or an exact pin."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert isinstance(env, dict) and env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    assert len(pip_sections) == 1
    pip = pip_sections[0]
    assert pip[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[A-Za-z0-9_,\-]+\])?==[^\s=]+", line) for line in pip[1:]), pip
    assert not any(line.startswith("torch") for line in deps if isinstance(line, str)), "torch must come from pip"
    assert not (REPO / "binder").exists() and not (REPO / ".binder").exists(), (
        "a binder/ folder would take precedence over the root environment.yml")


# --- GPU-capable runtimes -------------------------------------------------------------------------------------

def device_assignments(nb):
    """Top-level ``device = ...`` statements in the notebook's code cells, as source text."""
    found = []
    for cell in code_cells(nb):
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "device" for t in node.targets):
                found.append(ast.get_source_segment(source, node.value))
    return found


@pytest.mark.parametrize("lesson", lesson_names(SOLUTIONS))
def test_notebook_selects_its_device_once_cuda_then_mps_then_cpu(lesson):
    found = device_assignments(read(notebook_path(lesson)))
    assert len(found) == 1, f"{lesson}: `device` must be chosen exactly once, in the set-up cell; found {found}"
    choice = found[0]
    marks = [choice.find("torch.cuda.is_available()"), choice.find("torch.backends.mps.is_available()"),
             choice.find('"cpu"')]
    assert -1 not in marks and marks == sorted(marks), f"{lesson}: pick CUDA, then MPS, then CPU: {choice}"


SET_UP_LINES = (REPO / "tools" / "device_setup.py").read_text().split("# --- set-up cell lines ---\n", 1)[1]


def run_set_up_lines(cudnn, cuda=True, mps=False):
    """The set-up lines of tools/device_setup.py, run against a stand-in torch namespace."""
    fake_torch = types.SimpleNamespace(
        device=lambda kind: types.SimpleNamespace(type=kind),
        cuda=types.SimpleNamespace(is_available=lambda: cuda),
        backends=types.SimpleNamespace(cudnn=cudnn, mps=types.SimpleNamespace(is_available=lambda: mps)))
    namespace = {"torch": fake_torch}
    exec(compile(SET_UP_LINES, "set-up lines", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("old_cudnn", [
    types.SimpleNamespace(allow_tf32=True),  # no torch.backends.cudnn.rnn at all
    types.SimpleNamespace(allow_tf32=True, rnn=types.ModuleType("torch.backends.cudnn.rnn")),  # rnn without the flag
], ids=["no-rnn-module", "rnn-module-without-fp32_precision"])
def test_set_up_lines_turn_tf32_off_on_an_older_pytorch(old_cudnn):
    """PyTorch < 2.9 has no cudnn.rnn.fp32_precision: assigning it would create a plain attribute and leave TF32
    on, so the lines fall back to the legacy cudnn.allow_tf32 flag."""
    namespace = run_set_up_lines(old_cudnn)
    assert namespace["device"].type == "cuda"
    assert old_cudnn.allow_tf32 is False
    assert not hasattr(getattr(old_cudnn, "rnn", None), "fp32_precision"), "a plain attribute was created"


@pytest.mark.parametrize("cuda, mps, use_mps, expected", [
    (True, True, False, "cuda"), (False, True, False, "cpu"), (False, True, True, "mps"), (False, False, True, "cpu"),
    (True, True, True, "cuda")])
def test_set_up_lines_choose_mps_only_when_the_learner_opts_in(cuda, mps, use_mps, expected):
    cudnn = types.SimpleNamespace(allow_tf32=True)
    lines = SET_UP_LINES.replace("USE_MPS = False", f"USE_MPS = {use_mps}", 1)
    assert lines != SET_UP_LINES or not use_mps, "the opt-in line is not `USE_MPS = False`"
    fake_torch = types.SimpleNamespace(
        device=lambda kind: types.SimpleNamespace(type=kind), cuda=types.SimpleNamespace(is_available=lambda: cuda),
        backends=types.SimpleNamespace(cudnn=cudnn, mps=types.SimpleNamespace(is_available=lambda: mps)))
    namespace = {"torch": fake_torch}
    exec(compile(lines, "set-up lines", "exec"), namespace)
    assert namespace["device"].type == expected
    assert cudnn.allow_tf32 is (expected != "cuda"), "TF32 must be turned off on CUDA only"


def sanitize(text, *configs):
    for config in configs:
        for regex, replace in get_sanitize_patterns((REPO / "tests" / config).read_text()):
            text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("cpu, gpu", [
    ("Python 3.11.7 · PyTorch 2.13.0+cpu · device: cpu\n", "Python 3.11.7 · PyTorch 2.13.0+cu128 · device: cuda\n"),
    ("device: cpu\n", "device: cuda:0\n"),
    ("tensor([1., 2.])\n", "tensor([1., 2.], device='cuda:0')\n"),
    ("tensor([[0.5000, 1.0000]], dtype=torch.float64)\n",
     "tensor([[0.5000, 1.0000]], device='cuda:0', dtype=torch.float64)\n"),
    ("tensor(3., requires_grad=True)\n", "tensor(3., device='cuda:0', requires_grad=True)\n"),
])
def test_gpu_sanitizer_hides_the_device_name(cpu, gpu):
    assert sanitize(cpu, "nbval_sanitize.cfg", "nbval_sanitize_gpu.cfg") == sanitize(
        gpu, "nbval_sanitize.cfg", "nbval_sanitize_gpu.cfg")


@pytest.mark.parametrize("cpu, gpu", [
    ("tensor([1.0000, 2.0000])\n", "tensor([1.0001, 2.0000], device='cuda:0')\n"),
    ("max abs error: 1.2e-07\n", "max abs error: 3.4e-07\n"),
    ("torch.float32\n", "torch.float16\n"),
])
def test_gpu_sanitizer_keeps_values(cpu, gpu):
    assert sanitize(cpu, "nbval_sanitize.cfg", "nbval_sanitize_gpu.cfg") != sanitize(
        gpu, "nbval_sanitize.cfg", "nbval_sanitize_gpu.cfg")


def test_make_test_gpu_refuses_to_run_without_cuda():
    """Without CUDA, `make test-gpu` stops with a clear message rather than passing on the CPU."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "test-gpu"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "make test-gpu runs every notebook on CUDA" in result.stderr
    assert "passed" not in result.stdout

