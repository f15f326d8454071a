"""The course's working versions of Lesson 01's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import os
import matplotlib.pyplot as plt
import torch
from torch import nn
from tqdm.auto import tqdm
from course_checks import call_watching_operators, yours_or_working
import copy
from gru_paper_v3 import paper_v3_cell
from gru_paper_v3 import paper_v3_sequence


def split_gru_parameters(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """Cut nn.GRUCell's packed tensors into the named pieces of the GRU equations.

    weight_ih: (3H, H_in), weight_hh: (3H, H), bias_ih and bias_hh: (3H,) or None.
    Returns a dict with keys W_ir, W_iz, W_in, W_hr, W_hz, W_hn (the weight blocks) and
    b_ir, b_iz, b_in, b_hr, b_hz, b_hn (the bias blocks, zeros of shape (H,) when the bias is None).
    """
    hidden_size = weight_hh.shape[1]
    if bias_ih is None:
        bias_ih = weight_hh.new_zeros(3 * hidden_size)
    if bias_hh is None:
        bias_hh = weight_hh.new_zeros(3 * hidden_size)
    parts = {}
    for side, weight, bias in (("i", weight_ih, bias_ih), ("h", weight_hh, bias_hh)):
        for block, gate in enumerate("rzn"):
            rows = slice(block * hidden_size, (block + 1) * hidden_size)
            parts[f"W_{side}{gate}"] = weight[rows]
            parts[f"b_{side}{gate}"] = bias[rows]
    return parts


def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One GRU step, computed like nn.GRUCell: returns the new state h' (same shape as h).

    x: (N, H_in) or (H_in,); h: (N, H) or (H,); weight_ih: (3H, H_in); weight_hh: (3H, H);
    bias_ih, bias_hh: (3H,) or None. Gate blocks are stacked in the order r, z, n.
    """
    H = weight_hh.shape[1]
    W_ir, W_iz, W_in = weight_ih[:H], weight_ih[H:2 * H], weight_ih[2 * H:]
    W_hr, W_hz, W_hn = weight_hh[:H], weight_hh[H:2 * H], weight_hh[2 * H:]
    if bias_ih is None:
        bias_ih = weight_ih.new_zeros(3 * H)
    if bias_hh is None:
        bias_hh = weight_hh.new_zeros(3 * H)
    b_ir, b_iz, b_in = bias_ih[:H], bias_ih[H:2 * H], bias_ih[2 * H:]
    b_hr, b_hz, b_hn = bias_hh[:H], bias_hh[H:2 * H], bias_hh[2 * H:]
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


def gate_biases(hidden_size, behaviour):
    """(bias_ih, bias_hh), two float tensors of shape (3 * hidden_size,), that make an nn.GRUCell
    copy its state (behaviour="copy": h' = h) or reset it (behaviour="reset": h' = tanh(W_in x))."""
    H = hidden_size
    bias_ih = torch.zeros(3 * H)
    bias_hh = torch.zeros(3 * H)
    if behaviour == "copy":
        bias_hh[H:2 * H] = 50.0  # z = 1: h' = 0 * n + 1 * h
    elif behaviour == "reset":
        bias_hh[:H] = -50.0  # r = 0: the candidate ignores h, n = tanh(W_in x + b_in)
        bias_hh[H:2 * H] = -50.0  # z = 0: h' = n
    else:
        raise ValueError(f"behaviour must be 'copy' or 'reset', got {behaviour!r}")
    return bias_ih, bias_hh
