"""Lesson 03's hidden checks: for instructors only, never released to learners and never inside a grading kernel
(the course's grader runs them in its own process). They reuse the visible checks' helpers (lesson_checks.py) on
many more configurations and edge cases.
"""
import random

import torch
from course_checks import GRU_OPERATORS, exercise
from lesson_checks import (
    check_h_n_rows,
    check_parameter_shapes,
    check_top_layer_state_at,
    compare_stacked_with_nn_gru,
    seeded,
)
from torch import nn


@exercise("ex3_1_hidden", "stacked_parameter_shapes")
def exercise_3_1(stacked_parameter_shapes):
    """Compared with nn.GRU's own named_parameters() on random sizes, one to four layers, with and without biases."""
    rng = random.Random(301)
    cases = [(3, 5, 1, True), (4, 4, 3, False), (7, 2, 4, True), (1, 1, 2, True)]
    cases += [(rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 4), rng.random() < 0.6) for _ in range(20)]
    for input_size, hidden_size, num_layers, bias in cases:
        module = nn.GRU(input_size, hidden_size, num_layers, bias=bias)
        expected = {name: tuple(p.shape) for name, p in module.named_parameters()}
        check_parameter_shapes(stacked_parameter_shapes, (input_size, hidden_size, num_layers, bias), expected)


def paper_v3_output(module, x, h0):
    """The output of the stack `module` with the reset gate applied as in the final version of Cho et al. (2014),
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn): the classic mistake, as a model to name it."""
    unbatched = x.dim() == 2
    time_major = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if module.batch_first else x)
    states = h0.unsqueeze(1) if unbatched else h0
    layer_input = time_major
    for k in range(module.num_layers):
        w_ih, w_hh = getattr(module, f"weight_ih_l{k}"), getattr(module, f"weight_hh_l{k}")
        b_ih = getattr(module, f"bias_ih_l{k}", None)
        b_hh = getattr(module, f"bias_hh_l{k}", None)
        if b_ih is None:
            b_ih = b_hh = w_ih.new_zeros(w_ih.shape[0])
        W_hr, W_hz, W_hn = w_hh.chunk(3)
        b_hr, b_hz, b_hn = b_hh.chunk(3)
        h, outputs = states[k], []
        for x_t in layer_input:
            i_r, i_z, i_n = (x_t @ w_ih.T + b_ih).chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h @ W_hr.T + b_hr)
            z = torch.sigmoid(i_z + h @ W_hz.T + b_hz)
            n = torch.tanh(i_n + (r * h) @ W_hn.T + b_hn)
            h = (1 - z) * n + z * h
            outputs.append(h)
        layer_input = torch.stack(outputs)
    if unbatched:
        return layer_input.squeeze(1)
    return layer_input.transpose(0, 1) if module.batch_first else layer_input


@exercise("ex3_2_hidden", "stacked_gru_forward", forbidden={"stacked_gru_forward": GRU_OPERATORS})
def exercise_3_2(stacked_gru_forward):
    """Compared with nn.GRU on random stacks of one to four layers, time-major and batch first, unbatched input
    (also with batch_first=True), bias=False, float64, batch of one, one step, and input_size == hidden_size."""
    rng = random.Random(303)
    cases = [  # (input_size, hidden_size, num_layers, seq_len, batch or None for unbatched, batch_first, bias, dtype)
        (5, 5, 3, 6, 2, False, True, torch.float32),
        (5, 5, 3, 6, 2, True, True, torch.float32),
        (3, 4, 2, 5, None, True, True, torch.float32),
        (3, 4, 3, 5, None, False, False, torch.float64),
        (2, 3, 2, 1, 1, True, True, torch.float32),
        (6, 2, 4, 4, 1, False, False, torch.float32),
        (4, 7, 1, 3, 3, True, True, torch.float64),
        (3, 3, 2, 4, 4, True, True, torch.float64),  # N == L: a layout mistake keeps the shape
    ]
    cases += [(rng.randint(1, 8), rng.randint(1, 8), rng.randint(1, 4), rng.randint(1, 7),
               None if rng.random() < 0.25 else rng.randint(1, 4), rng.random() < 0.5, rng.random() < 0.7,
               torch.float64 if rng.random() < 0.3 else torch.float32) for _ in range(16)]
    with seeded(303):
        for input_size, hidden_size, num_layers, seq_len, batch, batch_first, bias, dtype in cases:
            module = nn.GRU(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first).to(dtype)
            if batch is None:
                x_shape, h_shape = (seq_len, input_size), (num_layers, hidden_size)
            else:
                x_shape = (batch, seq_len, input_size) if batch_first else (seq_len, batch, input_size)
                h_shape = (num_layers, batch, hidden_size)
            x, h0 = torch.randn(x_shape, dtype=dtype), torch.randn(h_shape, dtype=dtype)

            def paper_v3(module=module, x=x, h0=h0):
                return paper_v3_output(module, x, h0)

            what = (f"nn.GRU({input_size}, {hidden_size}, num_layers={num_layers}, bias={bias}, "
                    f"batch_first={batch_first}) {dtype} on x of shape {x_shape}")
            compare_stacked_with_nn_gru(stacked_gru_forward, module, x, h0, what, more_mistakes={
                "a GRU with the paper-v3 reset, W_hn (r * h): PyTorch applies r to W_hn h + b_hn (Lesson 01)":
                    paper_v3})


@exercise("ex3_3_hidden", "top_layer_last_state", "layer_last_state")
def exercise_3_3(top_layer_last_state, layer_last_state):
    """Two to four layers (every row of h_n checked), unbatched h_n, batch of one, float64."""
    with seeded(305):
        for input_size, hidden_size, num_layers, batch, dtype in [
                (2, 3, 2, 4, torch.float32), (4, 3, 4, None, torch.float32), (3, 2, 3, 1, torch.float64),
                (5, 4, 4, 3, torch.float32), (2, 2, 2, None, torch.float64), (3, 4, 1, 2, torch.float32)]:
            module = nn.GRU(input_size, hidden_size, num_layers).to(dtype)
            x_shape = (5, input_size) if batch is None else (5, batch, input_size)
            h_shape = (num_layers, hidden_size) if batch is None else (num_layers, batch, hidden_size)
            check_h_n_rows(top_layer_last_state, layer_last_state, module, torch.randn(x_shape, dtype=dtype),
                           torch.randn(h_shape, dtype=dtype),
                           f"nn.GRU({input_size}, {hidden_size}, num_layers={num_layers}) {dtype}, x {x_shape}")


@exercise("ex3_4_hidden", "top_layer_state_at")
def exercise_3_4(top_layer_state_at):
    """Time-major and batch first, unbatched input (also with batch_first=True), first, middle, last and negative
    steps, batch of one, one step, and a batch as large as the sequence is long."""
    with seeded(307):
        for input_size, hidden_size, num_layers, seq_len, batch, batch_first in [
                (3, 4, 2, 6, 3, False), (3, 4, 3, 6, 3, True), (2, 3, 2, 5, None, True), (2, 3, 1, 5, None, False),
                (4, 2, 3, 4, 4, True), (4, 2, 2, 4, 4, False), (2, 2, 2, 1, 1, True), (3, 3, 4, 7, 1, False),
                (2, 5, 2, 5, None, True)]:
            module = nn.GRU(input_size, hidden_size, num_layers, batch_first=batch_first)
            if batch is None:
                x_shape = (seq_len, input_size)
            else:
                x_shape = (batch, seq_len, input_size) if batch_first else (seq_len, batch, input_size)
            x = torch.randn(x_shape)
            for step in dict.fromkeys([-1, 0, seq_len // 2, seq_len - 1, -seq_len]):  # without repeats
                check_top_layer_state_at(top_layer_state_at, module, x, step,
                                         f"nn.GRU({input_size}, {hidden_size}, {num_layers}, "
                                         f"batch_first={batch_first}), x {x_shape}")
