"""The GRU of Cho et al.'s final version (arXiv 1406.1078v3, the EMNLP 2014 paper), for section 4 of Lesson 01.

It applies the reset gate to the old state *before* the matrix product,

    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn),

where PyTorch, like the paper's first version (v1), computes r * (W_hn h + b_hn). So this is NOT PyTorch's GRU: the
lesson uses it to measure the difference. The weights are PyTorch's packed tensors, blocks in the order r, z, n.
"""
import torch


def paper_v3_step(input_side, h, weight_hh, bias_hh):
    """One paper-v3 step from the input side, input_side = x @ weight_ih.T + bias_ih, (N, 3H), and the state h,
    (N, H). The hidden side needs two matrix products: one for r and z, and one for n, which has to wait for r."""
    H = h.shape[-1]
    in_r, in_z, in_n = input_side.chunk(3, dim=-1)
    from_h_r, from_h_z = (h @ weight_hh[:2 * H].T + bias_hh[:2 * H]).chunk(2, dim=-1)
    r, z = torch.sigmoid(in_r + from_h_r), torch.sigmoid(in_z + from_h_z)
    n = torch.tanh(in_n + (r * h) @ weight_hh[2 * H:].T + bias_hh[2 * H:])  # the reset gate before W_hn
    return (1 - z) * n + z * h


def paper_v3_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """The paper-v3 cell's new state, for x (N, H_in) or (H_in,) and h (N, H) or (H,)."""
    return paper_v3_step(x @ weight_ih.T + bias_ih, h, weight_hh, bias_hh)


def paper_v3_sequence(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """The last state after the sequence x (L, N, H_in), starting from h (N, H). The input side of every step is
    computed at once, before the loop (one matrix product); each step then makes two hidden-side products."""
    input_side = x @ weight_ih.T + bias_ih  # (L, N, 3H)
    for step in input_side:
        h = paper_v3_step(step, h, weight_hh, bias_hh)
    return h
