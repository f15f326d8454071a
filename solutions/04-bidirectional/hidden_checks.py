"""Lesson 04's hidden checks: for instructors only, never released to learners and never inside a grading kernel
(the course's grader runs them in its own process). They reuse the visible checks' helpers (lesson_checks.py) on
many more configurations and edge cases.
"""
import random

import torch
from course_checks import GRU_OPERATORS, exercise
from lesson_checks import check_bidirectional_forward, check_final_states, check_last_outputs, seeded


def paper_v3_output(gru, x, h0):
    """The output of the bidirectional `gru` with the reset gate applied as in the final
    version of Cho et al. (2014), n = tanh(W_in x + b_in + W_hn (r * h) + b_hn): the classic mistake, as a model
    to name it."""
    H = gru.hidden_size
    unbatched = x.dim() == 2
    time_major = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if gru.batch_first else x)
    if h0 is None:
        h0 = time_major.new_zeros(2 * gru.num_layers, time_major.shape[1], H)
    elif unbatched:
        h0 = h0.unsqueeze(1)
    layer_input = time_major
    for k in range(gru.num_layers):
        halves = []
        for direction, suffix in enumerate(("", "_reverse")):
            w_ih, w_hh = getattr(gru, f"weight_ih_l{k}{suffix}"), getattr(gru, f"weight_hh_l{k}{suffix}")
            b_ih = getattr(gru, f"bias_ih_l{k}{suffix}", None)
            b_hh = getattr(gru, f"bias_hh_l{k}{suffix}", None)
            if b_ih is None:
                b_ih = b_hh = w_ih.new_zeros(3 * H)
            W_hr, W_hz, W_hn = w_hh.chunk(3)
            b_hr, b_hz, b_hn = b_hh.chunk(3)
            steps = range(len(layer_input) - 1, -1, -1) if direction else range(len(layer_input))
            h, states = h0[2 * k + direction], [None] * len(layer_input)
            for t in steps:
                i_r, i_z, i_n = (layer_input[t] @ w_ih.T + b_ih).chunk(3, dim=-1)
                r = torch.sigmoid(i_r + h @ W_hr.T + b_hr)
                z = torch.sigmoid(i_z + h @ W_hz.T + b_hz)
                n = torch.tanh(i_n + (r * h) @ W_hn.T + b_hn)
                h = (1 - z) * n + z * h
                states[t] = h
            halves.append(torch.stack(states))
        layer_input = torch.cat(halves, dim=-1)
    if unbatched:
        return layer_input.squeeze(1)
    return layer_input.transpose(0, 1) if gru.batch_first else layer_input


def v3_mistake(gru, x, h0):
    return {"a GRU with the paper-v3 reset, W_hn (r * h): PyTorch applies r to W_hn h + b_hn (Lesson 01)":
            lambda: paper_v3_output(gru, x, h0)}


@exercise("ex4_1_hidden", "bidirectional_gru_forward", forbidden={"bidirectional_gru_forward": GRU_OPERATORS})
def exercise_4_1(bidirectional_gru_forward):
    """Compared with nn.GRU(bidirectional=True) for 1 to 3 layers, batch_first, unbatched input, h0=None,
    bias=False, batch of one, one step, float64 and (short sequences) float32."""
    def check_forward(*args, **kwargs):
        check_bidirectional_forward(bidirectional_gru_forward, *args, more_mistakes=v3_mistake, **kwargs)

    rng = random.Random(4104)
    with seeded(4104):
        check_forward(2, 3, 1, seq_len=1, batch_size=1)
        check_forward(3, 2, 3, seq_len=4, batch_size=2, with_h0=False)
        check_forward(4, 3, 2, seq_len=5, batch_size=3, batch_first=True)
        check_forward(3, 4, 2, seq_len=4, batch_size=1, unbatched=True)
        check_forward(3, 4, 3, seq_len=3, batch_size=1, unbatched=True, with_h0=False, batch_first=True)
        check_forward(2, 5, 2, seq_len=4, batch_size=3, bias=False)
        check_forward(3, 3, 1, seq_len=3, batch_size=2, bias=False, batch_first=True, with_h0=False)
        check_forward(3, 4, 2, seq_len=3, batch_size=2, dtype=torch.float32)
        check_forward(2, 3, 3, seq_len=2, batch_size=3, batch_first=True, dtype=torch.float32)
        check_forward(3, 3, 2, seq_len=4, batch_size=4, batch_first=True)  # N == L: a layout mistake keeps the shape
        for _ in range(6):
            check_forward(rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 3), seq_len=rng.randint(1, 6),
                          batch_size=rng.randint(1, 4), bias=rng.random() < 0.7, batch_first=rng.random() < 0.5,
                          unbatched=rng.random() < 0.25, with_h0=rng.random() < 0.6)


@exercise("ex4_2_hidden", "final_states")
def exercise_4_2(final_states):
    """1 to 3 layers, both directions or one, batch_first, unbatched, batch of one."""
    with seeded(4204):
        for num_layers in (1, 2, 3):
            for bidirectional in (True, False):
                check_final_states(final_states, num_layers, bidirectional)
                check_final_states(final_states, num_layers, bidirectional, batch_first=True, batch_size=2)
                check_final_states(final_states, num_layers, bidirectional, unbatched=True)
        check_final_states(final_states, 3, True, batch_size=1, seq_len=1)


@exercise("ex4_3_hidden", "last_outputs")
def exercise_4_3(last_outputs):
    """Lengths that show an off-by-one (a sequence of length 1 next to one as long as the padded output, in both
    orders), unsorted lengths, a batch of one (length 1, and length 6 padded to 9), batch_first (also with as many
    sequences as steps), 2 layers, lengths as a list, output padded beyond the longest sequence, one direction and
    two."""
    with seeded(4304):
        for bidirectional in (True, False):
            check_last_outputs(last_outputs, [3, 6, 1, 4], bidirectional)
            check_last_outputs(last_outputs, [1, 7], bidirectional)
            check_last_outputs(last_outputs, [7, 1], bidirectional, batch_first=True, extra_padding=2,
                               lengths_as_list=True)
            check_last_outputs(last_outputs, [2, 5, 5, 1], bidirectional, batch_first=True)
            check_last_outputs(last_outputs, [4, 2, 3], bidirectional, num_layers=2, extra_padding=2,
                               lengths_as_list=True)
            check_last_outputs(last_outputs, [1], bidirectional, batch_first=True)
            check_last_outputs(last_outputs, [6], bidirectional, extra_padding=3)
            check_last_outputs(last_outputs, [3, 1, 2], bidirectional, batch_first=True)
            check_last_outputs(last_outputs, [3, 3], bidirectional, batch_first=True, extra_padding=1,
                               lengths_as_list=True, hidden_size=1)
