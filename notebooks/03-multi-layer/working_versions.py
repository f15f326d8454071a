"""The course's working versions of Lesson 03's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import warnings
import matplotlib.pyplot as plt
import torch
from torch import nn
from course_checks import CheckFailed, yours_or_working  # noqa: F401


def stacked_parameter_shapes(input_size, hidden_size, num_layers, bias=True):
    """Shapes of the parameters of nn.GRU(input_size, hidden_size, num_layers, bias=bias), as a dict
    {name: shape}: names as gru.named_parameters() gives them, shapes as tuples of ints."""
    shapes = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else hidden_size
        shapes[f"weight_ih_l{layer}"] = (3 * hidden_size, layer_input)
        shapes[f"weight_hh_l{layer}"] = (3 * hidden_size, hidden_size)
        if bias:
            shapes[f"bias_ih_l{layer}"] = (3 * hidden_size,)
            shapes[f"bias_hh_l{layer}"] = (3 * hidden_size,)
    return shapes


def gru_step(x_t, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One GRU step in PyTorch's convention. x_t: (N, H_in) or (H_in,); h: (N, H) or (H,). Returns the new h."""
    from_input = x_t @ weight_ih.T  # (..., 3H): the blocks r | z | n
    from_state = h @ weight_hh.T
    if bias_ih is not None:
        from_input = from_input + bias_ih
    if bias_hh is not None:
        from_state = from_state + bias_hh
    input_r, input_z, input_n = from_input.chunk(3, dim=-1)
    state_r, state_z, state_n = from_state.chunk(3, dim=-1)
    r = torch.sigmoid(input_r + state_r)
    z = torch.sigmoid(input_z + state_z)
    n = torch.tanh(input_n + r * state_n)  # the reset gate multiplies W_hn h + b_hn, bias included
    return (1 - z) * n + z * h


def stacked_gru_forward(x, h0, layer_params, batch_first=False):
    """Run a stack of GRU layers like nn.GRU(num_layers=len(layer_params), batch_first=batch_first), dropout 0.

    x: (L, N, H_in), or (N, L, H_in) if batch_first; or unbatched (L, H_in), where batch_first does not apply.
    h0: (num_layers, N, H), or (num_layers, H) for unbatched x; never batch first.
    layer_params: one dict per layer, bottom first, with keys "weight_ih", "weight_hh", "bias_ih", "bias_hh"
        (the biases may be None).
    Returns (output, h_n) with nn.GRU's shapes and layout.
    """
    swap = batch_first and x.dim() == 3
    layer_input = x.transpose(0, 1) if swap else x  # time-major from here on (iterating over dim 0 walks in time)
    last_states = []
    for layer, params in enumerate(layer_params):
        h, states = h0[layer], []
        for x_t in layer_input:
            h = gru_step(x_t, h, params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"])
            states.append(h)
        layer_input = torch.stack(states)  # this layer's states are what the next layer reads
        last_states.append(h)
    output = layer_input.transpose(0, 1) if swap else layer_input
    return output, torch.stack(last_states)


def top_layer_last_state(h_n):
    """The top layer's last state from the h_n of a one-directional nn.GRU: (N, H), or (H,) if unbatched."""
    return h_n[-1]


def layer_last_state(h_n, layer):
    """Layer `layer`'s last state (layer 0 reads x) from the h_n of a one-directional nn.GRU."""
    return h_n[layer]


def top_layer_state_at(output, step, batch_first=False):
    """The top layer's state after time step `step` (negative counts from the end) for every sequence, from the
    output of a one-directional nn.GRU built with batch_first=batch_first: (N, H), or (H,) if unbatched."""
    if batch_first and output.dim() == 3:
        return output[:, step]
    return output[step]
