"""Lesson 07's hidden checks: for instructors only, never released to learners and never run inside a grading
kernel. They reuse the fixtures and judges of lesson_checks.py on many more configurations and edge cases, with
reference implementations (below) to compute the expected values and to name the known mistakes."""
import math
import random

import torch
from course_checks import check_shape, check_tensor_or_variant, check_type, exercise, while_checking
from lesson_checks import (
    DecoderParts,
    fixed_decoder,
    judge_attend,
    judge_bridge,
    judge_bridge_on_a_gru,
    judge_decode_step,
    judge_greedy_decode,
    seeded,
)

# --- Reference implementations (what the answers compute) ----------------------------------------------------------

def reference_bridge(h_n):
    """(2 * num_layers, N, H) layer-major -> (num_layers, N, 2H), [forward | backward] of each layer and sample."""
    return torch.cat([h_n[0::2], h_n[1::2]], dim=-1)


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    """One GRU step, PyTorch's equations (gate order r | z | n, the reset gate multiplying W_hn h + b_hn)."""
    x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def step_from_weights(decoder, token, h):
    """One decoder step written out from the decoder's parameters: (logits (N, V), new_h (num_layers, N, hidden))."""
    with torch.no_grad():
        x = decoder.embedding.weight[token]
        new_h = []
        for layer in range(decoder.gru.num_layers):
            weights = [getattr(decoder.gru, f"{kind}_l{layer}") for kind in ("weight_ih", "weight_hh", "bias_ih",
                                                                               "bias_hh")]
            x = gru_cell(x, h[layer], *weights)
            new_h.append(x)
        return x @ decoder.out.weight.T + decoder.out.bias, torch.stack(new_h)


def masked_scores(query, encoder_outputs, lengths, masked_from=0, fill=-math.inf, scale=1.0):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1) / scale
    positions = torch.arange(encoder_outputs.shape[1])
    return scores.masked_fill(positions[None, :] >= (lengths[:, None] + masked_from), fill)


def reference_attend(query, encoder_outputs, lengths):
    """Dot-product attention over each sample's real positions: (context (N, D), weights (N, S))."""
    weights = masked_scores(query, encoder_outputs, lengths).softmax(dim=-1)
    return (weights.unsqueeze(-1) * encoder_outputs).sum(dim=1), weights


def attention_mistakes(query, encoder_outputs, lengths):
    """{known mistake: the weights it gives}."""
    scores = masked_scores(query, encoder_outputs, lengths, masked_from=10 ** 9)  # nothing masked
    real = (torch.arange(encoder_outputs.shape[1])[None, :] < lengths[:, None]).to(scores.dtype)
    after = scores.softmax(dim=-1) * real
    mistakes = {
        "no mask: padded positions take part in the softmax": scores.softmax(dim=-1),
        "padded scores filled with 0 instead of -inf (exp(0) = 1, so padding still gets weight)":
            masked_scores(query, encoder_outputs, lengths, fill=0.0).softmax(dim=-1),
        f"scores divided by sqrt(D) = {math.sqrt(query.shape[-1]):.4g} (scaled dot-product attention); this "
        "exercise asks for the plain dot product": masked_scores(query, encoder_outputs, lengths,
                                                                 scale=math.sqrt(query.shape[-1])).softmax(dim=-1),
        "the mask applied after the softmax without renormalising (the weights of a sample do not sum to 1)": after,
        "a mask off by one that also hides the last real position (lengths[n] - 1, the <eos>)":
            masked_scores(query, encoder_outputs, lengths, masked_from=-1).softmax(dim=-1),
        "a mask off by one that lets position lengths[n], the first padded one, through":
            masked_scores(query, encoder_outputs, lengths, masked_from=1).softmax(dim=-1),
    }
    if query.shape[0] > 1:
        mistakes["a softmax over the batch dimension (dim=0) instead of the positions"] = (
            masked_scores(query, encoder_outputs, lengths).softmax(dim=0).nan_to_num(0.0))
    return {name: value for name, value in mistakes.items() if not torch.isnan(value).any()}


# --- Exercise 7.1 --------------------------------------------------------------------------------------------------

@exercise("ex7_1_hidden", "bridge")
def exercise_7_1(bridge):
    """1 to 4 layers, a batch of one, hidden size 1, float32 and float64, random sizes; random states with the known
    mistakes named; real nn.GRUs of 1 and 3 layers."""
    for num_layers, batch_size, hidden_size in [(1, 1, 1), (1, 4, 3), (2, 1, 5), (3, 2, 1), (4, 5, 2), (2, 2, 2)]:
        judge_bridge(bridge, num_layers, batch_size, hidden_size)
    judge_bridge(bridge, 1, 3, 4, dtype=torch.float32)
    judge_bridge(bridge, 3, 4, 2, dtype=torch.float32)
    rng = random.Random(7104)
    for _ in range(6):
        judge_bridge(bridge, rng.randint(1, 4), rng.randint(1, 6), rng.randint(1, 6))
    generator = torch.Generator().manual_seed(7105)
    for num_layers, batch_size, hidden_size, dtype in [(2, 3, 4, torch.float64), (3, 2, 5, torch.float32),
                                                       (1, 4, 2, torch.float32)]:
        h_n = torch.randn(2 * num_layers, batch_size, hidden_size, generator=generator, dtype=dtype)
        what = f"bridge(h_n {tuple(h_n.shape)} random, num_layers={num_layers}) ({dtype})"
        with while_checking(what):
            result = bridge(h_n.clone(), num_layers)
        check_type(result, torch.Tensor, what)
        check_shape(result.shape, (num_layers, batch_size, 2 * hidden_size), f"{what}.shape")
        by_direction = h_n.view(2, num_layers, batch_size, hidden_size)
        check_tensor_or_variant(result, reference_bridge(h_n), what, {
            "h_n.view(num_layers, N, 2H), which mixes samples (section 4)":
                h_n.reshape(num_layers, batch_size, 2 * hidden_size),
            "[backward | forward]: the directions are swapped": torch.cat([h_n[1::2], h_n[0::2]], dim=-1),
            "h_n read direction-major (h_n.view(2, num_layers, N, H)); PyTorch stacks it layer-major":
                torch.cat([by_direction[0], by_direction[1]], dim=-1),
        })
    judge_bridge_on_a_gru(bridge, num_layers=1, batch_size=1, seed=7106)
    judge_bridge_on_a_gru(bridge, num_layers=3, batch_size=4, seed=7107, input_size=2, hidden_size=2)


# --- Exercise 7.2 --------------------------------------------------------------------------------------------------

def judge_random_decoder(decode_step, seed, num_layers, batch_size, vocab_size=7, embedding_size=3, hidden_size=4,
                         dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    with seeded(seed):
        decoder = DecoderParts(vocab_size, embedding_size, hidden_size, num_layers).to(dtype)
    token = torch.randint(0, vocab_size, (batch_size,), generator=generator)
    h = torch.randn(num_layers, batch_size, hidden_size, generator=generator, dtype=dtype)
    expected_logits, expected_h = step_from_weights(decoder, token, h)
    what = (f"decode_step(decoder (vocab {vocab_size}, E {embedding_size}, hidden {hidden_size}, {num_layers} "
            f"layer(s), seed {seed}, {dtype}), token {tuple(token.shape)}, h {tuple(h.shape)})")
    judge_decode_step(decode_step, decoder, token, h, expected_logits, expected_h, what, {
        "the GRU started from zeros: h was not passed to decoder.gru": step_from_weights(decoder, token,
                                                                                          torch.zeros_like(h))})


@exercise("ex7_2_hidden", "decode_step")
def exercise_7_2(decode_step):
    """1 to 3 layers, a batch of one, hidden size 1, float32, other sizes; the logits' known mistakes named."""
    judge_random_decoder(decode_step, seed=7201, num_layers=1, batch_size=1)
    judge_random_decoder(decode_step, seed=7202, num_layers=1, batch_size=4, vocab_size=5, embedding_size=2,
                         hidden_size=6)
    judge_random_decoder(decode_step, seed=7203, num_layers=3, batch_size=2, vocab_size=9, embedding_size=4,
                         hidden_size=3)
    judge_random_decoder(decode_step, seed=7204, num_layers=2, batch_size=1, hidden_size=1)
    judge_random_decoder(decode_step, seed=7205, num_layers=2, batch_size=5, dtype=torch.float32)
    judge_random_decoder(decode_step, seed=7206, num_layers=3, batch_size=1, dtype=torch.float32)
    decoder = fixed_decoder(11, 5, 6, 2, offset=2.5)
    token, h = torch.tensor([10, 0, 4, 4]), torch.zeros(2, 4, 6, dtype=torch.float64)
    judge_decode_step(decode_step, decoder, token, h, *step_from_weights(decoder, token, h),
                      "decode_step(fixed decoder (vocab 11, 2 layers), token [10, 0, 4, 4], h zeros)")


# --- Exercise 7.3 --------------------------------------------------------------------------------------------------

def judge_random_attention(attend, seed, lengths, positions=None, size=4, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    N, S = len(lengths), positions or max(lengths)
    query = 1.5 * torch.randn(N, size, generator=generator, dtype=dtype)
    encoder_outputs = torch.randn(N, S, size, generator=generator, dtype=dtype)
    lengths = torch.tensor(lengths)
    for n, length in enumerate(lengths.tolist()):  # padding holds garbage, as it may in a real batch
        encoder_outputs[n, length:] = 4 + torch.rand(S - length, size, generator=generator, dtype=dtype)
    context, weights = reference_attend(query, encoder_outputs, lengths)
    what = (f"attend(query {tuple(query.shape)}, encoder_outputs {tuple(encoder_outputs.shape)}, lengths "
            f"{lengths.tolist()}) ({dtype})")
    judge_attend(attend, query, encoder_outputs, lengths, context, weights, what,
                 attention_mistakes(query, encoder_outputs, lengths))


@exercise("ex7_3_hidden", "attend")
def exercise_7_3(attend):
    """Random sizes and lengths, a batch of one, one position, feature size 1, no padding at all, padding beyond the
    longest sample, float32; the known mistakes named (no mask, 0 instead of -inf, scaled scores, the mask after the
    softmax, masks off by one, the softmax over the batch)."""
    judge_random_attention(attend, 7301, [4, 1, 3, 2])
    judge_random_attention(attend, 7302, [3], size=2)
    judge_random_attention(attend, 7303, [1], size=1)
    judge_random_attention(attend, 7304, [1, 1, 1])
    judge_random_attention(attend, 7305, [5, 5], size=3)
    judge_random_attention(attend, 7306, [2, 6, 3], positions=8, size=5)
    judge_random_attention(attend, 7307, [7, 2, 4, 7, 1], size=6, dtype=torch.float32)
    judge_random_attention(attend, 7308, [3, 5], positions=6, size=2, dtype=torch.float32)
    rng = random.Random(7309)
    for seed in range(7310, 7314):
        judge_random_attention(attend, seed, [rng.randint(1, 9) for _ in range(rng.randint(1, 6))],
                               size=rng.randint(1, 7))


# --- Exercise 7.4 --------------------------------------------------------------------------------------------------

def random_scripts(rng, batch_size, vocab_size, sos_id, eos_id, max_length, ends):
    """Scripts of max_length + 3 choices; sample n ends (chooses eos_id) after ends[n] tokens (None: never). The
    tokens 0 and 2 (the lesson's <pad> and EOS) come up as ordinary tokens wherever they are not eos_id."""
    ordinary = [token for token in range(vocab_size) if token not in (sos_id, eos_id)]
    scripts = []
    for n in range(batch_size):
        script = [rng.choice(ordinary) for _ in range(max_length + 3)]
        for position, token in ((0, 2), (1, 0)):
            if token in ordinary and position < len(script) and rng.random() < 0.6:
                script[position] = token
        if ends[n] is not None:
            script[ends[n]] = eos_id
        scripts.append(script)
    return scripts


@exercise("ex7_4_hidden", "greedy_decode")
def exercise_7_4(greedy_decode):
    """Batches of one, max_length 1, samples that end at the first step and samples that never end, the lesson's
    own ids for <sos> and <eos> and others, larger vocabularies, a state that is a tuple (as an attention decoder's)."""
    rng = random.Random(7401)
    cases = [  # (batch_size, vocab_size, sos_id, eos_id, max_length, ends, tuple_state)
        (5, 9, 1, 2, 9, [3, 6, None, 0, 8], False),
        (1, 6, 1, 2, 5, [None], False),
        (1, 6, 4, 3, 5, [2], True),
        (3, 10, 7, 1, 10, [4, 9, 2], True),
        (6, 7, 6, 5, 1, [0, None, 1, 0, None, 3], False),
        (4, 8, 0, 7, 6, [5, 5, 5, 5], False),
        (3, 12, 11, 4, 12, [11, None, 6], True),
        (2, 5, 3, 4, 3, [0, 0], False),
        (4, 7, 1, 2, 4, [None, 1, None, 2], True),
    ]
    for batch_size, vocab_size, sos_id, eos_id, max_length, ends, tuple_state in cases:
        scripts = random_scripts(rng, batch_size, vocab_size, sos_id, eos_id, max_length, ends)
        judge_greedy_decode(greedy_decode, scripts, vocab_size, sos_id, eos_id, max_length, tuple_state)
