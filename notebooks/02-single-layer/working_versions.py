"""The course's working versions of Lesson 02's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import os
import statistics
import time
import matplotlib.pyplot as plt
import torch
from torch import nn
from tqdm.auto import tqdm
from torch.utils.data import DataLoader


def h_n_from_output(output, batch_first=False):
    """The h_n that a one-layer, one-direction nn.GRU returned together with `output`.

    output: (L, N, H) if batch_first is False, (N, L, H) if batch_first is True, (L, H) for unbatched input.
    Returns a tensor of shape (1, N, H), or (1, H) for unbatched input.
    """
    if output.dim() == 2:  # unbatched: (L, H), whatever batch_first says
        return output[-1:]
    last_step = output[:, -1] if batch_first else output[-1]  # (N, H)
    return last_step.unsqueeze(0)


def params_from_gru(gru):
    """The weights of the one-layer, one-direction nn.GRU `gru` as a params dictionary.

    Returns {"weight_ih": ..., "weight_hh": ..., "bias_ih": ..., "bias_hh": ...} holding detached copies of
    gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0; the biases are None if gru.bias is False.
    """
    params = {}
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        tensor = getattr(gru, f"{name}_l0", None)
        params[name] = None if tensor is None else tensor.detach().clone()
    return params


def load_params_into_gru(params, gru):
    """Copy the params dictionary into the one-layer, one-direction nn.GRU `gru`, in place.

    gru keeps its Parameter objects (and their requires_grad); only their values change, copied from params.
    Entries that are None are skipped (gru was built with bias=False). Returns None.
    """
    with torch.no_grad():
        for name, value in params.items():
            if value is not None:
                getattr(gru, f"{name}_l0").copy_(value)


def gru_forward(x, h0, params, batch_first=False):
    """Run a one-layer, one-direction GRU with the weights `params` over the sequence(s) x.

    x: (L, N, H_in), or (N, L, H_in) if batch_first, or (L, H_in) unbatched.
    h0: (1, N, H), or (1, H) unbatched, or None for zeros.
    Returns (output, h_n) with the shapes nn.GRU returns.
    """
    unbatched = x.dim() == 2
    if unbatched:  # a batch of one, removed again at the end
        x = x.unsqueeze(1)
        h0 = None if h0 is None else h0.unsqueeze(1)
    elif batch_first:
        x = x.transpose(0, 1)  # now (L, N, H_in)
    if h0 is None:
        h0 = torch.zeros(1, x.shape[1], params["weight_hh"].shape[1], dtype=x.dtype, device=x.device)
    h = h0[0]  # (N, H)
    states = []
    for x_t in x:  # iterates over dimension 0: time
        h = gru_cell(x_t, h, params)
        states.append(h)
    output, h_n = torch.stack(states), h.unsqueeze(0)  # (L, N, H), (1, N, H)
    if unbatched:
        return output.squeeze(1), h_n.squeeze(1)
    if batch_first:
        output = output.transpose(0, 1)
    return output, h_n
