"""The course's working versions of Lesson 00's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import platform
import torch
from torch import nn
import sys
from course_checks import CheckFailed, check_shape


def gru_shapes(seq_len, batch_size, input_size, hidden_size, num_layers=1,
               bidirectional=False, batch_first=False, unbatched=False):
    """Shapes of (output, h_n) from nn.GRU(input_size, hidden_size, num_layers,
    bidirectional=bidirectional, batch_first=batch_first) on a sequence of seq_len steps.

    With unbatched=True the input is (seq_len, input_size) and batch_size is ignored.
    Returns (output_shape, h_n_shape), each a tuple of ints.
    """
    num_directions = 2 if bidirectional else 1
    features = num_directions * hidden_size
    state_rows = num_directions * num_layers
    if unbatched:
        return (seq_len, features), (state_rows, hidden_size)
    if batch_first:
        output_shape = (batch_size, seq_len, features)
    else:
        output_shape = (seq_len, batch_size, features)
    return output_shape, (state_rows, batch_size, hidden_size)


def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):
    """Number of learnable numbers in nn.GRU(input_size, hidden_size, num_layers,
    bias=bias, bidirectional=bidirectional), as an int."""
    num_directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else num_directions * hidden_size
        per_direction = 3 * hidden_size * (layer_input + hidden_size)
        if bias:
            per_direction += 2 * 3 * hidden_size
        total += num_directions * per_direction
    return total


def initial_hidden_state(gru, batch_size=None):
    """Zeros to pass as h_0 to the nn.GRU `gru`: (D * num_layers, batch_size, H), or (D * num_layers, H)
    when batch_size is None, on the same device and with the same dtype as gru's parameters."""
    weight = gru.weight_hh_l0
    rows = (2 if gru.bidirectional else 1) * gru.num_layers
    shape = (rows, gru.hidden_size) if batch_size is None else (rows, batch_size, gru.hidden_size)
    return torch.zeros(shape, device=weight.device, dtype=weight.dtype)
