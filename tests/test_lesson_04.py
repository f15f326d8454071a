"""Lesson 04's checks grade fairly: plausible bidirectional mistakes (directions swapped, layers mixed up in h_n,
`output[-1]` used as the backward state, padding not handled) lose points, correct answers written differently score
full marks. How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests)."""

import pytest

from tests.check_cells import run_check_cells
from tests.harness import LessonTests

LESSON = "04-bidirectional"

ALTERNATIVE = {
    # Correct, without the notebook's run_direction: its own loop over flipped inputs, gates sliced by hand,
    # h = n + z * (h - n), permute instead of transpose, missing biases as zeros.
    "ex4_1_bidirectional_forward": '''
def bidirectional_gru_forward(x, h0, params, num_layers, batch_first=False):
    single = x.ndim == 2
    if single:
        x = x[:, None, :]
        if h0 is not None:
            h0 = h0[:, None, :]
    elif batch_first:
        x = x.permute(1, 0, 2)
    size = params["weight_hh_l0"].shape[-1]
    if h0 is None:
        h0 = x.new_zeros((2 * num_layers, x.shape[1], size))
    finals, sequence = [], x
    for k in range(num_layers):
        halves = []
        for d, suffix in ((0, ""), (1, "_reverse")):
            w_ih, w_hh = params[f"weight_ih_l{k}{suffix}"], params[f"weight_hh_l{k}{suffix}"]
            zero = torch.zeros(3 * size, dtype=x.dtype)
            b_ih = params.get(f"bias_ih_l{k}{suffix}", zero)
            b_hh = params.get(f"bias_hh_l{k}{suffix}", zero)
            source = torch.flip(sequence, dims=[0]) if d == 1 else sequence
            projected = torch.matmul(source, w_ih.t()) + b_ih
            h, states = h0[2 * k + d], []
            for g in projected:
                gh = torch.matmul(h, w_hh.t()) + b_hh
                r = torch.sigmoid(g[..., :size] + gh[..., :size])
                z = torch.sigmoid(g[..., size:2 * size] + gh[..., size:2 * size])
                n = torch.tanh(g[..., 2 * size:] + r * gh[..., 2 * size:])
                h = n + z * (h - n)
                states.append(h)
            states = torch.stack(states)
            halves.append(torch.flip(states, dims=[0]) if d == 1 else states)
            finals.append(h)
        sequence = torch.cat(halves, dim=2)
    h_n = torch.stack(finals, dim=0)
    if single:
        return sequence[:, 0, :], h_n[:, 0, :]
    return (sequence.permute(1, 0, 2) if batch_first else sequence), h_n
''',
    # Correct, by plain row arithmetic instead of a view.
    "ex4_2_final_states": '''
def final_states(h_n, num_layers, bidirectional):
    if not bidirectional:
        return h_n[num_layers - 1], None
    return h_n[2 * num_layers - 2], h_n[2 * num_layers - 1]
''',
    # Correct, with a Python loop over the sequences and lengths turned into ints.
    "ex4_3_last_outputs": '''
def last_outputs(output, lengths, bidirectional, batch_first=False):
    rows = []
    half = output.shape[-1] // 2
    for n, length in enumerate(int(v) for v in lengths):
        if batch_first:
            last, first = output[n, length - 1], output[n, 0]
        else:
            last, first = output[length - 1, n], output[0, n]
        rows.append(torch.cat([last[:half], first[half:]]) if bidirectional else last)
    return torch.stack(rows)
''',
}

# Exercise 4.1's answer cell holds the learner's own GRU step (the notebook has none) and, in these variants, a run
# of one direction of one layer built on it.
STEP = '''
def gru_step(x_t, h, w_ih, w_hh, b_ih=None, b_hh=None):
    gates_x = x_t @ w_ih.T if b_ih is None else x_t @ w_ih.T + b_ih
    gates_h = h @ w_hh.T if b_hh is None else h @ w_hh.T + b_hh
    x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
    h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def run_direction(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False):
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    outputs = [None] * x.shape[0]
    h = h0
    for t in steps:
        h = gru_step(x[t], h, w_ih, w_hh, b_ih, b_hh)
        outputs[t] = h
    return torch.stack(outputs), h
'''

# The reference solution's structure with one bug each, so that each test says which mistake is caught.
FORWARD_TEMPLATE = STEP + '''
def bidirectional_gru_forward(x, h0, params, num_layers, batch_first=False):
    unbatched = x.dim() == 2
    if unbatched:
        x = x.unsqueeze(1)
        h0 = None if h0 is None else h0.unsqueeze(1)
    elif batch_first:
        x = x.transpose(0, 1)
    hidden_size = params["weight_hh_l0"].shape[1]
    if h0 is None:
        h0 = torch.zeros(2 * num_layers, x.shape[1], hidden_size, dtype=x.dtype, device=x.device)
    layer_input, forward_finals, backward_finals = x, [], []
    for layer in range(num_layers):
        directions = []
        for direction, suffix in enumerate(["", "_reverse"]):
            w_ih, w_hh, b_ih, b_hh = (params.get(f"{kind}_l{layer}{suffix}")
                                      for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            RUN
            directions.append(outputs)
            (backward_finals if direction else forward_finals).append(last)
        layer_input = CONCAT
    output, h_n = layer_input, STACK
    if unbatched:
        return output.squeeze(1), h_n.squeeze(1)
    if batch_first:
        output = output.transpose(0, 1)
    return output, h_n
'''
RIGHT = {
    "RUN": "outputs, last = run_direction(layer_input, h0[2 * layer + direction], w_ih, w_hh, b_ih, b_hh, "
           "reverse=direction == 1)",
    "CONCAT": "torch.cat(directions, dim=-1)",
    "STACK": "torch.stack([h for pair in zip(forward_finals, backward_finals) for h in pair])",
}


def forward_with(**changes):
    source = FORWARD_TEMPLATE
    for key, value in {**RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


MISTAKES_A = {
    # Directions swapped in output: [backward | forward].
    "ex4_1_bidirectional_forward": forward_with(CONCAT="torch.cat(directions[::-1], dim=-1)"),
    # Layers mixed up: h_n read direction-major.
    "ex4_2_final_states": '''
def final_states(h_n, num_layers, bidirectional):
    d = 2 if bidirectional else 1
    rows = h_n.view(d, num_layers, *h_n.shape[1:])
    return rows[0, -1], (rows[1, -1] if bidirectional else None)
''',
    # Padding not handled: output[-1] taken as every sequence's last output.
    "ex4_3_last_outputs": '''
def last_outputs(output, lengths, bidirectional, batch_first=False):
    if batch_first:
        output = output.transpose(0, 1)
    if not bidirectional:
        return output[-1]
    hidden_size = output.shape[-1] // 2
    return torch.cat([output[-1, :, :hidden_size], output[0, :, hidden_size:]], dim=-1)
''',
}

MISTAKES_B = {
    # Layers mixed up in h_n: all forward rows, then all backward rows (direction-major).
    "ex4_1_bidirectional_forward": forward_with(STACK="torch.stack(forward_finals + backward_finals)"),
    # Directions swapped: h_n[-1] taken as the forward state.
    "ex4_2_final_states": '''
def final_states(h_n, num_layers, bidirectional):
    if not bidirectional:
        return h_n[-1], None
    return h_n[-1], h_n[-2]
''',
    # output[-1]-style backward state: both halves read at the last real step (padding handled).
    "ex4_3_last_outputs": '''
def last_outputs(output, lengths, bidirectional, batch_first=False):
    if batch_first:
        output = output.transpose(0, 1)
    lengths = torch.as_tensor(lengths)
    return output[lengths - 1, torch.arange(output.shape[1])]
''',
}

MISTAKES_C = {
    # The backward direction's outputs left in processing order (input flipped, output not flipped back).
    "ex4_1_bidirectional_forward": forward_with(
        RUN="outputs, last = run_direction(layer_input.flip(0) if direction else layer_input, "
            "h0[2 * layer + direction], w_ih, w_hh, b_ih, b_hh)"),
    # The top layer's rows taken as h_n[-2], h_n[-1] even with one direction.
    "ex4_2_final_states": '''
def final_states(h_n, num_layers, bidirectional):
    return h_n[-2], (h_n[-1] if bidirectional else None)
''',
    # batch_first ignored.
    "ex4_3_last_outputs": '''
def last_outputs(output, lengths, bidirectional, batch_first=False):
    lengths = torch.as_tensor(lengths)
    last = output[lengths - 1, torch.arange(output.shape[1])]
    if not bidirectional:
        return last
    hidden_size = output.shape[-1] // 2
    return torch.cat([last[:, :hidden_size], output[0, :, hidden_size:]], dim=-1)
''',
}

HOSTILE = {
    # Objects that claim to equal anything.
    "ex4_1_bidirectional_forward": '''
class Anything(tuple):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

def bidirectional_gru_forward(*args, **kwargs):
    return Anything((Anything(), Anything()))
''',
    "ex4_2_final_states": '''
class Anything:
    def __eq__(self, other):
        return True

def final_states(h_n, num_layers, bidirectional):
    return Anything(), Anything()
''',
    "ex4_3_last_outputs": '''
class Anything(list):
    def __eq__(self, other):
        return True

def last_outputs(*args, **kwargs):
    return Anything()
''',
}

SUBMISSIONS = {"alternative": ALTERNATIVE, "mistakes-a": MISTAKES_A, "mistakes-b": MISTAKES_B,
               "mistakes-c": MISTAKES_C, "hostile": HOSTILE}


AUTOGRADED = {"mistakes-a": SUBMISSIONS["mistakes-a"]}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


@pytest.mark.parametrize("grade_id", ["ex4_1_hidden", "ex4_2_hidden", "ex4_3_hidden"])
@pytest.mark.parametrize("student", ["mistakes-a", "mistakes-b", "mistakes-c", "hostile"])
def test_plausible_mistakes_fail_the_hidden_checks(student, grade_id):
    assert run_check_cells(LESSON, SUBMISSIONS[student])[grade_id] is not None


def test_mistakes_in_the_visible_examples_fail_visible_checks_too():
    # Every mistake but one shows on the visible examples (a 2-layer BiGRU; a 2-layer h_n; a padded batch).
    results = {student: run_check_cells(LESSON, SUBMISSIONS[student])
               for student in ["mistakes-a", "mistakes-b", "mistakes-c", "hostile"]}
    for student, checks in results.items():
        for grade_id in ["ex4_1_visible", "ex4_2_visible"]:
            assert checks[grade_id] is not None, (student, grade_id)
    for student in ["mistakes-a", "mistakes-b", "hostile"]:
        assert results[student]["ex4_3_visible"] is not None, student
    # Ignoring batch_first does not show on the visible (time-major) examples; only the hidden checks catch it.
    assert results["mistakes-c"]["ex4_3_visible"] is None


# ----------------------------------------------------------------------------------------------------------------
# What the learner is told: the messages name the half of output, the rows of h_n or the known mistake that
# explains a wrong answer.

@pytest.mark.parametrize("student, grade_id, told", [
    ("mistakes-a", "ex4_1_visible", "the forward half of output (features :H)"),
    ("mistakes-a", "ex4_1_visible", "Your result equals the backward half: output is [forward | backward]"),
    ("mistakes-c", "ex4_1_visible", "Your result equals the backward states stored in the order they were computed"),
    ("mistakes-b", "ex4_1_visible", "Your result equals h_n in direction-major order"),
    ("mistakes-a", "ex4_2_visible", "Your result equals h_n[1], layer 0's backward final state"),
    ("mistakes-a", "ex4_3_visible", "Your result equals output[-1], the last padded step"),
    ("mistakes-b", "ex4_3_visible", "the backward half (features H:)"),
    ("mistakes-b", "ex4_3_visible", "Your result equals the backward half at step lengths - 1"),
])
def test_messages_say_which_half_or_row_is_wrong_and_why(student, grade_id, told):
    message = run_check_cells(LESSON, SUBMISSIONS[student])[grade_id]
    assert message is not None and told in message, message


def test_an_error_in_the_answer_says_which_configuration_was_checked():
    crashing = forward_with(RUN="outputs, last = run_direction(layer_input, h0[2 * layer + direction], "
                                "w_ih, w_hh, b_ih.clone(), b_hh, reverse=direction == 1)")  # fails for bias=False
    results = run_check_cells(LESSON, {"ex4_1_bidirectional_forward": crashing})
    assert results["ex4_1_visible"] is None
    assert results["ex4_1_hidden"].startswith("CheckFailed: while checking bidirectional_gru_forward for nn.GRU("), (
        results["ex4_1_hidden"])
    assert "bias=False" in results["ex4_1_hidden"] and "AttributeError" in results["ex4_1_hidden"]


# ----------------------------------------------------------------------------------------------------------------
# Exercise 4.1 is from its parameters: PyTorch's own GRU is forbidden by whatever route, the learner's own GRU step
# is checked (its classic mistakes named), and so is the use of h0.

CORRECT_FORWARD = forward_with()
STEP_LINE = "def gru_step(x_t, h, w_ih, w_hh, b_ih=None, b_hh=None):"

FORBIDDEN_ROUTES = {
    "nn.GRU": '''
def bidirectional_gru_forward(x, h0, params, num_layers, batch_first=False):
    module = nn.GRU(params["weight_ih_l0"].shape[1], params["weight_hh_l0"].shape[1], num_layers,
                    bias="bias_ih_l0" in params, batch_first=batch_first, bidirectional=True).to(x.dtype)
    module.load_state_dict(params)
    with torch.no_grad():
        return module(x, h0)
''',
    "nn.GRUCell": CORRECT_FORWARD.replace(STEP_LINE, '''
def gru_step(x_t, h, w_ih, w_hh, b_ih=None, b_hh=None):
    cell = nn.GRUCell(w_ih.shape[1], w_hh.shape[1], bias=b_ih is not None).to(x_t.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(w_ih)
        cell.weight_hh.copy_(w_hh)
        if b_ih is not None:
            cell.bias_ih.copy_(b_ih)
            cell.bias_hh.copy_(b_hh)
        return cell(x_t, h)


def unused_step(x_t, h, w_ih, w_hh, b_ih=None, b_hh=None):'''),
    "torch.gru_cell": CORRECT_FORWARD.replace(STEP_LINE, '''
def gru_step(x_t, h, w_ih, w_hh, b_ih=None, b_hh=None):
    return torch.gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh)


def unused_step(x_t, h, w_ih, w_hh, b_ih=None, b_hh=None):'''),
    "torch._VF.gru": '''
def bidirectional_gru_forward(x, h0, params, num_layers, batch_first=False):
    if h0 is None:
        shape = (2 * num_layers, params["weight_hh_l0"].shape[1]) if x.dim() == 2 else (
            2 * num_layers, x.shape[0 if batch_first else 1], params["weight_hh_l0"].shape[1])
        h0 = x.new_zeros(shape)
    unbatched = x.dim() == 2
    if unbatched:
        x, h0 = x.unsqueeze(1), h0.unsqueeze(1)
    output, h_n = torch._VF.gru(x, h0, list(params.values()), "bias_ih_l0" in params, num_layers, 0.0, False,
                                True, batch_first and not unbatched)
    return (output.squeeze(1), h_n.squeeze(1)) if unbatched else (output, h_n)
''',
}


@pytest.mark.parametrize("route", sorted(FORBIDDEN_ROUTES))
def test_pytorch_s_own_gru_is_forbidden_in_exercise_4_1(route):
    results = run_check_cells(LESSON, {"ex4_1_bidirectional_forward": FORBIDDEN_ROUTES[route]})
    for grade_id in ("ex4_1_visible", "ex4_1_hidden"):
        assert results[grade_id] is not None and "which Exercise 4.1 forbids" in results[grade_id], results[grade_id]


def test_the_correct_forward_of_the_tests_passes():
    results = run_check_cells(LESSON, {"ex4_1_bidirectional_forward": CORRECT_FORWARD})
    assert results == {"ex4_1_visible": None, "ex4_1_hidden": None}, results


def with_step(old, new):
    assert CORRECT_FORWARD.count(old) == 1, old
    return CORRECT_FORWARD.replace(old, new)


PAPER_V3 = with_step("n = torch.tanh(x_n + r * h_n)",
                     "n = torch.tanh(x_n + (r * h) @ w_hh[2 * h.shape[-1]:].T "
                     "+ (0 if b_hh is None else b_hh[2 * h.shape[-1]:]))")
Z_SWAPPED = with_step("return (1 - z) * n + z * h", "return z * n + (1 - z) * h")
H0_IGNORED = forward_with(RUN="outputs, last = run_direction(layer_input, torch.zeros_like(h0[0]), w_ih, w_hh, b_ih, "
                              "b_hh, reverse=direction == 1)")
H0_DIRECTION_MAJOR = forward_with(RUN="outputs, last = run_direction(layer_input, h0[direction * num_layers + layer], "
                                      "w_ih, w_hh, b_ih, b_hh, reverse=direction == 1)")


@pytest.mark.parametrize("answer, grade_id, told", [
    (Z_SWAPPED, "ex4_1_visible", "Your result equals a GRU with z and 1 - z swapped"),
    (PAPER_V3, "ex4_1_hidden", "Your result equals a GRU with the paper-v3 reset"),
    (H0_IGNORED, "ex4_1_visible", "Your result equals a GRU started from zeros"),
    (H0_DIRECTION_MAJOR, "ex4_1_visible", "Your result equals h0 read direction-major"),
])
def test_the_checks_name_a_wrong_step_or_initial_state(answer, grade_id, told):
    results = run_check_cells(LESSON, {"ex4_1_bidirectional_forward": answer})
    assert results["ex4_1_visible"] is not None and results["ex4_1_hidden"] is not None, results
    assert told in results[grade_id], results[grade_id]


def test_an_answer_that_changes_x_in_place_fails():
    # Correct values, but the caller's batch-first x transposed in place.
    answer = forward_with().replace("        x = x.transpose(0, 1)\n", "        x = x.transpose_(0, 1)\n")
    results = run_check_cells(LESSON, {"ex4_1_bidirectional_forward": answer})
    assert results["ex4_1_visible"] is not None and "x was changed in place" in results["ex4_1_visible"], results


# Exercise 4.3: the hidden lengths show off-by-one indices and masks, unsorted batches and a batch of one.
LAST_OUTPUTS_MISTAKES = {
    # An off-by-one mask (<= instead of <): the step after each sequence's last, clamped to the padded length.
    "mask off by one": '''
def last_outputs(output, lengths, bidirectional, batch_first=False):
    if batch_first:
        output = output.transpose(0, 1)
    lengths = torch.as_tensor(lengths)
    steps = torch.arange(output.shape[0])[:, None]
    last = ((steps <= lengths[None]).sum(0) - 1).clamp(max=output.shape[0] - 1)
    rows = output[last, torch.arange(output.shape[1])]
    if not bidirectional:
        return rows
    half = output.shape[-1] // 2
    return torch.cat([rows[:, :half], output[0, :, half:]], dim=-1)
''',
    # The lengths read as if sorted longest first (as pack_padded_sequence's default wants them).
    "lengths assumed sorted": '''
def last_outputs(output, lengths, bidirectional, batch_first=False):
    if batch_first:
        output = output.transpose(0, 1)
    lengths = torch.as_tensor(lengths).sort(descending=True).values
    rows = output[lengths - 1, torch.arange(output.shape[1])]
    if not bidirectional:
        return rows
    half = output.shape[-1] // 2
    return torch.cat([rows[:, :half], output[0, :, half:]], dim=-1)
''',
    # squeeze() to drop "extra" dimensions: a batch of one loses its batch dimension.
    "batch of one squeezed": '''
def last_outputs(output, lengths, bidirectional, batch_first=False):
    if batch_first:
        output = output.transpose(0, 1)
    lengths = torch.as_tensor(lengths)
    rows = output[lengths - 1, torch.arange(output.shape[1])]
    if bidirectional:
        half = output.shape[-1] // 2
        rows = torch.cat([rows[:, :half], output[0, :, half:]], dim=-1)
    return rows.squeeze()
''',
}


@pytest.mark.parametrize("mistake", sorted(LAST_OUTPUTS_MISTAKES))
def test_last_outputs_mistakes_fail_the_hidden_checks(mistake):
    results = run_check_cells(LESSON, {"ex4_3_last_outputs": LAST_OUTPUTS_MISTAKES[mistake]})
    assert results["ex4_3_hidden"] is not None, mistake


def test_an_off_by_one_mask_fails_on_a_length_one_sequence_next_to_a_full_one():
    message = run_check_cells(LESSON, {"ex4_3_last_outputs": LAST_OUTPUTS_MISTAKES["mask off by one"]})["ex4_3_hidden"]
    assert "lengths=[3, 6, 1, 4]" in message, message


def test_one_step_too_early_is_named():
    answer = {"ex4_3_last_outputs": ALTERNATIVE["ex4_3_last_outputs"].replace("length - 1", "length - 2")}
    results = run_check_cells(LESSON, answer)
    for grade_id in ("ex4_3_visible", "ex4_3_hidden"):
        assert "Your result equals each sequence's step lengths[n] - 2" in results[grade_id], results[grade_id]


def test_an_answer_that_changes_output_in_place_fails():
    answer = {"ex4_3_last_outputs": ALTERNATIVE["ex4_3_last_outputs"].replace(
        "    return torch.stack(rows)", "    result = torch.stack(rows)\n    output.zero_()\n    return result")}
    message = run_check_cells(LESSON, answer)["ex4_3_visible"]
    assert message is not None and "output was changed in place" in message, message


# Through the course's grader too (checks judged in its process, answers run in the sandboxed kernel): nn.GRU
# loaded from the parameters, a correct answer, and a correct value returned by an answer that zeroes its input in
# place. The shared test of LessonTests compares each cell's score with the in-process run.
AUTOGRADED["routes-and-in-place"] = {
    "ex4_1_bidirectional_forward": FORBIDDEN_ROUTES["nn.GRU"],
    "ex4_2_final_states": ALTERNATIVE["ex4_2_final_states"],
    "ex4_3_last_outputs": ALTERNATIVE["ex4_3_last_outputs"].replace(
        "    return torch.stack(rows)", "    result = torch.stack(rows)\n    output.zero_()\n    return result"),
}


def test_the_grader_s_student_gets_what_the_in_process_checks_say():
    results = run_check_cells(LESSON, AUTOGRADED["routes-and-in-place"])
    assert {grade_id for grade_id, error in results.items() if error is None} == {"ex4_2_visible", "ex4_2_hidden"}
    assert "which Exercise 4.1 forbids" in results["ex4_1_visible"], results
    assert "output was changed in place" in results["ex4_3_visible"], results
