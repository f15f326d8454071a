"""Lesson 03's checks grade fairly: plausible mistakes with stacked layers (layers mixed up in h_n, output from the
wrong layer, every layer fed the original input, batch_first mishandled) lose points, and correct answers written
differently score full marks. How the variants run, and what every lesson's module checks: tests/harness.py
(LessonTests)."""

import pytest

from tests.check_cells import run_check_cells
from tests.harness import LessonTests

LESSON = "03-multi-layer"

# Exercise 3.2's answer cell holds the learner's own GRU step (the notebook has none): a correct one, which the
# 3.2 variants below build on, and the run of one layer.
STEP = '''
def gru_step(x_t, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    gates_x = x_t @ weight_ih.T if bias_ih is None else x_t @ weight_ih.T + bias_ih
    gates_h = h @ weight_hh.T if bias_hh is None else h @ weight_hh.T + bias_hh
    x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
    h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def run_layer(x, h, p):
    states = []
    for x_t in x:
        h = gru_step(x_t, h, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        states.append(h)
    return torch.stack(states), h
'''

# The reference solution's structure, with the step replaced (each a classic mistake in the GRU equations).
CORRECT_FORWARD = STEP + '''

def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    layer_input = x.transpose(0, 1) if swap else x
    last_states = []
    for k, p in enumerate(layer_params):
        layer_input, last = run_layer(layer_input, h0[k], p)
        last_states.append(last)
    return (layer_input.transpose(0, 1) if swap else layer_input), torch.stack(last_states)
'''

ALTERNATIVE = {
    # Correct, by asking PyTorch; the shapes stay torch.Size (a tuple subclass).
    "ex3_1_parameter_shapes": '''
def stacked_parameter_shapes(input_size, hidden_size, num_layers, bias=True):
    module = nn.GRU(input_size, hidden_size, num_layers, bias=bias)
    return {name: parameter.shape for name, parameter in module.named_parameters()}
''',
    # Correct, but time in the outer loop and layers in the inner one, with F.linear, slices instead of chunk,
    # and h = n + z * (h - n) instead of (1 - z) * n + z * h.
    "ex3_2_stacked_forward": '''
import torch.nn.functional as F


def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.ndim == 3
    if swap:
        x = x.permute(1, 0, 2)
    states = list(h0.unbind(0))
    top = []
    for x_t in x.unbind(0):
        below = x_t
        for k, p in enumerate(layer_params):
            gi = F.linear(below, p["weight_ih"], p["bias_ih"])
            gh = F.linear(states[k], p["weight_hh"], p["bias_hh"])
            size = gh.shape[-1] // 3
            r = torch.sigmoid(gi[..., :size] + gh[..., :size])
            z = torch.sigmoid(gi[..., size:2 * size] + gh[..., size:2 * size])
            n = torch.tanh(gi[..., 2 * size:] + r * gh[..., 2 * size:])
            states[k] = n + z * (states[k] - n)
            below = states[k]
        top.append(below)
    output = torch.stack(top)
    if swap:
        output = output.permute(1, 0, 2)
    return output, torch.stack(states)
''',
    "ex3_3_h_n_rows": '''
def top_layer_last_state(h_n):
    return h_n[h_n.shape[0] - 1].clone()


def layer_last_state(h_n, layer):
    return torch.select(h_n, 0, layer)
''',
    "ex3_4_output_step": '''
def top_layer_state_at(output, step, batch_first=False):
    time_first = output.movedim(1, 0) if (batch_first and output.ndim == 3) else output
    return time_first[step]
''',
}

MISTAKES_A = {
    # Every layer's weight_ih sized for the input.
    "ex3_1_parameter_shapes": '''
def stacked_parameter_shapes(input_size, hidden_size, num_layers, bias=True):
    shapes = {}
    for k in range(num_layers):
        shapes[f"weight_ih_l{k}"] = (3 * hidden_size, input_size)
        shapes[f"weight_hh_l{k}"] = (3 * hidden_size, hidden_size)
        if bias:
            shapes[f"bias_ih_l{k}"] = (3 * hidden_size,)
            shapes[f"bias_hh_l{k}"] = (3 * hidden_size,)
    return shapes
''',
    # Every layer fed the original input.
    "ex3_2_stacked_forward": STEP + '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    x = x.transpose(0, 1) if swap else x
    last_states = []
    for k, p in enumerate(layer_params):
        outputs, last = run_layer(x, h0[k], p)
        last_states.append(last)
    return (outputs.transpose(0, 1) if swap else outputs), torch.stack(last_states)
''',
    # h_n[0] taken as the top layer.
    "ex3_3_h_n_rows": '''
def top_layer_last_state(h_n):
    return h_n[0]


def layer_last_state(h_n, layer):
    return h_n[layer]
''',
    # batch_first ignored: always time-major.
    "ex3_4_output_step": '''
def top_layer_state_at(output, step, batch_first=False):
    return output[step]
''',
}

MISTAKES_B = {
    # bias=False ignored.
    "ex3_1_parameter_shapes": '''
def stacked_parameter_shapes(input_size, hidden_size, num_layers, bias=True):
    shapes = {}
    for k in range(num_layers):
        shapes[f"weight_ih_l{k}"] = (3 * hidden_size, input_size if k == 0 else hidden_size)
        shapes[f"weight_hh_l{k}"] = (3 * hidden_size, hidden_size)
        shapes[f"bias_ih_l{k}"] = (3 * hidden_size,)
        shapes[f"bias_hh_l{k}"] = (3 * hidden_size,)
    return shapes
''',
    # output taken from the bottom layer (h_n right).
    "ex3_2_stacked_forward": STEP + '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    layer_input = x.transpose(0, 1) if swap else x
    outputs_per_layer, last_states = [], []
    for k, p in enumerate(layer_params):
        layer_input, last = run_layer(layer_input, h0[k], p)
        outputs_per_layer.append(layer_input)
        last_states.append(last)
    output = outputs_per_layer[0]
    return (output.transpose(0, 1) if swap else output), torch.stack(last_states)
''',
    # Layers counted from the top.
    "ex3_3_h_n_rows": '''
def top_layer_last_state(h_n):
    return h_n[-1]


def layer_last_state(h_n, layer):
    return h_n[-1 - layer]
''',
    # batch_first applied to unbatched output too.
    "ex3_4_output_step": '''
def top_layer_state_at(output, step, batch_first=False):
    return output[:, step] if batch_first else output[step]
''',
}

MISTAKES_C = {
    # Shapes transposed: (in_features, 3H) as in x @ W.
    "ex3_1_parameter_shapes": '''
def stacked_parameter_shapes(input_size, hidden_size, num_layers, bias=True):
    shapes = {}
    for k in range(num_layers):
        shapes[f"weight_ih_l{k}"] = (input_size if k == 0 else hidden_size, 3 * hidden_size)
        shapes[f"weight_hh_l{k}"] = (hidden_size, 3 * hidden_size)
        if bias:
            shapes[f"bias_ih_l{k}"] = (3 * hidden_size,)
            shapes[f"bias_hh_l{k}"] = (3 * hidden_size,)
    return shapes
''',
    # h_n stacked top layer first.
    "ex3_2_stacked_forward": STEP + '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    layer_input = x.transpose(0, 1) if swap else x
    last_states = []
    for k, p in enumerate(layer_params):
        layer_input, last = run_layer(layer_input, h0[k], p)
        last_states.insert(0, last)
    return (layer_input.transpose(0, 1) if swap else layer_input), torch.stack(last_states)
''',
    # The batch-first output's "last step" slice applied to h_n.
    "ex3_3_h_n_rows": '''
def top_layer_last_state(h_n):
    return h_n[:, -1]


def layer_last_state(h_n, layer):
    return h_n[layer]
''',
    # Assumes batch first whenever output has a batch dimension.
    "ex3_4_output_step": '''
def top_layer_state_at(output, step, batch_first=False):
    return output[:, step] if output.dim() == 3 else output[step]
''',
}

HOSTILE_AND_MISTAKE_D = {
    "ex3_1_parameter_shapes": '''
class Anything(dict):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def stacked_parameter_shapes(*args, **kwargs):
    return Anything()
''',
    # batch_first mishandled: the input is made time-major, the output is not put back.
    "ex3_2_stacked_forward": STEP + '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    layer_input = x.transpose(0, 1) if (batch_first and x.dim() == 3) else x
    last_states = []
    for k, p in enumerate(layer_params):
        layer_input, last = run_layer(layer_input, h0[k], p)
        last_states.append(last)
    return layer_input, torch.stack(last_states)
''',
    "ex3_3_h_n_rows": '''
class Anything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def top_layer_last_state(h_n):
    return Anything()


def layer_last_state(h_n, layer):
    return Anything()
''',
    "ex3_4_output_step": '''
class Anything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def top_layer_state_at(output, step, batch_first=False):
    return Anything()
''',
}

SUBMISSIONS = {"alternative": ALTERNATIVE, "mistakes-a": MISTAKES_A, "mistakes-b": MISTAKES_B,
               "mistakes-c": MISTAKES_C, "hostile-d": HOSTILE_AND_MISTAKE_D}
AUTOGRADED = {"mistakes-a": SUBMISSIONS["mistakes-a"]}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


EXERCISES = ["ex3_1", "ex3_2", "ex3_3", "ex3_4"]


@pytest.mark.parametrize("exercise", EXERCISES)
@pytest.mark.parametrize("student", ["mistakes-a", "mistakes-b", "mistakes-c", "hostile-d"])
def test_plausible_mistakes_fail_the_hidden_checks(student, exercise):
    assert run_check_cells(LESSON, SUBMISSIONS[student])[f"{exercise}_hidden"] is not None


@pytest.mark.parametrize(("student", "exercise", "passes"), [
    # Mistakes the visible examples show fail the visible checks too...
    ("mistakes-a", "ex3_1", False), ("mistakes-a", "ex3_2", False), ("mistakes-a", "ex3_3", False),
    ("mistakes-a", "ex3_4", False), ("mistakes-b", "ex3_2", False), ("mistakes-b", "ex3_3", False),
    ("mistakes-c", "ex3_1", False), ("mistakes-c", "ex3_2", False), ("mistakes-c", "ex3_3", False),
    ("hostile-d", "ex3_2", False),
    # ...while those only other cases reveal (bias=False; unbatched or time-major output) pass them and are caught
    # by the hidden checks alone.
    ("mistakes-b", "ex3_1", True), ("mistakes-b", "ex3_4", True), ("mistakes-c", "ex3_4", True),
])
def test_visible_checks_catch_what_the_examples_show(student, exercise, passes):
    error = run_check_cells(LESSON, SUBMISSIONS[student])[f"{exercise}_visible"]
    assert (error is None) == passes, error


def test_objects_that_equal_anything_score_nothing():
    results = run_check_cells(LESSON, HOSTILE_AND_MISTAKE_D)
    for exercise in ["ex3_1", "ex3_3", "ex3_4"]:
        for kind in ("visible", "hidden"):
            assert results[f"{exercise}_{kind}"] is not None, f"{exercise}_{kind}"


# What the learner is told: the row of h_n, the layer or the
# starting state that explains a wrong answer.
WRONG_ROW = {"ex3_3_h_n_rows": '''
def top_layer_last_state(h_n):
    return h_n[0]

def layer_last_state(h_n, layer):
    return h_n[layer]
'''}
BOTTOM_LAYER_OUTPUT = {"ex3_2_stacked_forward": STEP + '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    layer_input = x.transpose(0, 1) if swap else x
    outputs, last_states = [], []
    for layer, params in enumerate(layer_params):
        layer_input, last = run_layer(layer_input, h0[layer], params)
        outputs.append(layer_input)
        last_states.append(last)
    output = outputs[0]  # the bottom layer's states: the mistake
    return (output.transpose(0, 1) if swap else output), torch.stack(last_states)
'''}


@pytest.mark.parametrize("answers, grade_id, told", [
    (WRONG_ROW, "ex3_3_visible", "Your result equals h_n[0], layer 0's last state"),
    (BOTTOM_LAYER_OUTPUT, "ex3_2_visible", "Your result equals the bottom layer's output"),
])
def test_the_checks_name_the_mistake(answers, grade_id, told):
    messages = run_check_cells(LESSON, answers)
    assert messages[grade_id] is not None and told in messages[grade_id], messages[grade_id]


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3.2 is from scratch: PyTorch's own GRU is forbidden by whatever route, and the mistakes of the GRU step
# the learner writes are named.

def forward_with_step(step):
    """CORRECT_FORWARD with gru_step's body line `old` replaced by `new` (step = (old, new))."""
    old, new = step
    assert CORRECT_FORWARD.count(old) == 1, old
    return CORRECT_FORWARD.replace(old, new)


STEP_LINE = "def gru_step(x_t, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):"
FORBIDDEN_ROUTES = {
    "nn.GRU": '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    first = layer_params[0]
    module = nn.GRU(first["weight_ih"].shape[1], first["weight_hh"].shape[1], len(layer_params),
                    bias=first["bias_ih"] is not None, batch_first=batch_first).to(x.dtype)
    with torch.no_grad():
        for k, p in enumerate(layer_params):
            for name, value in p.items():
                if value is not None:
                    getattr(module, f"{name}_l{k}").copy_(value)
        return module(x, h0)
''',
    "nn.GRUCell": CORRECT_FORWARD.replace(STEP_LINE, '''
def gru_step(x_t, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    cell = nn.GRUCell(weight_ih.shape[1], weight_hh.shape[1], bias=bias_ih is not None).to(x_t.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(weight_ih)
        cell.weight_hh.copy_(weight_hh)
        if bias_ih is not None:
            cell.bias_ih.copy_(bias_ih)
            cell.bias_hh.copy_(bias_hh)
        return cell(x_t, h)


def unused_step(x_t, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):'''),
    "torch.gru_cell": CORRECT_FORWARD.replace(STEP_LINE, '''
def gru_step(x_t, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    return torch.gru_cell(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh)


def unused_step(x_t, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):'''),
    "torch._VF.gru": '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    weights = [w for p in layer_params for w in (p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
               if w is not None]
    has_biases = layer_params[0]["bias_ih"] is not None
    return torch._VF.gru(x, h0, weights, has_biases, len(layer_params), 0.0, False, False, batch_first)
''',
}


@pytest.mark.parametrize("route", sorted(FORBIDDEN_ROUTES))
def test_pytorch_s_own_gru_is_forbidden_in_exercise_3_2(route):
    results = run_check_cells(LESSON, {"ex3_2_stacked_forward": FORBIDDEN_ROUTES[route]})
    for grade_id in ("ex3_2_visible", "ex3_2_hidden"):
        assert results[grade_id] is not None and "which Exercise 3.2 forbids" in results[grade_id], results[grade_id]


PAPER_V3 = ("n = torch.tanh(x_n + r * h_n)",
            "n = torch.tanh(x_n + (r * h) @ weight_hh[2 * h.shape[-1]:].T "
            "+ (0 if bias_hh is None else bias_hh[2 * h.shape[-1]:]))")
Z_SWAPPED = ("return (1 - z) * n + z * h", "return z * n + (1 - z) * h")


@pytest.mark.parametrize("step, grade_id, told", [
    (Z_SWAPPED, "ex3_2_visible", "Your result equals a GRU with z and 1 - z swapped"),
    (PAPER_V3, "ex3_2_hidden", "Your result equals a GRU with the paper-v3 reset"),
])
def test_the_checks_name_a_wrong_gru_step(step, grade_id, told):
    results = run_check_cells(LESSON, {"ex3_2_stacked_forward": forward_with_step(step)})
    assert results["ex3_2_visible"] is not None
    assert results[grade_id] is not None and told in results[grade_id], results[grade_id]


def test_every_layer_reading_x_is_named_where_the_shapes_allow_it():
    message = run_check_cells(LESSON, MISTAKES_A)["ex3_2_hidden"]
    assert message is not None and "Your result equals every layer reading x" in message, message


def test_an_answer_that_changes_h0_in_place_fails():
    # Correct values, but the final states written into the caller's h0 (used as a buffer).
    answer = CORRECT_FORWARD.replace("        last_states.append(last)\n",
                                     "        h0[k] = last\n        last_states.append(last)\n")
    results = run_check_cells(LESSON, {"ex3_2_stacked_forward": answer})
    assert results["ex3_2_visible"] is not None and "h0 was changed in place" in results["ex3_2_visible"], results


def test_the_correct_step_and_forward_of_the_tests_pass():
    results = run_check_cells(LESSON, {"ex3_2_stacked_forward": CORRECT_FORWARD})
    assert results == {"ex3_2_visible": None, "ex3_2_hidden": None}, results


def test_batch_first_applied_to_unbatched_output_is_named():
    # MISTAKES_B's 3.4 answer, output[:, step] on unbatched output: named where L == H (hidden case x (5, 2), H = 5).
    message = run_check_cells(LESSON, MISTAKES_B)["ex3_4_hidden"]
    assert message is not None and "unbatched output is (L, H)" in message, message


# Through the course's grader too (checks judged in its process, answers run in the sandboxed kernel): correct
# shapes as torch.Size, PyTorch's GRU cell reached from the learner's step, and a correct value returned by an
# answer that zeroes its input in place. The shared test of LessonTests compares each cell's score with the
# in-process run.
IN_PLACE_STEP = {"ex3_4_output_step": '''
def top_layer_state_at(output, step, batch_first=False):
    time_first = output.movedim(1, 0) if (batch_first and output.ndim == 3) else output
    state = time_first[step].clone()
    output.zero_()
    return state
'''}
AUTOGRADED["routes-and-in-place"] = {
    "ex3_1_parameter_shapes": ALTERNATIVE["ex3_1_parameter_shapes"],
    "ex3_2_stacked_forward": FORBIDDEN_ROUTES["torch.gru_cell"],
    "ex3_3_h_n_rows": ALTERNATIVE["ex3_3_h_n_rows"],
    **IN_PLACE_STEP,
}


def test_the_grader_s_student_gets_what_the_in_process_checks_say():
    results = run_check_cells(LESSON, AUTOGRADED["routes-and-in-place"])
    assert {grade_id for grade_id, error in results.items() if error is None} == {
        "ex3_1_visible", "ex3_1_hidden", "ex3_3_visible", "ex3_3_hidden"}, results
    assert "output was changed in place" in results["ex3_4_visible"], results
