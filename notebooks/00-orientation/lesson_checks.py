"""Lesson 00's visible checks: the checks that the notebook's visible check cells run (``checks.exercise_0_1(...)``).

They use the course's check library, ``course_checks.py``. The hidden checks, which run when a notebook is graded,
are in ``hidden_checks.py`` (instructors only). Nothing here computes an exercise's answer: the expected values are
PyTorch's own or written out.
"""

import torch
from course_checks import (
    CheckFailed,
    check,
    check_int,
    check_shape,
    check_tensor,
    check_type,
    exercise,
    seeded,
    while_checking,
)
from torch import nn

# --- Exercise 0.1 -------------------------------------------------------------------------------------------------


def shape_mistakes(config, expected_output_shape, expected_h_n_shape):
    """{wrong shape of output or h_n: the mistake that gives it}, for a configuration and its right shapes."""
    rows, *rest = expected_h_n_shape
    mistakes = {}
    if rest[:-1]:  # batched: h_n is (rows, N, H)
        mistakes[(rest[0], rows, rest[1])] = "batch_first applied to h_n (it never applies to h_0 and h_n)"
    if config.get("bidirectional"):
        mistakes[(config.get("num_layers", 1), *rest)] = "h_n without the factor D = 2 for the two directions"
        *lead, features = expected_output_shape
        mistakes[(*lead, features // 2)] = "output without the factor D = 2 (both directions sit side by side)"
    if config.get("num_layers", 1) > 1:
        mistakes[(2 if config.get("bidirectional") else 1, *rest)] = "h_n without a row per layer"
    return mistakes


def check_gru_shapes(gru_shapes, config, expected_output_shape, expected_h_n_shape):
    """gru_shapes(**config) must return (expected_output_shape, expected_h_n_shape); a wrong shape that a known
    mistake gives is named."""
    with while_checking(f"gru_shapes(**{config})"):
        result = gru_shapes(**config)
    check_type(result, tuple, f"gru_shapes({config})")
    check(len(result) == 2, f"gru_shapes({config}): expected a pair (output_shape, h_n_shape), "
                            f"got {len(result)} items")
    mistakes = shape_mistakes(config, expected_output_shape, expected_h_n_shape)
    for what, got, expected in (("output", result[0], expected_output_shape), ("h_n", result[1], expected_h_n_shape)):
        try:
            check_shape(got, expected, f"{what} shape for {config}")
        except CheckFailed as failure:
            named = mistakes.get(tuple(got)) if isinstance(got, tuple) else None
            if named is None:
                raise
            raise CheckFailed(f"{failure}: that is the shape you get with {named}") from None


@exercise("ex0_1_visible", "gru_shapes")
def exercise_0_1(gru_shapes):
    """The article's three examples, with the shapes it prints."""
    check_gru_shapes(gru_shapes, dict(seq_len=5, batch_size=32, input_size=10, hidden_size=20),
                     (5, 32, 20), (1, 32, 20))
    check_gru_shapes(gru_shapes, dict(seq_len=5, batch_size=32, input_size=10, hidden_size=20, num_layers=2,
                                      batch_first=True),
                     (32, 5, 20), (2, 32, 20))
    check_gru_shapes(gru_shapes, dict(seq_len=5, batch_size=32, input_size=10, hidden_size=20, bidirectional=True),
                     (5, 32, 40), (2, 32, 20))


# --- Exercise 0.2 -------------------------------------------------------------------------------------------------

@exercise("ex0_2_visible", "gru_parameter_count")
def exercise_0_2(gru_parameter_count):
    """nn.GRU(10, 20) and nn.GRU(10, 20, num_layers=2): 1920 and 4440 numbers."""
    with while_checking("gru_parameter_count(10, 20)"):
        count = gru_parameter_count(10, 20)
    check_int(count, 1920, "gru_parameter_count(10, 20)")
    with while_checking("gru_parameter_count(10, 20, num_layers=2)"):
        count = gru_parameter_count(10, 20, num_layers=2)
    check_int(count, 4440, "gru_parameter_count(10, 20, num_layers=2)")


# --- Exercise 0.3 -------------------------------------------------------------------------------------------------

def check_initial_state(initial_hidden_state, module, batch_size, input_size, what):
    """initial_hidden_state(module, batch_size) must be zeros of the right shape, dtype and device, and module must
    accept it as h_0."""
    parameter = module.weight_hh_l0
    rows = (2 if module.bidirectional else 1) * module.num_layers
    shape = (rows, module.hidden_size) if batch_size is None else (rows, batch_size, module.hidden_size)
    with while_checking(what):
        state = initial_hidden_state(module, batch_size)
    check_tensor(state, torch.zeros(shape, dtype=parameter.dtype), what)
    check(state.device == parameter.device, f"{what}: on {state.device}, the GRU is on {parameter.device}")
    x_shape = (4, input_size) if batch_size is None else (4, batch_size, input_size)
    with torch.no_grad():
        module(torch.randn(x_shape, dtype=parameter.dtype, device=parameter.device), state)  # the GRU accepts it


@exercise("ex0_3_visible", "initial_hidden_state")
def exercise_0_3(initial_hidden_state):
    """nn.GRU(10, 20, num_layers=2, bidirectional=True) with a batch of 32: zeros (4, 32, 20)."""
    with seeded(3):
        check_initial_state(initial_hidden_state, nn.GRU(10, 20, num_layers=2, bidirectional=True), 32, 10,
                            "initial_hidden_state(nn.GRU(10, 20, 2, bidirectional=True), 32)")
