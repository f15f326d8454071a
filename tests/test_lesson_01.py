"""Lesson 01's checks grade fairly: the plausible mistakes of writing a GRU cell (the paper's reset-gate placement, z
and 1 - z swapped, gate order z|r|n, b_hn outside the reset product, ...) lose points, and correct answers written
differently score full marks. How the variants run, and what every lesson's module checks: tests/harness.py
(LessonTests). The answer that calls nn.GRUCell goes through nbgrader too."""

import pytest

from tests import check_cells
from tests.harness import LessonTests, points

LESSON = "01-gru-math"

ALTERNATIVE = {
    # Correct: chunk instead of slices, a dict comprehension, biases of None made with torch.zeros.
    "ex1_1_split": '''
def split_gru_parameters(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = weight_hh.shape[-1]
    zeros = torch.zeros(3 * H, dtype=weight_hh.dtype, device=weight_hh.device)
    packed = {"W_i": weight_ih, "W_h": weight_hh,
              "b_i": zeros if bias_ih is None else bias_ih, "b_h": zeros if bias_hh is None else bias_hh}
    return {prefix + gate: block for prefix, tensor in packed.items()
            for gate, block in zip("rzn", tensor.chunk(3, dim=0))}
''',
    # Correct: F.linear (which accepts bias=None), a hand-written sigmoid, and the mix written as h + (1 - z) * (n - h).
    "ex1_2_gru_cell": '''
import torch.nn.functional as F

def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    i_r, i_z, i_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
    reset = 1 / (1 + torch.exp(-(i_r + h_r)))
    update = torch.sigmoid(i_z + h_z)
    new = torch.tanh(i_n + reset * h_n)
    return h + (1 - update) * (new - h)
''',
    # Correct: huge biases in bias_ih rather than bias_hh, built in float64.
    "ex1_3_gate_biases": '''
def gate_biases(hidden_size, behaviour):
    big = 1e4
    r = torch.zeros(hidden_size, dtype=torch.float64)
    z = torch.full((hidden_size,), big if behaviour == "copy" else -big, dtype=torch.float64)
    if behaviour == "reset":
        r = r - big
    n = torch.zeros(hidden_size, dtype=torch.float64)
    return torch.cat([r, z, n]), torch.zeros(3 * hidden_size, dtype=torch.float64)
''',
}

MISTAKES_A = {
    # Gate order z|r|n (Keras / ONNX).
    "ex1_1_split": '''
def split_gru_parameters(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = weight_hh.shape[1]
    bias_ih = weight_hh.new_zeros(3 * H) if bias_ih is None else bias_ih
    bias_hh = weight_hh.new_zeros(3 * H) if bias_hh is None else bias_hh
    parts = {}
    for side, w, b in (("i", weight_ih, bias_ih), ("h", weight_hh, bias_hh)):
        for k, gate in enumerate("zrn"):
            parts["W_" + side + gate] = w[k * H:(k + 1) * H]
            parts["b_" + side + gate] = b[k * H:(k + 1) * H]
    return parts
''',
    # The paper's reset-gate placement: W_hn (r * h) + b_hn.
    "ex1_2_gru_cell": '''
def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = weight_hh.shape[1]
    bias_ih = weight_ih.new_zeros(3 * H) if bias_ih is None else bias_ih
    bias_hh = weight_hh.new_zeros(3 * H) if bias_hh is None else bias_hh
    r = torch.sigmoid(x @ weight_ih[:H].T + bias_ih[:H] + h @ weight_hh[:H].T + bias_hh[:H])
    z = torch.sigmoid(x @ weight_ih[H:2*H].T + bias_ih[H:2*H] + h @ weight_hh[H:2*H].T + bias_hh[H:2*H])
    n = torch.tanh(x @ weight_ih[2*H:].T + bias_ih[2*H:] + (r * h) @ weight_hh[2*H:].T + bias_hh[2*H:])
    return (1 - z) * n + z * h
''',
    # z and 1 - z swapped: "copy" drives z to 0, "reset" drives it to 1.
    "ex1_3_gate_biases": '''
def gate_biases(hidden_size, behaviour):
    H = hidden_size
    bias_hh = torch.zeros(3 * H)
    if behaviour == "copy":
        bias_hh[H:2*H] = -50.0
    else:
        bias_hh[:H] = -50.0
        bias_hh[H:2*H] = 50.0
    return torch.zeros(3 * H), bias_hh
''',
}

MISTAKES_B = {
    # bias=None gives None instead of zeros (the examples have biases, so only the hidden checks see it).
    "ex1_1_split": '''
def split_gru_parameters(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = weight_hh.shape[1]
    parts = {}
    for side, w, b in (("i", weight_ih, bias_ih), ("h", weight_hh, bias_hh)):
        for k, gate in enumerate("rzn"):
            parts["W_" + side + gate] = w[k * H:(k + 1) * H]
            parts["b_" + side + gate] = None if b is None else b[k * H:(k + 1) * H]
    return parts
''',
    # z and 1 - z swapped.
    "ex1_2_gru_cell": '''
def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = weight_hh.shape[1]
    bias_ih = weight_ih.new_zeros(3 * H) if bias_ih is None else bias_ih
    bias_hh = weight_hh.new_zeros(3 * H) if bias_hh is None else bias_hh
    gi = x @ weight_ih.T + bias_ih
    gh = h @ weight_hh.T + bias_hh
    r = torch.sigmoid(gi[..., :H] + gh[..., :H])
    z = torch.sigmoid(gi[..., H:2*H] + gh[..., H:2*H])
    n = torch.tanh(gi[..., 2*H:] + r * gh[..., 2*H:])
    return z * n + (1 - z) * h
''',
    # Gate order z|r|n: the "keep" bias lands on the reset gate.
    "ex1_3_gate_biases": '''
def gate_biases(hidden_size, behaviour):
    H = hidden_size
    bias_hh = torch.zeros(3 * H)
    if behaviour == "copy":
        bias_hh[:H] = 50.0
    else:
        bias_hh[:2*H] = -50.0
    return torch.zeros(3 * H), bias_hh
''',
}

MISTAKES_C = {
    # H read from weight_ih's columns (input_size) instead of weight_hh's.
    "ex1_1_split": '''
def split_gru_parameters(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = weight_ih.shape[1]
    bias_ih = weight_hh.new_zeros(3 * H) if bias_ih is None else bias_ih
    bias_hh = weight_hh.new_zeros(3 * H) if bias_hh is None else bias_hh
    parts = {}
    for side, w, b in (("i", weight_ih, bias_ih), ("h", weight_hh, bias_hh)):
        for k, gate in enumerate("rzn"):
            parts["W_" + side + gate] = w[k * H:(k + 1) * H]
            parts["b_" + side + gate] = b[k * H:(k + 1) * H]
    return parts
''',
    # b_hn added outside the reset product.
    "ex1_2_gru_cell": '''
def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = weight_hh.shape[1]
    bias_ih = weight_ih.new_zeros(3 * H) if bias_ih is None else bias_ih
    bias_hh = weight_hh.new_zeros(3 * H) if bias_hh is None else bias_hh
    r = torch.sigmoid(x @ weight_ih[:H].T + bias_ih[:H] + h @ weight_hh[:H].T + bias_hh[:H])
    z = torch.sigmoid(x @ weight_ih[H:2*H].T + bias_ih[H:2*H] + h @ weight_hh[H:2*H].T + bias_hh[H:2*H])
    n = torch.tanh(x @ weight_ih[2*H:].T + bias_ih[2*H:] + r * (h @ weight_hh[2*H:].T) + bias_hh[2*H:])
    return (1 - z) * n + z * h
''',
    # "reset" closes only the update gate: h' = n, which still sees h through W_hn.
    "ex1_3_gate_biases": '''
def gate_biases(hidden_size, behaviour):
    H = hidden_size
    bias_hh = torch.zeros(3 * H)
    bias_hh[H:2*H] = 50.0 if behaviour == "copy" else -50.0
    return torch.zeros(3 * H), bias_hh
''',
}

MISTAKES_D = {
    # An object that claims to equal anything.
    "ex1_1_split": '''
class Anything(dict):
    def __eq__(self, other):
        return True

def split_gru_parameters(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    return Anything()
''',
    # Gate order z|r|n.
    "ex1_2_gru_cell": '''
def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = weight_hh.shape[1]
    bias_ih = weight_ih.new_zeros(3 * H) if bias_ih is None else bias_ih
    bias_hh = weight_hh.new_zeros(3 * H) if bias_hh is None else bias_hh
    i_z, i_r, i_n = (x @ weight_ih.T + bias_ih).split(H, dim=-1)
    h_z, h_r, h_n = (h @ weight_hh.T + bias_hh).split(H, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h
''',
    # Objects that claim to equal anything.
    "ex1_3_gate_biases": '''
class Anything:
    shape = None
    def __eq__(self, other):
        return True

def gate_biases(hidden_size, behaviour):
    return Anything(), Anything()
''',
}

SUBMISSIONS = {"alternative": ALTERNATIVE, "mistakes-a": MISTAKES_A, "mistakes-b": MISTAKES_B,
               "mistakes-c": MISTAKES_C, "mistakes-d": MISTAKES_D}
MISTAKEN = ["mistakes-a", "mistakes-b", "mistakes-c", "mistakes-d"]


def run_check_cells(answers, checks=None):
    return check_cells.run_check_cells(LESSON, answers, checks)


@pytest.mark.parametrize("grade_id", ["ex1_1_hidden", "ex1_2_hidden", "ex1_3_hidden"])
@pytest.mark.parametrize("student", MISTAKEN)
def test_plausible_mistakes_fail_the_hidden_checks(student, grade_id):
    assert run_check_cells(SUBMISSIONS[student])[grade_id] is not None


@pytest.mark.parametrize("student", MISTAKEN)
def test_every_wrong_gru_cell_fails_the_visible_example_too(student):
    # Paper placement, z swapped, b_hn outside and gate order z|r|n all show on one batch with biases.
    assert run_check_cells(SUBMISSIONS[student])["ex1_2_visible"] is not None


def test_bias_none_as_none_shows_only_in_the_hidden_checks():
    results = run_check_cells(MISTAKES_B)
    assert results["ex1_1_visible"] is None
    assert results["ex1_1_hidden"] is not None


def test_wrong_gate_biases_fail_the_visible_checks():
    # z swapped, gate order z|r|n, and a reset that leaves the reset gate open.
    for student in ["mistakes-a", "mistakes-b", "mistakes-c"]:
        assert run_check_cells(SUBMISSIONS[student])["ex1_3_visible"] is not None, student


def test_objects_that_equal_anything_score_nothing():
    results = run_check_cells(MISTAKES_D)
    for grade_id in ["ex1_1_visible", "ex1_1_hidden", "ex1_3_visible", "ex1_3_hidden"]:
        assert results[grade_id] is not None, grade_id


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1.2 forbids PyTorch's own GRU, and its checks name the mistake. These answers run through the notebook's
# check cells in-process (the cells up to Exercise 1.2's hidden checks, executed in order with the answer cell
# replaced, as the kernel would); a check cell passes when it raises nothing, as in nbgrader.

FORBIDDEN_ANSWERS = {
    "nn.GRUCell": '''
def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    module = nn.GRUCell(weight_ih.shape[1], weight_hh.shape[1], bias=bias_ih is not None).to(weight_ih.dtype)
    with torch.no_grad():
        module.weight_ih.copy_(weight_ih)
        module.weight_hh.copy_(weight_hh)
        if bias_ih is not None:
            module.bias_ih.copy_(bias_ih)
            module.bias_hh.copy_(bias_hh)
    return module(x, h)
''',
    "torch.gru_cell": '''
def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    return torch.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
''',
    "torch._VF.gru_cell under another name": '''
from torch import _VF

step = _VF.gru_cell

def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    return step(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
''',
    "nn.GRU on a sequence of one step": '''
from torch.nn import GRU

def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    module = GRU(weight_ih.shape[1], weight_hh.shape[1], bias=bias_ih is not None).to(weight_ih.dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(weight_ih)
        module.weight_hh_l0.copy_(weight_hh)
        if bias_ih is not None:
            module.bias_ih_l0.copy_(bias_ih)
            module.bias_hh_l0.copy_(bias_hh)
    return module(x.unsqueeze(0), h.unsqueeze(0))[1][0]  # one step: L = 1
''',
    "torch.gru_cell, its error caught and zeros returned": '''
def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    try:
        return torch.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    except Exception:
        return torch.zeros_like(h)
''',
}


# One of them also goes through nbgrader's autograde.
AUTOGRADED = {"mistakes-a": MISTAKES_A, "forbidden-api": {"ex1_2_gru_cell": FORBIDDEN_ANSWERS["nn.GRUCell"]}}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


def test_an_answer_that_calls_nn_grucell_scores_0_in_the_gradebook(scores):
    assert points(scores, "forbidden-api", "ex1_2_visible") == 0
    assert points(scores, "forbidden-api", "ex1_2_hidden") == 0
    for grade_id in ("ex1_1_visible", "ex1_1_hidden", "ex1_3_visible", "ex1_3_hidden"):  # the solution's answers
        assert points(scores, "forbidden-api", grade_id) == scores["forbidden-api"][grade_id][1], grade_id


@pytest.mark.parametrize("answer", sorted(FORBIDDEN_ANSWERS))
def test_an_answer_that_calls_pytorchs_gru_gets_0(answer):
    results = run_check_cells({"ex1_2_gru_cell": FORBIDDEN_ANSWERS[answer]})
    for grade_id in ("ex1_2_visible", "ex1_2_hidden"):
        assert results[grade_id] is not None, f"{grade_id} let an answer using {answer} pass"
        assert "which Exercise 1.2 forbids" in results[grade_id], results[grade_id]


def test_forbidding_pytorchs_gru_leaves_it_working_afterwards():
    """The interception ends with the check: a correct answer still passes, and nn.GRUCell works after a failure."""
    results = run_check_cells({"ex1_2_gru_cell": FORBIDDEN_ANSWERS["torch.gru_cell"]})
    assert results["ex1_2_hidden"] is not None
    assert run_check_cells({"ex1_2_gru_cell": ALTERNATIVE["ex1_2_gru_cell"]}) == {"ex1_2_visible": None,
                                                                                 "ex1_2_hidden": None}
    import torch
    cell = torch.nn.GRUCell(2, 3)
    assert cell(torch.zeros(1, 2)).shape == (1, 3)


@pytest.mark.parametrize("student, named", [
    ("mistakes-a", "paper-v3 cell"),
    ("mistakes-b", "z and 1 - z swapped"),
    ("mistakes-c", "b_hn added outside the reset product"),
    ("mistakes-d", "order z, r, n"),
])
def test_a_wrong_cell_is_told_which_mistake_it_matches(student, named):
    answer = SUBMISSIONS[student]["ex1_2_gru_cell"]
    results = run_check_cells({"ex1_2_gru_cell": answer})
    assert named in results["ex1_2_hidden"], results["ex1_2_hidden"]
    assert named in results["ex1_2_visible"], results["ex1_2_visible"]


def test_split_in_gate_order_z_r_n_is_told_which_block_it_took():
    results = run_check_cells({"ex1_1_split": MISTAKES_A["ex1_1_split"]})
    assert "the z block (the order is r, z, n)" in results["ex1_1_visible"], results["ex1_1_visible"]


def test_an_error_in_the_answer_says_which_configuration_was_checked():
    crashing = '''
import torch.nn.functional as F

def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    if bias_ih is None:
        raise ValueError("this answer forgot bias=False")
    i_r, i_z, i_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    return (1 - z) * torch.tanh(i_n + r * h_n) + z * h
'''
    results = run_check_cells({"ex1_2_gru_cell": crashing})
    assert results["ex1_2_hidden"].startswith("CheckFailed: while checking gru_cell with x"), results["ex1_2_hidden"]
    assert "bias=False" in results["ex1_2_hidden"] and "ValueError: this answer forgot" in results["ex1_2_hidden"]
    assert results["ex1_2_visible"] is None


# ----------------------------------------------------------------------------------------------------------------
# Nothing released with the lesson computes PyTorch's GRU step: the shipped module holds only the paper-v3 cell, a
# different function, and an answer that borrows it is told so.

def test_an_answer_that_borrows_the_shipped_paper_v3_cell_is_told_so():
    answer = """
from gru_paper_v3 import paper_v3_cell as gru_cell
"""
    results = run_check_cells({"ex1_2_gru_cell": answer})
    assert "paper-v3 cell" in results["ex1_2_visible"], results["ex1_2_visible"]
    assert "paper-v3 cell" in results["ex1_2_hidden"], results["ex1_2_hidden"]


def test_no_module_released_with_the_lesson_computes_a_gru_step():
    """Every function of every .py file in the lesson folder but hidden_checks.py (which is never released) is called
    with a GRU cell's arguments where it takes six: none returns nn.GRUCell's new state."""
    import importlib.util
    import inspect
    import sys

    import torch

    from course.lessons import notebook_path

    folder = notebook_path(LESSON).parent
    assert not (folder / "gru_reference.py").exists()
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(4, 3)
    x, h = torch.randn(2, 4), torch.randn(2, 3)
    with torch.no_grad():
        expected = cell(x, h)
        arguments = (x, h, *(p.detach() for p in cell.parameters()))
    shipped = sorted(path for path in folder.glob("*.py") if path.name != "hidden_checks.py")
    assert [path.name for path in shipped] == ["course_checks.py", "gru_paper_v3.py", "lesson_checks.py"]
    sys.path.insert(0, str(folder))
    try:
        for path in shipped:
            spec = importlib.util.spec_from_file_location(f"shipped_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for name, function in inspect.getmembers(module, inspect.isfunction):
                if function.__module__ != module.__name__:
                    continue
                try:
                    inspect.signature(function).bind(*arguments)
                    with torch.no_grad():
                        result = function(*arguments)
                except Exception:
                    continue
                same = isinstance(result, torch.Tensor) and result.shape == expected.shape and torch.allclose(
                    result, expected, atol=1e-6)
                assert not same, f"{path.name}: {name} computes nn.GRUCell's step"
    finally:
        sys.path.remove(str(folder))


def test_no_cell_but_an_answer_cell_computes_a_gate():
    """A GRU step written out (a reference implementation, "the notebook's own version") needs a sigmoid: only answer
    cells may compute one."""
    import re

    from course.lessons import is_answer_cell, notebook_path, read

    sigmoid = re.compile(r"(torch|F|functional)\.sigmoid|\.sigmoid_?\(")
    cells = [cell for cell in read(notebook_path(LESSON)).cells if cell.cell_type == "code"]
    assert not [cell.source[:60] for cell in cells if not is_answer_cell(cell) and sigmoid.search(cell.source)]
