"""Lesson 03's checks grade fairly: plausible mistakes with stacked layers (layers mixed up in h_n, output from the
wrong layer, every layer fed the original input, batch_first mishandled) lose points, and correct answers written
differently score full marks. How the variants run, and what every lesson's module checks: tests/harness.py
(LessonTests)."""

import pytest

from tests.check_cells import run_check_cells
from tests.harness import LessonTests

LESSON = "03-multi-layer"

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
    "ex3_2_stacked_forward": '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    x = x.transpose(0, 1) if swap else x
    last_states = []
    for k, p in enumerate(layer_params):
        outputs, last = gru_layer_reference(x, h0[k], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
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
    "ex3_2_stacked_forward": '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    layer_input = x.transpose(0, 1) if swap else x
    outputs_per_layer, last_states = [], []
    for k, p in enumerate(layer_params):
        layer_input, last = gru_layer_reference(layer_input, h0[k], p["weight_ih"], p["weight_hh"],
                                                p["bias_ih"], p["bias_hh"])
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
    "ex3_2_stacked_forward": '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    layer_input = x.transpose(0, 1) if swap else x
    last_states = []
    for k, p in enumerate(layer_params):
        layer_input, last = gru_layer_reference(layer_input, h0[k], p["weight_ih"], p["weight_hh"],
                                                p["bias_ih"], p["bias_hh"])
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
    "ex3_2_stacked_forward": '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    layer_input = x.transpose(0, 1) if (batch_first and x.dim() == 3) else x
    last_states = []
    for k, p in enumerate(layer_params):
        layer_input, last = gru_layer_reference(layer_input, h0[k], p["weight_ih"], p["weight_hh"],
                                                p["bias_ih"], p["bias_hh"])
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
BOTTOM_LAYER_OUTPUT = {"ex3_2_stacked_forward": '''
def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    swap = batch_first and x.dim() == 3
    layer_input = x.transpose(0, 1) if swap else x
    outputs, last_states = [], []
    for layer, params in enumerate(layer_params):
        layer_input, last = gru_layer_reference(layer_input, h0[layer], params["weight_ih"], params["weight_hh"],
                                                params["bias_ih"], params["bias_hh"])
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
