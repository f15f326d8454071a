"""The course's working versions of Lesson 04's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import os
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from tqdm.auto import tqdm
from course_checks import CheckFailed, yours_or_working  # noqa: F401


def gru_step(x_t, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step, PyTorch's equations: x_t (N, H_in), h (N, H) -> new h (N, H)."""
    gates_x = x_t @ w_ih.T if b_ih is None else x_t @ w_ih.T + b_ih
    gates_h = h @ w_hh.T if b_hh is None else h @ w_hh.T + b_hh
    x_r, x_z, x_n = gates_x.chunk(3, dim=-1)  # gate order r | z | n
    h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def bidirectional_gru_forward(x, h0, params, num_layers, batch_first=False):
    """Forward pass of nn.GRU(..., num_layers=num_layers, bidirectional=True, batch_first=batch_first).

    x: (L, N, H_in), or (N, L, H_in) if batch_first, or unbatched (L, H_in).
    h0: None or (2 * num_layers, N, H) ((2 * num_layers, H) when unbatched), rows layer-major.
    params: {name: tensor} as returned by gru_params(gru), e.g. params["weight_ih_l1_reverse"].
    Returns (output, h_n) with nn.GRU's shapes: output (L, N, 2H) (batch first if batch_first; (L, 2H)
    unbatched) and h_n (2 * num_layers, N, H) ((2 * num_layers, H) unbatched).
    """
    unbatched = x.dim() == 2
    if unbatched:
        x = x.unsqueeze(1)
        h0 = None if h0 is None else h0.unsqueeze(1)
    elif batch_first:
        x = x.transpose(0, 1)
    hidden_size = params["weight_hh_l0"].shape[1]
    if h0 is None:
        h0 = torch.zeros(2 * num_layers, x.shape[1], hidden_size, dtype=x.dtype, device=x.device)

    layer_input, final_states = x, []
    for layer in range(num_layers):
        directions = []
        for direction, suffix in enumerate(["", "_reverse"]):
            w_ih, w_hh, b_ih, b_hh = (params.get(f"{kind}_l{layer}{suffix}")
                                      for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            # The backward direction runs from the last step to the first; each state is stored at its own step.
            steps = range(len(layer_input) - 1, -1, -1) if direction == 1 else range(len(layer_input))
            h, states = h0[2 * layer + direction], [None] * len(layer_input)
            for t in steps:
                h = gru_step(layer_input[t], h, w_ih, w_hh, b_ih, b_hh)
                states[t] = h
            directions.append(torch.stack(states))
            final_states.append(h)  # row 2 * layer + direction of h_n
        layer_input = torch.cat(directions, dim=-1)  # the next layer reads [forward | backward]

    output, h_n = layer_input, torch.stack(final_states)
    if unbatched:
        return output.squeeze(1), h_n.squeeze(1)
    if batch_first:
        output = output.transpose(0, 1)
    return output, h_n


def final_states(h_n, num_layers, bidirectional):
    """(forward, backward): the top layer's final state of each direction in h_n of an nn.GRU with num_layers
    layers. Each (N, H), or (H,) when h_n is unbatched; backward is None when bidirectional is False."""
    num_directions = 2 if bidirectional else 1
    top = h_n.reshape(num_layers, num_directions, *h_n.shape[1:])[-1]
    return top[0], (top[1] if bidirectional else None)


def last_outputs(output, lengths, bidirectional, batch_first=False):
    """Row n: [forward output at step lengths[n] - 1 | backward output at step 0] of sequence n (only the
    forward part when not bidirectional). output: (L, N, D * H), or (N, L, D * H) if batch_first.
    Returns (N, D * H)."""
    if batch_first:
        output = output.transpose(0, 1)
    lengths = torch.as_tensor(lengths, dtype=torch.long).to(output.device)
    batch = torch.arange(output.shape[1], device=output.device)
    last = output[lengths - 1, batch]  # (N, D * H): every feature at each sequence's last real step
    if not bidirectional:
        return last
    hidden_size = output.shape[-1] // 2
    return torch.cat([last[:, :hidden_size], output[0, :, hidden_size:]], dim=-1)
