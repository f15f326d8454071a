"""Lesson 00's checks grade fairly: plausible mistakes lose points, correct answers written differently score full
marks. How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests)."""

import pytest

from tests.check_cells import run_check_cells
from tests.harness import LessonTests

LESSON = "00-orientation"

ALTERNATIVE = {
    # Correct, but by asking PyTorch instead of using the table.
    "ex0_1_gru_shapes": '''
def gru_shapes(seq_len, batch_size, input_size, hidden_size, num_layers=1,
               bidirectional=False, batch_first=False, unbatched=False):
    gru = nn.GRU(input_size, hidden_size, num_layers, bidirectional=bidirectional, batch_first=batch_first)
    if unbatched:
        x = torch.zeros(seq_len, input_size)
    else:
        x = torch.zeros((batch_size, seq_len, input_size) if batch_first else (seq_len, batch_size, input_size))
    output, h_n = gru(x)
    return output.shape, h_n.shape
''',
    "ex0_2_parameter_count": '''
def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):
    gru = nn.GRU(input_size, hidden_size, num_layers, bias, bidirectional=bidirectional)
    return sum(p.numel() for p in gru.parameters())
''',
    "ex0_3_initial_state": '''
def initial_hidden_state(gru, batch_size=None):
    d = 2 if gru.bidirectional else 1
    p = next(gru.parameters())
    if batch_size is None:
        return p.new_zeros(d * gru.num_layers, gru.hidden_size)
    return p.new_zeros(d * gru.num_layers, batch_size, gru.hidden_size)
''',
}

MISTAKES_A = {
    # batch_first applied to h_n as well.
    "ex0_1_gru_shapes": '''
def gru_shapes(seq_len, batch_size, input_size, hidden_size, num_layers=1,
               bidirectional=False, batch_first=False, unbatched=False):
    d = 2 if bidirectional else 1
    if unbatched:
        return (seq_len, d * hidden_size), (d * num_layers, hidden_size)
    if batch_first:
        return (batch_size, seq_len, d * hidden_size), (batch_size, d * num_layers, hidden_size)
    return (seq_len, batch_size, d * hidden_size), (d * num_layers, batch_size, hidden_size)
''',
    # Upper layers read H features, forgetting that a bidirectional layer below gives 2H.
    "ex0_2_parameter_count": '''
def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):
    d = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else hidden_size
        total += d * (3 * hidden_size * (n_in + hidden_size) + (6 * hidden_size if bias else 0))
    return total
''',
    # Always float32, whatever the module's dtype.
    "ex0_3_initial_state": '''
def initial_hidden_state(gru, batch_size=None):
    d = 2 if gru.bidirectional else 1
    if batch_size is None:
        return torch.zeros(d * gru.num_layers, gru.hidden_size)
    return torch.zeros(d * gru.num_layers, batch_size, gru.hidden_size)
''',
}

MISTAKES_B = {
    # Unbatched input not handled: keeps a batch dimension of batch_size.
    "ex0_1_gru_shapes": '''
def gru_shapes(seq_len, batch_size, input_size, hidden_size, num_layers=1,
               bidirectional=False, batch_first=False, unbatched=False):
    d = 2 if bidirectional else 1
    out = (batch_size, seq_len, d * hidden_size) if batch_first else (seq_len, batch_size, d * hidden_size)
    return out, (d * num_layers, batch_size, hidden_size)
''',
    # bias=False ignored: the biases are always counted.
    "ex0_2_parameter_count": '''
def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):
    d = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else d * hidden_size
        total += d * (3 * hidden_size * (n_in + hidden_size) + 6 * hidden_size)
    return total
''',
    # Unbatched case forgotten: always a batch dimension.
    "ex0_3_initial_state": '''
def initial_hidden_state(gru, batch_size=None):
    d = 2 if gru.bidirectional else 1
    w = gru.weight_hh_l0
    return torch.zeros(d * gru.num_layers, batch_size or 1, gru.hidden_size, dtype=w.dtype, device=w.device)
''',
}

HOSTILE = {
    # Objects that claim to equal anything.
    "ex0_1_gru_shapes": '''
class Anything(tuple):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

def gru_shapes(*args, **kwargs):
    return Anything((Anything(), Anything()))
''',
    "ex0_2_parameter_count": '''
class Anything(int):
    def __eq__(self, other):
        return True

def gru_parameter_count(*args, **kwargs):
    return Anything(0)
''',
}

SUBMISSIONS = {"alternative": ALTERNATIVE, "mistakes-a": MISTAKES_A, "mistakes-b": MISTAKES_B, "hostile": HOSTILE}
AUTOGRADED = {"mistakes-a": SUBMISSIONS["mistakes-a"]}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


@pytest.mark.parametrize("student", ["mistakes-a", "mistakes-b"])
def test_plausible_mistakes_fail_the_hidden_checks(student):
    results = run_check_cells(LESSON, SUBMISSIONS[student])
    for grade_id in ["ex0_1_hidden", "ex0_2_hidden", "ex0_3_hidden"]:
        assert results[grade_id] is not None, f"{student}: {grade_id} passed"


def test_mistakes_that_the_examples_show_fail_visible_checks_too():
    # batch_first on h_n shows in the article's Example 2; ignoring unbatched input does not show there.
    assert run_check_cells(LESSON, MISTAKES_A)["ex0_1_visible"] is not None
    assert run_check_cells(LESSON, MISTAKES_B)["ex0_1_visible"] is None


def test_objects_that_equal_anything_score_nothing():
    results = run_check_cells(LESSON, HOSTILE)
    for grade_id in ["ex0_1_visible", "ex0_1_hidden", "ex0_2_visible", "ex0_2_hidden"]:
        assert results[grade_id] is not None, grade_id
