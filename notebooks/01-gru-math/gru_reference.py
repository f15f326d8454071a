"""Lesson 01's reference GRU step, which the lesson uses after its exercises.

This file is the answer to Exercise 1.2 (a GRU cell from raw tensors): try the exercise before you read on.
"""

import torch

VARIANTS = ["PyTorch's equations", "paper v3: W_hn (r * h)", "z and 1 - z swapped", "gate order z, r, n",
            "b_hn outside the reset"]


def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """One GRU step with PyTorch's equations. Returns (r, z, n, h_new)."""
    gi_r, gi_z, gi_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)  # W_i? x + b_i? for the three gates at once
    gh_r, gh_z, gh_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)  # W_h? h + b_h? for the three gates at once
    r = torch.sigmoid(gi_r + gh_r)
    z = torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    h_new = (1 - z) * n + z * h
    return r, z, n, h_new


def gru_step_variant(x, h, weight_ih, weight_hh, bias_ih, bias_hh, variant):
    """Like gru_step's new state, with one of the classic deviations from PyTorch's equations (see VARIANTS)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    H = weight_hh.shape[1]
    gates = "zrn" if variant == "gate order z, r, n" else "rzn"
    W_i = dict(zip(gates, weight_ih.split(H), strict=True))  # {"r": W_ir, "z": W_iz, "n": W_in}
    W_h = dict(zip(gates, weight_hh.split(H), strict=True))
    b_i = dict(zip(gates, bias_ih.split(H), strict=True))
    b_h = dict(zip(gates, bias_hh.split(H), strict=True))
    r = torch.sigmoid(x @ W_i["r"].T + b_i["r"] + h @ W_h["r"].T + b_h["r"])
    z = torch.sigmoid(x @ W_i["z"].T + b_i["z"] + h @ W_h["z"].T + b_h["z"])
    if variant == "paper v3: W_hn (r * h)":
        from_state = (r * h) @ W_h["n"].T + b_h["n"]
    elif variant == "b_hn outside the reset":
        from_state = r * (h @ W_h["n"].T) + b_h["n"]
    else:
        from_state = r * (h @ W_h["n"].T + b_h["n"])
    n = torch.tanh(x @ W_i["n"].T + b_i["n"] + from_state)
    if variant == "z and 1 - z swapped":
        return z * n + (1 - z) * h
    return (1 - z) * n + z * h


def run_sequence(x, h, weight_ih, weight_hh, bias_ih, bias_hh, paper_v3=False):
    """The last state after running the sequence x (L, N, H_in) from h (N, H), the input side W_i x + b_i computed
    for all steps before the loop. PyTorch's form then needs one hidden-side product per step; the paper-v3 form
    needs a second one, (r * h) @ W_hn.T, which has to wait for r."""
    H = weight_hh.shape[1]
    input_side = x @ weight_ih.T + bias_ih  # (L, N, 3H), every step at once: both forms can do this
    for gi in input_side:
        gi_r, gi_z, gi_n = gi.chunk(3, dim=-1)
        if paper_v3:
            gh_r, gh_z = (h @ weight_hh[:2 * H].T + bias_hh[:2 * H]).chunk(2, dim=-1)
            r, z = torch.sigmoid(gi_r + gh_r), torch.sigmoid(gi_z + gh_z)
            n = torch.tanh(gi_n + (r * h) @ weight_hh[2 * H:].T + bias_hh[2 * H:])  # waits for r
        else:
            gh_r, gh_z, gh_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)  # all three gates in one product
            r, z = torch.sigmoid(gi_r + gh_r), torch.sigmoid(gi_z + gh_z)
            n = torch.tanh(gi_n + r * gh_n)
        h = (1 - z) * n + z * h
    return h
