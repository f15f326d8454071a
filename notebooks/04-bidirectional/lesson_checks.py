"""Lesson 04's visible checks (released with the lesson). The notebook's check cells call them with your answers;
the course's grader calls the same functions, with your answers run in your notebook's kernel. The hidden checks
(hidden_checks.py, instructors only) reuse the helpers below on more configurations.

Every expected value here comes from PyTorch itself (an nn.GRU with the same weights, run on the whole batch or on
one sequence at a time, packed where the sequences have different lengths), never from code that computes an
exercise's answer.
"""

import torch
from course_checks import (
    GRU_OPERATORS,
    CheckFailed,
    check,
    check_shape,
    check_tensor,
    check_tensor_or_variant,
    check_type,
    check_unchanged,
    exercise,
    gru_weight_mistakes,
    seeded,
    while_checking,
)
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

# --- Exercise 4.1 ------------------------------------------------------------------------------------------------

def parameters_by_name(gru):
    """{name: detached copy} of the GRU's parameters, as gru_params(gru) in the notebook gives them."""
    return {name: parameter.detach().clone() for name, parameter in gru.named_parameters()}


def direction_major(rows, num_layers):
    """The rows of a layer-major h_0/h_n (row 2 * layer + direction) in direction-major order."""
    return rows.reshape(num_layers, 2, -1).transpose(0, 1).reshape(rows.shape)


def output_mistakes(gru, x, h0):
    """{a known mistake: function returning the output it gives}, computed with PyTorch's own modules."""
    mistakes = gru_weight_mistakes(gru, lambda changed: changed(x, h0)[0])
    if h0 is not None:
        mistakes["a GRU started from zeros: h0 is the initial state of every layer and direction"] = (
            lambda: gru(x)[0])
        if gru.num_layers > 1:
            mistakes["h0 read direction-major: h0 is layer-major, row 2 * layer + direction"] = (
                lambda: gru(x, direction_major(h0, gru.num_layers).contiguous())[0])
    return mistakes


def check_bidirectional_forward(bidirectional_gru_forward, input_size, hidden_size, num_layers, seq_len, batch_size,
                                bias=True, batch_first=False, unbatched=False, with_h0=True, dtype=torch.float64,
                                more_mistakes=None):
    """bidirectional_gru_forward must return what nn.GRU(..., bidirectional=True) returns with the same weights.
    `more_mistakes(gru, x, h0)`: {name: function returning a wrong output}, besides the usual ones."""
    gru = nn.GRU(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                 bidirectional=True, dtype=dtype)
    if unbatched:
        x_shape, h_shape = (seq_len, input_size), (2 * num_layers, hidden_size)
    else:
        x_shape = (batch_size, seq_len, input_size) if batch_first else (seq_len, batch_size, input_size)
        h_shape = (2 * num_layers, batch_size, hidden_size)
    x = torch.randn(x_shape, dtype=dtype)
    h0 = torch.randn(h_shape, dtype=dtype) if with_h0 else None
    params = parameters_by_name(gru)
    given_x, given_h0 = x.clone(), None if h0 is None else h0.clone()
    given_params = {name: tensor.clone() for name, tensor in params.items()}
    with torch.no_grad():
        expected_output, expected_h_n = gru(x, h0)
    what = (f"bidirectional_gru_forward for nn.GRU({input_size}, {hidden_size}, num_layers={num_layers}, "
            f"bias={bias}, batch_first={batch_first}, {dtype}) on x {tuple(x_shape)}, "
            f"h0 {'given' if with_h0 else 'None'}")
    with while_checking(what):
        result = bidirectional_gru_forward(given_x, given_h0, given_params, num_layers, batch_first=batch_first)
    check_type(result, tuple, what)
    check(len(result) == 2, f"{what}: expected a pair (output, h_n), got {len(result)} items")
    check_unchanged(x, given_x, f"{what}: x")
    check_unchanged(h0, given_h0, f"{what}: h0")
    output, h_n = result
    check_type(output, torch.Tensor, f"{what}: output")
    check_shape(output.shape, expected_output.shape, f"{what}: output.shape")
    time_axis = 1 if batch_first and not unbatched else 0
    H = hidden_size
    with torch.no_grad():
        mistakes = output_mistakes(gru, x, h0)
        if more_mistakes is not None:
            mistakes |= more_mistakes(gru, x, h0)
        try:
            check_tensor_or_variant(output, expected_output, f"{what}: output", mistakes)
        except CheckFailed as failure:
            if "Your result equals" in str(failure):
                raise
            # Which half is wrong, and the mistakes of one half.
            check_tensor_or_variant(output[..., :H], expected_output[..., :H],
                                    f"{what}: the forward half of output (features :H)",
                                    {"the backward half: output is [forward | backward]": expected_output[..., H:]})
            check_tensor_or_variant(output[..., H:], expected_output[..., H:],
                                    f"{what}: the backward half of output (features H:)",
                                    {"the backward states stored in the order they were computed: the state of time "
                                     "step t belongs at position t": expected_output[..., H:].flip(time_axis)})
            raise
    check_type(h_n, torch.Tensor, f"{what}: h_n")
    check_shape(h_n.shape, expected_h_n.shape, f"{what}: h_n.shape")
    try:
        check_tensor_or_variant(h_n, expected_h_n, f"{what}: h_n", {
            "h_n in direction-major order: it is layer-major, row 2 * layer + direction":
                direction_major(expected_h_n, num_layers)})
    except CheckFailed as failure:
        if "Your result equals" in str(failure):
            raise
        check_tensor(h_n[0::2], expected_h_n[0::2], f"{what}: the forward rows of h_n (h_n[0::2])")
        check_tensor(h_n[1::2], expected_h_n[1::2], f"{what}: the backward rows of h_n (h_n[1::2])")
        raise


@exercise("ex4_1_visible", "bidirectional_gru_forward",
          forbidden={"bidirectional_gru_forward": GRU_OPERATORS})
def exercise_4_1(bidirectional_gru_forward):
    """A 1-layer bidirectional GRU (float64) with batch_first=True and h0=None, then a 2-layer one with a random
    h0."""
    with seeded(41):
        check_bidirectional_forward(bidirectional_gru_forward, input_size=3, hidden_size=4, num_layers=1, seq_len=4,
                                    batch_size=3, batch_first=True, with_h0=False)
        check_bidirectional_forward(bidirectional_gru_forward, input_size=3, hidden_size=4, num_layers=2, seq_len=5,
                                    batch_size=2)


# --- Exercise 4.2 ------------------------------------------------------------------------------------------------

def check_final_states(final_states, num_layers, bidirectional, batch_first=False, unbatched=False, seq_len=4,
                       batch_size=3):
    """final_states(h_n, ...) must be the top layer's states that output shows at its last (forward) and first
    (backward) steps."""
    input_size, hidden_size = 3, 4
    gru = nn.GRU(input_size, hidden_size, num_layers, bidirectional=bidirectional, batch_first=batch_first,
                 dtype=torch.float64)
    if unbatched:
        x = torch.randn(seq_len, input_size, dtype=torch.float64)
    elif batch_first:
        x = torch.randn(batch_size, seq_len, input_size, dtype=torch.float64)
    else:
        x = torch.randn(seq_len, batch_size, input_size, dtype=torch.float64)
    with torch.no_grad():
        output, h_n = gru(x)
    time_major = output if unbatched or not batch_first else output.transpose(0, 1)
    what = (f"final_states(h_n, num_layers={num_layers}, bidirectional={bidirectional}) with h_n "
            f"{tuple(h_n.shape)}")
    given = h_n.clone()
    with while_checking(what):
        result = final_states(given, num_layers, bidirectional)
    check_unchanged(h_n, given, f"{what}: h_n")
    check_type(result, tuple, what)
    check(len(result) == 2, f"{what}: expected a pair (forward, backward), got {len(result)} items")
    forward, backward = result
    D = 2 if bidirectional else 1
    rows = {f"h_n[{i}], layer {i // D}'s {'forward' if i % D == 0 else 'backward'} final state "
            f"(h_n is layer-major: row 2 * layer + direction)": h_n[i] for i in range(h_n.shape[0])}
    check_tensor_or_variant(forward, time_major[-1, ..., :hidden_size], f"{what}: forward (the output's last step)",
                            rows)
    if bidirectional:
        check_tensor_or_variant(backward, time_major[0, ..., hidden_size:],
                                f"{what}: backward (the output's first step)", rows)
    else:
        check(backward is None, f"{what}: expected backward None (one direction), got {type(backward).__name__}")


@exercise("ex4_2_visible", "final_states")
def exercise_4_2(final_states):
    """2-layer GRUs, bidirectional and not, against output's first and last steps."""
    with seeded(42):
        check_final_states(final_states, num_layers=2, bidirectional=True)
        check_final_states(final_states, num_layers=2, bidirectional=False)


# --- Exercise 4.3 ------------------------------------------------------------------------------------------------

def check_last_outputs(last_outputs, lengths, bidirectional, num_layers=1, batch_first=False, extra_padding=0,
                       lengths_as_list=False, hidden_size=4):
    """last_outputs(padded output, lengths, ...) must equal the top layer's rows of h_n of the packed run."""
    gru = nn.GRU(3, hidden_size, num_layers, bidirectional=bidirectional, batch_first=batch_first,
                 dtype=torch.float64)
    sequences = [torch.randn(length, 3, dtype=torch.float64) for length in lengths]
    padded = pad_sequence(sequences, batch_first=batch_first)
    length_tensor = torch.tensor(lengths)
    packed = pack_padded_sequence(padded, length_tensor, batch_first=batch_first, enforce_sorted=False)
    with torch.no_grad():
        packed_output, h_n = gru(packed)
        alone = [gru(sequence)[0] for sequence in sequences]  # each sequence on its own: (length, D * H)
    output, _ = pad_packed_sequence(packed_output, batch_first=batch_first,
                                    total_length=max(lengths) + extra_padding)
    expected = torch.cat([h_n[-2], h_n[-1]], dim=-1) if bidirectional else h_n[-1]
    what = (f"last_outputs(output {tuple(output.shape)}, lengths={lengths}, bidirectional={bidirectional}, "
            f"batch_first={batch_first})")
    given_output = output.clone()
    given_lengths = list(lengths) if lengths_as_list else length_tensor.clone()
    with while_checking(what):
        result = last_outputs(given_output, given_lengths, bidirectional, batch_first=batch_first)
    check_unchanged(output, given_output, f"{what}: output")
    if not lengths_as_list:
        check_unchanged(length_tensor, given_lengths, f"{what}: lengths")
    check_type(result, torch.Tensor, what)
    check_shape(result.shape, expected.shape, f"{what}.shape")
    H = hidden_size
    time_major = output.transpose(0, 1) if batch_first else output
    one_step_early = torch.stack([alone[n][length - 2, :H] if length >= 2 else time_major[-1, n, :H]
                                  for n, length in enumerate(lengths)])
    check_tensor_or_variant(result[:, :H], expected[:, :H], f"{what}: the forward half (features :H)", {
        "output[-1], the last padded step: for a shorter sequence it is padding": time_major[-1, :, :H],
        "each sequence's step lengths[n] - 2, one before its last (at -1 for a sequence of length 1)":
            one_step_early,
    })
    if bidirectional:
        at_own_last_step = torch.stack([states[-1, H:] for states in alone])
        check_tensor_or_variant(result[:, H:], expected[:, H:], f"{what}: the backward half (features H:)", {
            "the backward half at step lengths - 1: the backward direction ends at step 0": at_own_last_step,
            "output[-1]'s backward half: the backward direction ends at step 0": time_major[-1, :, H:]})


@exercise("ex4_3_visible", "last_outputs")
def exercise_4_3(last_outputs):
    """Padded, packed batches through nn.GRU (section 6's lengths, 5 and 3, and three unsorted lengths); compared
    with the packed run's h_n."""
    with seeded(43):
        check_last_outputs(last_outputs, [5, 3], bidirectional=True)
        check_last_outputs(last_outputs, [2, 4, 3], bidirectional=False)
