"""Lesson 01's checks grade fairly: the plausible mistakes of writing a GRU cell (the paper's reset-gate placement,
z and 1 - z swapped, gate order z|r|n, b_hn outside the reset product, ...) lose points, and correct answers written
differently score full marks. Every variant is a student submission graded by nbgrader's autograde into the
gradebook."""

import pytest

from tests.harness import grade_variants, points

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


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    return grade_variants(tmp_path_factory.mktemp("lesson01"), LESSON, SUBMISSIONS)


def test_alternative_correct_answers_get_full_marks(scores):
    assert len(scores["alternative"]) == 6
    for grade_id, (score, max_score) in scores["alternative"].items():
        assert score == max_score, f"{grade_id}: a correct answer written differently scored {score}/{max_score}"


@pytest.mark.parametrize("grade_id", ["ex1_1_hidden", "ex1_2_hidden", "ex1_3_hidden"])
@pytest.mark.parametrize("student", MISTAKEN)
def test_plausible_mistakes_fail_the_hidden_checks(scores, student, grade_id):
    assert points(scores, student, grade_id) == 0


@pytest.mark.parametrize("student", MISTAKEN)
def test_every_wrong_gru_cell_fails_the_visible_example_too(scores, student):
    # Paper placement, z swapped, b_hn outside and gate order z|r|n all show on one batch with biases.
    assert points(scores, student, "ex1_2_visible") == 0


def test_bias_none_as_none_shows_only_in_the_hidden_checks(scores):
    assert points(scores, "mistakes-b", "ex1_1_visible") == 1
    assert points(scores, "mistakes-b", "ex1_1_hidden") == 0


def test_wrong_gate_biases_fail_the_visible_checks(scores):
    # z swapped, gate order z|r|n, and a reset that leaves the reset gate open.
    for student in ["mistakes-a", "mistakes-b", "mistakes-c"]:
        assert points(scores, student, "ex1_3_visible") == 0, student


def test_objects_that_equal_anything_score_nothing(scores):
    for grade_id in ["ex1_1_visible", "ex1_1_hidden", "ex1_3_visible", "ex1_3_hidden"]:
        assert points(scores, "mistakes-d", grade_id) == 0, grade_id
