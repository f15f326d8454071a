"""Lesson 02's checks grade fairly: plausible mistakes lose points, correct answers written differently score full
marks.

How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests)."""

import pytest

from tests.check_cells import run_check_cells
from tests.harness import LessonTests

LESSON = "02-single-layer"

# ----------------------------------------------------------------------------------------------------------------
# Answers written differently from the reference, all correct.

ALT_H_N_FROM_OUTPUT = '''
def h_n_from_output(output, batch_first=False):
    if output.ndim == 3 and batch_first:
        output = output.permute(1, 0, 2)
    return output[-1].unsqueeze(0).clone()
'''

ALT_PARAMS_FROM_GRU = '''
import copy

def params_from_gru(gru):
    state = copy.deepcopy(gru.state_dict())  # state_dict tensors are already detached
    return {key: state.get(key + "_l0") for key in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]}
'''

ALT_LOAD_PARAMS = '''
def load_params_into_gru(params, gru):
    gru.load_state_dict({k + "_l0": v for k, v in params.items() if v is not None})  # copies in place
'''

# Precomputes the input projections of all steps at once, and writes its own cell.
ALT_GRU_FORWARD = '''
import torch.nn.functional as F

def gru_forward(x, h0, params, batch_first=False):
    is_batched = x.dim() == 3
    if not is_batched:
        x = x[:, None, :]
        if h0 is not None:
            h0 = h0[:, None, :]
    elif batch_first:
        x = x.permute(1, 0, 2)
    H = params["weight_hh"].size(1)
    h = x.new_zeros(x.size(1), H) if h0 is None else h0.squeeze(0)
    gi_all = F.linear(x, params["weight_ih"], params["bias_ih"])  # (L, N, 3H)
    outs = []
    for t in range(x.size(0)):
        gh = F.linear(h, params["weight_hh"], params["bias_hh"])
        r = torch.sigmoid(gi_all[t, :, :H] + gh[:, :H])
        z = torch.sigmoid(gi_all[t, :, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi_all[t, :, 2 * H:] + r * gh[:, 2 * H:])
        h = n + z * (h - n)
        outs.append(h)
    out = torch.stack(outs, 0)
    if not is_batched:
        return out[:, 0], h[None, 0]
    return (out.transpose(0, 1) if batch_first else out), h[None]
'''

# Delegates to PyTorch: builds an nn.GRU and loads the weights. Correct, so it must get full marks too.
ALT_GRU_FORWARD_DELEGATE = '''
def gru_forward(x, h0, params, batch_first=False):
    hidden_size, input_size = params["weight_hh"].shape[1], params["weight_ih"].shape[1]
    module = nn.GRU(input_size, hidden_size, bias=params["bias_ih"] is not None, batch_first=batch_first)
    module = module.to(dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for name, value in params.items():
            if value is not None:
                getattr(module, name + "_l0").copy_(value)
    return module(x, h0)
'''

# ----------------------------------------------------------------------------------------------------------------
# Plausible mistakes.

# A reference gru_forward that is correct, with one line changed per mistake below.
def forward_with(cell_line="h = gru_cell(x_t, h, params)", h_n="h.unsqueeze(0)", transpose_input=True,
                 unbatched=True, zeros="torch.zeros(1, x.shape[1], params['weight_hh'].shape[1], "
                                       "dtype=x.dtype, device=x.device)"):
    return f'''
def my_cell(x_t, h, params, paper=False, swap=False, order="rzn"):
    gx = x_t @ params["weight_ih"].T
    gh_raw = params["weight_hh"]
    if params["bias_ih"] is not None:
        gx = gx + params["bias_ih"]
    chunks_x = dict(zip(order, gx.chunk(3, dim=-1)))
    w_h = dict(zip(order, gh_raw.chunk(3, dim=0)))
    b_h = dict(zip(order, params["bias_hh"].chunk(3))) if params["bias_hh"] is not None else {{}}
    def lin(g, v):
        out = v @ w_h[g].T
        return out + b_h[g] if g in b_h else out
    r = torch.sigmoid(chunks_x["r"] + lin("r", h))
    z = torch.sigmoid(chunks_x["z"] + lin("z", h))
    n = torch.tanh(chunks_x["n"] + (lin("n", r * h) if paper else r * lin("n", h)))
    return z * n + (1 - z) * h if swap else (1 - z) * n + z * h

def gru_forward(x, h0, params, batch_first=False):
    was_unbatched = {unbatched} and x.dim() == 2
    if was_unbatched:
        x = x.unsqueeze(1)
        h0 = None if h0 is None else h0.unsqueeze(1)
    elif batch_first and {transpose_input}:
        x = x.transpose(0, 1)
    if h0 is None:
        h0 = {zeros}
    h = h0[0]
    states = []
    for x_t in x:
        {cell_line}
        states.append(h)
    output, h_n = torch.stack(states), {h_n}
    if was_unbatched:
        return output.squeeze(1), h_n.squeeze(1)
    if batch_first and {transpose_input}:
        output = output.transpose(0, 1)
    return output, h_n
'''


FORWARD_OWN_CELL_CORRECT = forward_with(cell_line="h = my_cell(x_t, h, params)")
FORWARD_MISTAKES = {
    # The reset gate applied to h before W_hn, as in Cho et al. (2014).
    "paper reset gate": forward_with(cell_line="h = my_cell(x_t, h, params, paper=True)"),
    # z and 1 - z swapped.
    "z and 1-z swapped": forward_with(cell_line="h = my_cell(x_t, h, params, swap=True)"),
    # Gate blocks read in the order z, r, n (Keras/ONNX).
    "gate order z, r, n": forward_with(cell_line='h = my_cell(x_t, h, params, order="zrn")'),
    # batch_first ignored: a batch-first input is run as if it were time-major.
    "batch_first ignored": forward_with(transpose_input=False),
    # h_n returned as (N, H), without its leading dimension.
    "h_n without leading 1": forward_with(h_n="h"),
    # Unbatched input not handled: a 2-D x is iterated as if it were (L, N, H_in).
    "unbatched not handled": forward_with(unbatched=False),
    # h0=None not handled.
    "h0=None crashes": forward_with(zeros="h0"),
    # Zeros always float32 (and on the CPU): wrong for float64 input.
    "zeros in float32": forward_with(zeros="torch.zeros(1, x.shape[1], params['weight_hh'].shape[1])"),
}

MISTAKES_A = {
    # Always output[-1]: with batch_first that is the last sequence of the batch, not the last step.
    "ex2_1_h_n_from_output": '''
def h_n_from_output(output, batch_first=False):
    return output[-1:] if output.dim() == 3 else output[-1:]
''',
    # Returns the parameters themselves: no copies, still Parameters.
    "ex2_2_params_from_gru": '''
def params_from_gru(gru):
    return {"weight_ih": gru.weight_ih_l0, "weight_hh": gru.weight_hh_l0,
            "bias_ih": getattr(gru, "bias_ih_l0", None), "bias_hh": getattr(gru, "bias_hh_l0", None)}
''',
    # Replaces the Parameter objects: the optimizer keeps training the old ones.
    "ex2_3_load_params_into_gru": '''
def load_params_into_gru(params, gru):
    for name, value in params.items():
        if value is not None:
            setattr(gru, name + "_l0", nn.Parameter(value.clone()))
''',
    "ex2_4_gru_forward": FORWARD_MISTAKES["paper reset gate"],
}

MISTAKES_B = {
    # Forgets the leading dimension of h_n: returns (N, H).
    "ex2_1_h_n_from_output": '''
def h_n_from_output(output, batch_first=False):
    if output.dim() == 2:
        return output[-1]
    return output[:, -1] if batch_first else output[-1]
''',
    # bias=False not handled: a GRU without biases has no bias_ih_l0 attribute.
    "ex2_2_params_from_gru": '''
def params_from_gru(gru):
    return {"weight_ih": gru.weight_ih_l0.detach().clone(), "weight_hh": gru.weight_hh_l0.detach().clone(),
            "bias_ih": gru.bias_ih_l0.detach().clone(), "bias_hh": gru.bias_hh_l0.detach().clone()}
''',
    # Shares memory with params through .data: not a copy.
    "ex2_3_load_params_into_gru": '''
def load_params_into_gru(params, gru):
    for name, value in params.items():
        if value is not None:
            getattr(gru, name + "_l0").data = value
''',
    "ex2_4_gru_forward": FORWARD_MISTAKES["batch_first ignored"],
}

MISTAKES_C = {
    # Unbatched output not recognised: with batch_first=True it indexes the feature dimension.
    "ex2_1_h_n_from_output": '''
def h_n_from_output(output, batch_first=False):
    return (output[:, -1] if batch_first else output[-1]).unsqueeze(0)
''',
    # Keys named like the GRU's attributes, with the _l0 suffix.
    "ex2_2_params_from_gru": '''
def params_from_gru(gru):
    return {name: p.detach().clone() for name, p in gru.named_parameters()}
''',
    # Skips torch.no_grad(): copying into a leaf that requires grad raises.
    "ex2_3_load_params_into_gru": '''
def load_params_into_gru(params, gru):
    for name, value in params.items():
        if value is not None:
            getattr(gru, name + "_l0").copy_(value)
''',
    "ex2_4_gru_forward": FORWARD_MISTAKES["h_n without leading 1"],
}

ALTERNATIVE = {
    "ex2_1_h_n_from_output": ALT_H_N_FROM_OUTPUT,
    "ex2_2_params_from_gru": ALT_PARAMS_FROM_GRU,
    "ex2_3_load_params_into_gru": ALT_LOAD_PARAMS,
    "ex2_4_gru_forward": ALT_GRU_FORWARD,
}

HOSTILE = {
    # Objects that claim to equal anything.
    "ex2_1_h_n_from_output": '''
class Anything:
    def __eq__(self, other):
        return True
    shape = property(lambda self: Anything())

def h_n_from_output(output, batch_first=False):
    return Anything()
''',
    "ex2_2_params_from_gru": '''
class Anything(dict):
    def __eq__(self, other):
        return True
    def __getitem__(self, key):
        return self

def params_from_gru(gru):
    return Anything()
''',
    "ex2_4_gru_forward": '''
class Anything(tuple):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

def gru_forward(x, h0, params, batch_first=False):
    return Anything((Anything(), Anything()))
''',
}

# Plain tensors without requires_grad, but views of the GRU's weights: training the GRU would change them.
PARAMS_AS_VIEWS = {"ex2_2_params_from_gru": '''
def params_from_gru(gru):
    return {key: getattr(gru, key + "_l0").detach() if hasattr(gru, key + "_l0") else None
            for key in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]}
'''}

SUBMISSIONS = {"alternative": ALTERNATIVE, "mistakes-a": MISTAKES_A, "mistakes-b": MISTAKES_B,
               "mistakes-c": MISTAKES_C, "hostile": HOSTILE}
# Graded by the course's grader too: views of the GRU's weights come back to its checks as views of their own GRU.
AUTOGRADED = {"mistakes-a": SUBMISSIONS["mistakes-a"], "views": PARAMS_AS_VIEWS}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


HIDDEN = ["ex2_1_hidden", "ex2_2_hidden", "ex2_3_hidden", "ex2_4_hidden"]


@pytest.mark.parametrize("grade_id", HIDDEN)
@pytest.mark.parametrize("student", ["mistakes-a", "mistakes-b", "mistakes-c"])
def test_plausible_mistakes_fail_the_hidden_checks(student, grade_id):
    assert run_check_cells(LESSON, SUBMISSIONS[student])[grade_id] is not None


def test_which_mistakes_the_visible_checks_already_show():
    # Visible checks use the article's Example 1 (time-major and batch-first): they show the batch_first and
    # h_n-shape mistakes, the _l0 keys, Parameters instead of copies, a replaced Parameter, memory shared with params,
    # a missing no_grad and the paper's cell; bias=False and unbatched input only show in the hidden checks.
    passing = {"mistakes-a": set(), "mistakes-b": {"ex2_2_visible"}, "mistakes-c": {"ex2_1_visible"}}
    for student, passes in passing.items():
        results = run_check_cells(LESSON, SUBMISSIONS[student])
        for grade_id in ["ex2_1_visible", "ex2_2_visible", "ex2_3_visible", "ex2_4_visible"]:
            assert (results[grade_id] is None) == (grade_id in passes), (student, grade_id, results[grade_id])


def test_views_instead_of_copies_pass_the_visible_check_and_fail_the_hidden_one_in_both_graders(scores):
    results = run_check_cells(LESSON, PARAMS_AS_VIEWS)
    assert results["ex2_2_visible"] is None and "is it a copy?" in results["ex2_2_hidden"], results
    assert scores["views"]["ex2_2_visible"][0] == 1 and scores["views"]["ex2_2_hidden"][0] == 0, scores["views"]


def test_objects_that_equal_anything_score_nothing():
    results = run_check_cells(LESSON, HOSTILE)
    for grade_id in ["ex2_1_visible", "ex2_1_hidden", "ex2_2_visible", "ex2_2_hidden", "ex2_4_visible",
                     "ex2_4_hidden"]:
        assert results[grade_id] is not None, grade_id


# ----------------------------------------------------------------------------------------------------------------
# More gru_forward variants through the same check cells.

@pytest.mark.parametrize("answer", [FORWARD_OWN_CELL_CORRECT, ALT_GRU_FORWARD_DELEGATE],
                         ids=["own-cell", "delegates-to-nn-GRU"])
def test_more_correct_gru_forwards_pass(answer):
    results = run_check_cells(LESSON, {"ex2_4_gru_forward": answer})
    assert results == {"ex2_4_visible": None, "ex2_4_hidden": None}, results


@pytest.mark.parametrize("mistake", sorted(FORWARD_MISTAKES))
def test_every_gru_forward_mistake_fails_the_hidden_checks(mistake):
    results = run_check_cells(LESSON, {"ex2_4_gru_forward": FORWARD_MISTAKES[mistake]})
    assert results["ex2_4_hidden"] is not None, f"the hidden checks of Exercise 2.4 let '{mistake}' pass"


@pytest.mark.parametrize("mistake, grade_id, told", [
    ("paper reset gate", "ex2_4_hidden", "the paper-v3 candidate, W_hn (r * h) + b_hn"),
    ("z and 1-z swapped", "ex2_4_visible", "z and 1 - z swapped"),
    ("gate order z, r, n", "ex2_4_visible", "reads the gate blocks in the order z, r, n"),
    ("h0=None crashes", "ex2_4_hidden", "while checking gru_forward(x of shape"),
])
def test_the_checks_name_the_mistake_or_the_configuration(mistake, grade_id, told):
    messages = run_check_cells(LESSON, {"ex2_4_gru_forward": FORWARD_MISTAKES[mistake]})
    assert messages[grade_id] is not None and told in messages[grade_id], messages[grade_id]


def test_no_cell_but_an_answer_cell_computes_a_gate():
    """The lesson's GRU cell is PyTorch's own (torch.gru_cell): a GRU step written out, the answer to Lesson 01's
    Exercise 1.2, needs a sigmoid, and only answer cells may compute one."""
    import re

    from course.lessons import is_answer_cell, notebook_path, read

    sigmoid = re.compile(r"(torch|F|functional)\.sigmoid|\.sigmoid_?\(")
    cells = [cell for cell in read(notebook_path(LESSON)).cells if cell.cell_type == "code"]
    assert not [cell.source[:60] for cell in cells if not is_answer_cell(cell) and sigmoid.search(cell.source)]


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2.3 judged in the grader's process: the GRU reaches the learner's code as a pickled copy and comes back as
# its state_dict (grading/toolkit/remote.py), so Parameter objects and shared memory cannot be compared there. The
# check's CheckedGRU notices them where the learner's code runs and reports them in a buffer of its state_dict.

LOAD_DATA_CLONE = '''
def load_params_into_gru(params, gru):
    for name, value in params.items():
        if value is not None:
            getattr(gru, name + "_l0").data = value.clone()  # old-fashioned, but a copy into the same Parameter
'''

LOAD_WITHOUT_GRAD = '''
def load_params_into_gru(params, gru):
    with torch.no_grad():
        for name, value in params.items():
            if value is not None:
                getattr(gru, name + "_l0").copy_(value)
    for parameter in gru.parameters():
        parameter.requires_grad_(False)
'''

LOAD_ANSWERS = {  # answer: what the checks say (None: they pass)
    "load_state_dict": (ALT_LOAD_PARAMS, None),
    ".data = value.clone()": (LOAD_DATA_CLONE, None),
    "replaced Parameters": (MISTAKES_A["ex2_3_load_params_into_gru"], "replaced gru.weight_ih_l0 by another Parameter"),
    ".data = value": (MISTAKES_B["ex2_3_load_params_into_gru"], "made gru.weight_ih_l0 share memory with params"),
    "requires_grad turned off": (LOAD_WITHOUT_GRAD, "left gru.weight_ih_l0 without requires_grad"),
}


@pytest.mark.parametrize("name", sorted(LOAD_ANSWERS))
def test_load_params_checks_in_the_notebook(name):
    answer, told = LOAD_ANSWERS[name]
    results = run_check_cells(LESSON, {"ex2_3_load_params_into_gru": answer})
    for grade_id in ("ex2_3_visible", "ex2_3_hidden"):
        if told is None:
            assert results[grade_id] is None, results[grade_id]
        else:
            assert results[grade_id] is not None and told in results[grade_id], results[grade_id]


def solution_of(grade_id):
    """The solutions notebook's answer cell `grade_id`, without nbgrader's markers."""
    from course.lessons import nbgrader, notebook_path, read
    from tools.release import answer_code

    (cell,) = [c for c in read(notebook_path(LESSON)).cells if nbgrader(c).get("grade_id") == grade_id]
    return answer_code(cell.source)


@pytest.mark.parametrize("name", ["solution", *sorted(LOAD_ANSWERS)])
def test_load_params_checks_across_the_grader_boundary(name):
    """As the course's grader runs it: (params, gru) pickled to the learner's side, the answer run there on the
    copies, the GRU's state_dict copied back into the check's own GRU (remote._copy_module): the check's CheckedGRU
    reports the same as in the notebook."""
    import pickle
    import sys

    import torch

    from course.lessons import notebook_path
    from grading.toolkit.remote import _copy_module

    answer, told = (solution_of("ex2_3_load_params_into_gru"), None) if name == "solution" else LOAD_ANSWERS[name]
    folder = str(notebook_path(LESSON).parent)
    names = ("course_checks", "lesson_checks")
    saved = {module: sys.modules.pop(module) for module in names if module in sys.modules}
    sys.path.insert(0, folder)
    try:
        import lesson_checks

        namespace = {"torch": torch, "nn": torch.nn}
        exec(answer, namespace)
        torch.manual_seed(0)
        source = torch.nn.GRU(3, 4)
        params = lesson_checks.weights_of(source)
        target = lesson_checks.CheckedGRU(3, 4, watched=params.values())
        kernel_params, kernel_target = pickle.loads(pickle.dumps((params, target)))  # the learner's side
        namespace["load_params_into_gru"](kernel_params, kernel_target)
        _copy_module(target, {"module": dict(kernel_target.state_dict()), "training": kernel_target.training,
                              "grads": {n: p.grad for n, p in kernel_target.named_parameters()}})
        changes = " ".join(target.changes().values())
        if told is None:
            assert not changes, changes
            assert all(torch.equal(p, getattr(source, n)) for n, p in target.named_parameters())
        else:
            assert told in changes, changes
    finally:
        sys.path.remove(folder)
        for module in names:
            sys.modules.pop(module, None)
        sys.modules.update(saved)
