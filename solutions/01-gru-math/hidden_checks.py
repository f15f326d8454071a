"""Lesson 01's hidden checks (instructors only: never released, never inside a grading kernel). The grader runs them
in its own process; the notebook's hidden check cells call them (``hidden_checks.exercise_1_2(gru_cell)``). The
reference implementations the checks compare with live here and only here."""
import random

import torch
from course_checks import GRU_OPERATORS, exercise, while_checking
from lesson_checks import PAPER_V3, check_gate_biases, check_gru_cell, check_split, seeded
from torch import nn


def packed_blocks(weight_ih, weight_hh, bias_ih, bias_hh):
    """{"W_ir": ..., "b_hn": ...}: the blocks of the packed tensors (gate order r, z, n; a bias of None is zeros)."""
    H = weight_hh.shape[1]
    zeros = torch.zeros(3 * H, dtype=weight_hh.dtype)
    packed = {"W_i": weight_ih, "W_h": weight_hh, "b_i": zeros if bias_ih is None else bias_ih,
              "b_h": zeros if bias_hh is None else bias_hh}
    return {prefix + gate: tensor[k * H:(k + 1) * H].detach().clone()
            for prefix, tensor in packed.items() for k, gate in enumerate("rzn")}


@exercise("ex1_1_hidden", "split_gru_parameters")
def exercise_1_1(split_gru_parameters):
    """The parameters of real nn.GRUCell modules of random sizes, float32 and float64, with bias=False (zeros
    expected) and with H = 1."""
    rng = random.Random(101)
    configs = [(1, 1, True, torch.float32), (3, 1, False, torch.float64), (2, 5, False, torch.float32)]
    configs += [(rng.randint(1, 7), rng.randint(1, 7), rng.random() < 0.6, rng.choice([torch.float32, torch.float64]))
                for _ in range(12)]
    with seeded(101):
        for input_size, hidden_size, bias, dtype in configs:
            module = nn.GRUCell(input_size, hidden_size, bias=bias).to(dtype)
            tensors = [None if p is None else p.detach().clone()
                       for p in (module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)]
            blocks = packed_blocks(*tensors)
            what = f"split_gru_parameters(nn.GRUCell({input_size}, {hidden_size}, bias={bias}) in {dtype})"
            with while_checking(what):
                parts = split_gru_parameters(*(None if t is None else t.clone() for t in tensors))
            check_split(parts, blocks, what)


def paper_v3_cell(module, x, h):
    """Cho et al.'s final (v3) candidate, W_hn (r * h) + b_hn, with the weights of the nn.GRUCell `module`."""
    H = module.hidden_size
    w_ih, w_hh = module.weight_ih.detach(), module.weight_hh.detach()
    b_ih = torch.zeros(3 * H, dtype=w_ih.dtype) if module.bias_ih is None else module.bias_ih.detach()
    b_hh = torch.zeros(3 * H, dtype=w_ih.dtype) if module.bias_hh is None else module.bias_hh.detach()
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh[:2 * H].T + b_hh[:2 * H]
    r = torch.sigmoid(gi[..., :H] + gh[..., :H])
    z = torch.sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
    n = torch.tanh(gi[..., 2 * H:] + (r * h) @ w_hh[2 * H:].T + b_hh[2 * H:])
    return (1 - z) * n + z * h


@exercise("ex1_2_hidden", "gru_cell", forbidden={"gru_cell": GRU_OPERATORS})
def exercise_1_2(gru_cell):
    """Compared with nn.GRUCell on random sizes, in float32 and float64, with and without biases, for batches
    (including a batch of 1) and unbatched inputs; PyTorch's own GRU forbidden; the paper-v3 cell is named too."""
    rng = random.Random(202)
    configs = [(1, 1, 1, True, torch.float32), (1, 3, 2, False, torch.float64), (None, 5, 4, True, torch.float64),
               (None, 2, 3, False, torch.float32), (1, 6, 5, False, torch.float32), (7, 3, 6, True, torch.float32)]
    configs += [(rng.choice([None, 1, rng.randint(2, 9)]), rng.randint(1, 8), rng.randint(1, 8), rng.random() < 0.6,
                 rng.choice([torch.float32, torch.float64])) for _ in range(16)]
    with seeded(202):
        for batch, input_size, hidden_size, bias, dtype in configs:
            module = nn.GRUCell(input_size, hidden_size, bias=bias).to(dtype)
            x_shape = (input_size,) if batch is None else (batch, input_size)
            h_shape = (hidden_size,) if batch is None else (batch, hidden_size)
            x, h = torch.randn(x_shape, dtype=dtype), torch.randn(h_shape, dtype=dtype)
            paper = {PAPER_V3: lambda module=module, x=x, h=h: paper_v3_cell(module, x, h)}
            check_gru_cell(gru_cell, module, x, h, f"gru_cell with x {x_shape}, h {h_shape}, bias={bias}, {dtype}",
                           paper)


@exercise("ex1_3_hidden", "gate_biases")
def exercise_1_3(gate_biases):
    """Both behaviours on cells of random sizes (H = 1 included), float32 and float64, batches and unbatched
    inputs."""
    rng = random.Random(303)
    configs = [(1, 1, None, torch.float64), (5, 2, 1, torch.float32), (3, 8, 4, torch.float64)]
    configs += [(rng.randint(1, 8), rng.randint(1, 8), rng.choice([None, 1, rng.randint(2, 8)]),
                 rng.choice([torch.float32, torch.float64])) for _ in range(8)]
    for index, (input_size, hidden_size, batch, dtype) in enumerate(configs):
        for behaviour in ("copy", "reset"):
            check_gate_biases(gate_biases, input_size, hidden_size, behaviour, batch, dtype, seed=1000 + index)
