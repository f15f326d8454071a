"""Lesson 01's visible checks: the checks that the notebook's visible check cells run (``checks.exercise_1_1(...)``).

They use the course's check library, ``course_checks.py``. The hidden checks, which run when a notebook is graded,
are in ``hidden_checks.py`` (instructors only). Nothing here computes an exercise's answer: expected values are
written out, or PyTorch's own (``nn.GRUCell``); the classic mistakes are ``nn.GRUCell`` with its weights rearranged
(``gru_weight_mistakes``) and the paper-v3 cell of ``gru_paper_v3.py``, which is not PyTorch's GRU.
"""

import torch
from course_checks import (
    GRU_OPERATORS,
    check,
    check_shape,
    check_tensor,
    check_tensor_or_variant,
    check_type,
    exercise,
    gru_weight_mistakes,
    seeded,
    while_checking,
)
from gru_paper_v3 import paper_v3_cell
from torch import nn

GRU_PARAMETER_NAMES = ("W_ir", "W_iz", "W_in", "W_hr", "W_hz", "W_hn", "b_ir", "b_iz", "b_in", "b_hr", "b_hz", "b_hn")
PAPER_V3 = "the paper-v3 cell, W_hn (r * h) + b_hn: PyTorch applies r after W_hn and b_hn (section 4)"



# --- Exercise 1.1 -------------------------------------------------------------------------------------------------

def check_split(parts, blocks, what):
    """The learner's dict `parts` against `blocks` ({name: expected tensor}). A block taken from the wrong rows of
    its packed tensor is named: rows [k*H:(k+1)*H] hold gate k of the order r, z, n."""
    check_type(parts, dict, what)
    check(set(parts) == set(GRU_PARAMETER_NAMES),
          f"{what}: expected the keys {sorted(GRU_PARAMETER_NAMES)}, got {sorted(map(str, parts))}")
    for name in GRU_PARAMETER_NAMES:
        prefix, gate = name[:3], name[3]
        others = {f"rows [{k}H:{k + 1}H] of the packed tensor, the {other} block (the order is r, z, n)":
                  blocks[prefix + other] for k, other in enumerate("rzn") if other != gate}
        check_tensor_or_variant(parts[name], blocks[name], f"{what}[{name!r}]", others)


# The example's blocks, written out: weight_ih = arange(18).view(6, 3), weight_hh = arange(100, 112).view(6, 2),
# bias_ih = arange(6), bias_hh = arange(10, 16), H = 2: row k of weight_ih holds 3k, 3k + 1, 3k + 2.
EXAMPLE_BLOCKS = {
    "W_ir": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], "W_iz": [[6.0, 7.0, 8.0], [9.0, 10.0, 11.0]],
    "W_in": [[12.0, 13.0, 14.0], [15.0, 16.0, 17.0]],
    "W_hr": [[100.0, 101.0], [102.0, 103.0]], "W_hz": [[104.0, 105.0], [106.0, 107.0]],
    "W_hn": [[108.0, 109.0], [110.0, 111.0]],
    "b_ir": [0.0, 1.0], "b_iz": [2.0, 3.0], "b_in": [4.0, 5.0],
    "b_hr": [10.0, 11.0], "b_hz": [12.0, 13.0], "b_hn": [14.0, 15.0],
}


@exercise("ex1_1_visible", "split_gru_parameters")
def exercise_1_1(split_gru_parameters):
    """Tensors whose entries count up, so that every row says where it came from (H = 2, H_in = 3)."""
    what = "split_gru_parameters(arange tensors, H=2)"
    with while_checking(what):
        parts = split_gru_parameters(torch.arange(18.0).view(6, 3), torch.arange(100.0, 112.0).view(6, 2),
                                     torch.arange(6.0), torch.arange(10.0, 16.0))
    check_split(parts, {name: torch.tensor(values) for name, values in EXAMPLE_BLOCKS.items()}, what)


# --- Exercise 1.2 -------------------------------------------------------------------------------------------------

def check_gru_cell(gru_cell, module, x, h, what, more_mistakes=None):
    """gru_cell on the weights of the nn.GRUCell `module` must give module(x, h). The answer gets copies of x, h and
    the weights; a wrong result that equals a classic mistake is named."""
    weights = [None if p is None else p.detach().clone()
               for p in (module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)]
    with torch.no_grad():
        expected = module(x, h)
    with while_checking(what):
        got = gru_cell(x.clone(), h.clone(), *weights)
    with torch.no_grad():
        mistakes = gru_weight_mistakes(module, lambda changed: changed(x, h)) | (more_mistakes or {})
        check_tensor_or_variant(got, expected, what, mistakes)


@exercise("ex1_2_visible", "gru_cell", forbidden={"gru_cell": GRU_OPERATORS})
def exercise_1_2(gru_cell):
    """A batch of 2 through nn.GRUCell(4, 3) with biases, in float32."""
    with seeded(11):
        module = nn.GRUCell(4, 3)
        x, h = torch.randn(2, 4), torch.randn(2, 3)
    weights = [p.detach() for p in (module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)]
    paper = {PAPER_V3: lambda: paper_v3_cell(x, h, *weights)}
    check_gru_cell(gru_cell, module, x, h, "gru_cell for a batch of 2 (H_in=4, H=3)", paper)


# --- Exercise 1.3 -------------------------------------------------------------------------------------------------

def check_gate_biases(gate_biases, input_size, hidden_size, behaviour, batch, dtype, seed):
    """gate_biases(hidden_size, behaviour) loaded into an nn.GRUCell (default random weights) must make it copy its
    state (h' = h) or reset it (h' = tanh(W_in x)), compared in `dtype`."""
    what = f"gate_biases({hidden_size}, {behaviour!r})"
    with while_checking(f"{what} for nn.GRUCell({input_size}, {hidden_size}) in {dtype}, batch {batch}"):
        result = gate_biases(hidden_size, behaviour)
    check_type(result, tuple, what)
    check(len(result) == 2, f"{what}: expected a pair (bias_ih, bias_hh), got {len(result)} items")
    for name, bias in zip(("bias_ih", "bias_hh"), result, strict=True):
        check_type(bias, torch.Tensor, f"{what}: {name}")
        check_shape(bias.shape, (3 * hidden_size,), f"{what}: {name}.shape")
    with seeded(seed):
        module = nn.GRUCell(input_size, hidden_size).to(dtype)
        x_shape = (input_size,) if batch is None else (batch, input_size)
        h_shape = (hidden_size,) if batch is None else (batch, hidden_size)
        x, h = torch.randn(x_shape, dtype=dtype), torch.randn(h_shape, dtype=dtype)
    with torch.no_grad():
        module.bias_ih.copy_(result[0])
        module.bias_hh.copy_(result[1])
        h_new = module(x, h)
        if behaviour == "copy":
            check_tensor(h_new, h, f"{what}: the new state (should equal the old one)")
        else:
            candidate = torch.tanh(x @ module.weight_ih[2 * hidden_size:].T)
            check_tensor(h_new, candidate, f"{what}: the new state (should be tanh(W_in x))")


@exercise("ex1_3_visible", "gate_biases")
def exercise_1_3(gate_biases):
    """Both behaviours on nn.GRUCell(4, 3) in float64, for a batch of 5."""
    check_gate_biases(gate_biases, 4, 3, "copy", 5, torch.float64, seed=31)
    check_gate_biases(gate_biases, 4, 3, "reset", 5, torch.float64, seed=32)
