"""Lesson 02's hidden checks (instructors only: never released, never inside a grading kernel). The grader runs them
in its own process; the notebook's hidden check cells call them (``hidden_checks.exercise_2_4(gru_forward)``). The
reference implementations the checks compare with live here and only here."""
import random

import torch
from course_checks import check_tensor, exercise, while_checking
from lesson_checks import (
    check_gru_forward,
    check_h_n_from_output,
    check_loaded,
    check_params,
    seeded,
    weights_of,
)
from torch import nn

# --- Exercise 2.1 -------------------------------------------------------------------------------------------------


@exercise("ex2_1_hidden", "h_n_from_output")
def exercise_2_1(h_n_from_output):
    """Compared with nn.GRU's own h_n for random sizes, both layouts, unbatched output (with batch_first True and
    False), a batch of one and a sequence of one step."""
    rng = random.Random(2101)
    cases = [(1, 1, 3, False, False), (1, 1, 3, True, False), (4, 1, 2, True, False), (1, 6, 5, False, False),
             (3, 7, 4, False, True), (3, 7, 4, True, True), (1, 5, 2, True, True), (4, 4, 3, True, False)]
    cases += [(rng.randint(1, 7), rng.randint(1, 7), rng.randint(1, 6), rng.random() < 0.5, rng.random() < 0.3)
              for _ in range(20)]
    with seeded(2101):
        for seq_len, batch_size, hidden_size, batch_first, unbatched in cases:
            module = nn.GRU(3, hidden_size, batch_first=batch_first)
            if unbatched:
                x = torch.randn(seq_len, 3)
            else:
                x = torch.randn(batch_size, seq_len, 3) if batch_first else torch.randn(seq_len, batch_size, 3)
            with torch.no_grad():
                output, expected = module(x)
            what = (f"h_n_from_output(output of shape {tuple(output.shape)}, batch_first={batch_first})"
                    + (" for unbatched input" if unbatched else ""))
            check_h_n_from_output(h_n_from_output, output, batch_first, expected, what)


# --- Exercise 2.2 -------------------------------------------------------------------------------------------------

@exercise("ex2_2_hidden", "params_from_gru")
def exercise_2_2(params_from_gru):
    """Other sizes, float64, bias=False (None entries), and the values are copies: changing the GRU afterwards does
    not change them."""
    with seeded(202):
        for input_size, hidden_size, bias, dtype in [(3, 4, True, torch.float32), (1, 1, False, torch.float32),
                                                     (5, 2, True, torch.float64), (2, 6, False, torch.float64)]:
            module = nn.GRU(input_size, hidden_size, bias=bias).to(dtype)
            what = f"params_from_gru(nn.GRU({input_size}, {hidden_size}, bias={bias}) in {dtype})"
            expected = weights_of(module)
            with while_checking(what):
                result = params_from_gru(module)
            check_params(result, expected, what)
            with torch.no_grad():
                for parameter in module.parameters():
                    parameter.add_(1.0)  # the values returned must not follow
            for key, value in result.items():
                if expected[key] is not None:
                    check_tensor(value, expected[key],
                                 f"{what}['{key}'] after the GRU's weights changed (is it a copy?)")


# --- Exercise 2.3 -------------------------------------------------------------------------------------------------

@exercise("ex2_3_hidden", "load_params_into_gru")
def exercise_2_3(load_params_into_gru):
    """Other sizes, float64, bias=False with None entries, every value loaded, the same Parameter objects kept
    (still requiring gradients), and no memory shared with params."""
    with seeded(203):
        for input_size, hidden_size, bias, dtype in [(3, 4, True, torch.float32), (1, 1, False, torch.float32),
                                                     (5, 2, True, torch.float64), (2, 6, False, torch.float64)]:
            source = nn.GRU(input_size, hidden_size, bias=bias).to(dtype)
            what = f"load_params_into_gru(params, nn.GRU({input_size}, {hidden_size}, bias={bias}) in {dtype})"
            target = check_loaded(load_params_into_gru, source, what)
            x = torch.randn(4, 3, input_size, dtype=dtype)
            with torch.no_grad():
                check_tensor(target(x)[0], source(x)[0], f"{what}: output compared with the GRU the params came from")


# --- Exercise 2.4 -------------------------------------------------------------------------------------------------

def paper_v3_forward(module, x, h0):
    """The output of a GRU with the paper-v3 candidate W_hn (r * h) + b_hn and module's weights."""
    H = module.hidden_size
    w_ih, w_hh = module.weight_ih_l0.detach(), module.weight_hh_l0.detach()
    zeros = torch.zeros(3 * H, dtype=w_ih.dtype)
    b_ih, b_hh = (zeros, zeros) if not module.bias else (module.bias_ih_l0.detach(), module.bias_hh_l0.detach())
    steps = x.unsqueeze(1) if x.dim() == 2 else (x.transpose(0, 1) if module.batch_first else x)
    h = torch.zeros(steps.shape[1], H, dtype=x.dtype) if h0 is None else h0.reshape(steps.shape[1], H)
    states = []
    for x_t in steps:
        gi, gh = x_t @ w_ih.T + b_ih, h @ w_hh[:2 * H].T + b_hh[:2 * H]
        r, z = torch.sigmoid(gi[:, :H] + gh[:, :H]), torch.sigmoid(gi[:, H:2 * H] + gh[:, H:])
        h = (1 - z) * torch.tanh(gi[:, 2 * H:] + (r * h) @ w_hh[2 * H:].T + b_hh[2 * H:]) + z * h
        states.append(h)
    output = torch.stack(states)
    return output.squeeze(1) if x.dim() == 2 else (output.transpose(0, 1) if module.batch_first else output)


@exercise("ex2_4_hidden", "gru_forward")
def exercise_2_4(gru_forward):
    """Compared with nn.GRU on random sizes and h_0, both layouts, unbatched input (also with batch_first=True),
    h0=None, bias=False, float64, a batch of one and a sequence of one step; the paper-v3 GRU is named too."""
    rng = random.Random(2404)
    cases = [  # (L, N, H_in, H, batch_first, unbatched, bias, dtype, h0 given)
        (1, 1, 1, 1, False, False, True, torch.float32, True),
        (1, 4, 3, 5, True, False, True, torch.float32, False),
        (6, 1, 2, 3, True, False, False, torch.float64, True),
        (4, 3, 2, 3, True, False, True, torch.float32, True),
        (4, 1, 3, 2, False, True, True, torch.float32, True),
        (3, 1, 2, 4, True, True, True, torch.float64, False),
        (1, 1, 4, 3, False, True, False, torch.float32, False),
        (5, 2, 3, 3, False, False, False, torch.float64, False),
    ]
    cases += [(rng.randint(1, 6), rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 6), rng.random() < 0.5,
               rng.random() < 0.3, rng.random() < 0.7, rng.choice([torch.float32, torch.float64]), rng.random() < 0.6)
              for _ in range(16)]
    with seeded(2404):
        for seq_len, batch_size, input_size, hidden_size, batch_first, unbatched, bias, dtype, with_h0 in cases:
            module = nn.GRU(input_size, hidden_size, bias=bias, batch_first=batch_first).to(dtype)
            if unbatched:
                x = torch.randn(seq_len, input_size, dtype=dtype)
                h0 = torch.randn(1, hidden_size, dtype=dtype) if with_h0 else None
            else:
                shape = (batch_size, seq_len, input_size) if batch_first else (seq_len, batch_size, input_size)
                x = torch.randn(shape, dtype=dtype)
                h0 = torch.randn(1, batch_size, hidden_size, dtype=dtype) if with_h0 else None
            what = (f"gru_forward(x of shape {tuple(x.shape)}, h0={'given' if with_h0 else 'None'}, "
                    f"batch_first={batch_first}, bias={bias}, {dtype})")
            paper = {"a GRU with the paper-v3 candidate, W_hn (r * h) + b_hn (Lesson 01, section 4)":
                     lambda module=module, x=x, h0=h0: paper_v3_forward(module, x, h0)}
            check_gru_forward(gru_forward, module, x, h0, what, paper)
