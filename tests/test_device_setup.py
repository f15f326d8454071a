"""The CUDA branch of every lesson's set-up cell, run on a CPU-only PyTorch: it must leave cuDNN's TF32 off for RNNs
and every later use of the cuDNN flags working (``torch.backends.cudnn.flags(...)``, which Lesson 08 recommends, and
the legacy ``allow_tf32`` that exporters read). PyTorch 2.13's ``cudnn.rnn.fp32_precision = "ieee"`` set alone broke
both ("PyTorch is checking whether allow_tf32 is enabled for cuDNN without a specific operator name...")."""

import json
import subprocess
import sys

import pytest

from course.lessons import REPO, lesson_names, nbgrader, notebook_path, read
from tests.test_hygiene import SET_UP_LINES

PROBE = '''
import json, sys
import torch
torch.cuda.is_available = lambda: True  # take the CUDA branch on this CPU-only machine
results = {}
for lesson, source in json.loads(sys.stdin.read()).items():
    torch.backends.cudnn.allow_tf32 = True  # each lesson from PyTorch's defaults
    torch.backends.cudnn.rnn.fp32_precision = torch.backends.cudnn.conv.fp32_precision = "tf32"
    try:
        namespace = {}
        exec(compile(source, lesson, "exec"), namespace)
        assert namespace["device"].type == "cuda", namespace["device"]
        with torch.backends.cudnn.flags(enabled=False):
            pass
        assert torch.backends.cudnn.allow_tf32 is False, torch.backends.cudnn.allow_tf32
        assert torch.backends.cudnn.rnn.fp32_precision != "tf32", torch.backends.cudnn.rnn.fp32_precision
        results[lesson] = "ok"
    except Exception as error:
        results[lesson] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
'''


def set_up_cell(lesson):
    """The lesson's set-up cell: the code cell that seeds torch."""
    nb = read(notebook_path(lesson))
    return next(c.source for c in nb.cells if c.cell_type == "code" and "torch.manual_seed(0)" in c.source
                and not nbgrader(c))


@pytest.fixture(scope="module")
def cuda_branch_results():
    """Every lesson's set-up cell run, in one process, as if on CUDA: {lesson: "ok" or the error}."""
    cells = {lesson: set_up_cell(lesson) for lesson in lesson_names()}
    run = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(cells), capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("lesson", lesson_names())
def test_the_cuda_branch_of_the_set_up_cell_keeps_cudnn_flags_usable(lesson, cuda_branch_results):
    assert SET_UP_LINES in set_up_cell(lesson)
    assert cuda_branch_results[lesson] == "ok"


def test_the_old_line_alone_breaks_the_flags():
    """Why the lines changed: the RNN-only flag, set alone, makes cudnn.flags() raise on this PyTorch."""
    code = ("import torch\ntorch.backends.cudnn.rnn.fp32_precision = 'ieee'\n"
            "with torch.backends.cudnn.flags(enabled=False):\n    pass\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "allow_tf32" in run.stderr
