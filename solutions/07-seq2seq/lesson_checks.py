"""Lesson 07's visible checks (released with the lesson): the bridge (7.1), one decoder step (7.2), masked attention
(7.3) and greedy decoding (7.4). The notebook's visible check cells call them (``checks.exercise_7_1(bridge)``); the
course's grader calls the same functions in its own process. The hidden checks are in ``hidden_checks.py``
(instructors only), which reuses the fixtures and judges below.

Nothing here computes an exercise's answer: the expected values are built with the fixture (labelled states whose
numbers say where they belong), read off PyTorch's own nn.GRU, or written out as literal numbers for one fixed
example.
"""
import copy
import math

import torch
from course_checks import (
    CheckFailed,
    CountCalls,
    check,
    check_shape,
    check_tensor,
    check_tensor_or_variant,
    check_type,
    exercise,
    while_checking,
)
from torch import nn


def _is_tensor(value):
    return issubclass(type(value), torch.Tensor)


class seeded:
    """`with seeded(seed):` PyTorch's global random generator starts from `seed` inside the block and is as it was
    before after it: the checks leave the notebook's random numbers alone."""

    def __init__(self, seed):
        self.seed, self.context = seed, None

    def __enter__(self):
        self.context = torch.random.fork_rng(devices=[])
        self.context.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc_info):
        return self.context.__exit__(*exc_info)


def fixed_values(count, offset, scale=0.5, dtype=torch.float64):
    """`count` numbers scale * sin(1.7 k + offset), k = 0, 1, ...: fixed weights, the same on every machine."""
    return scale * torch.sin(torch.arange(count, dtype=torch.float64) * 1.7 + offset).to(dtype)


# --- Exercise 7.1: the bridge ------------------------------------------------------------------------------------

def labelled_h_n(num_layers, batch_size, hidden_size, dtype=torch.float64):
    """(h_n, expected): an h_n of a bidirectional GRU (rows layer-major, as PyTorch stacks them) whose numbers are
    their own positions, so that any number says where it came from, and the decoder h_0 the bridge must make of it,
    built from the same numbers: expected[layer, n] = [forward state of (layer, n) | backward state of (layer, n)]."""
    rows, N, H = 2 * num_layers, batch_size, hidden_size
    position = torch.arange(rows * N * H, dtype=torch.float64)
    h_n = position.view(rows, N, H)  # h_n[2 * layer + direction, n, feature]
    layer, n, direction, feature = torch.meshgrid(torch.arange(num_layers), torch.arange(N), torch.arange(2),
                                                  torch.arange(H), indexing="ij")
    expected = (((2 * layer + direction) * N + n) * H + feature).to(torch.float64).reshape(num_layers, N, 2 * H)
    return h_n.to(dtype), expected.to(dtype)


def describe_position(value, batch_size, hidden_size):
    """What a number of labelled_h_n is: "layer 1 backward, sample 2"."""
    row, n = divmod(int(round(float(value))) // hidden_size, batch_size)
    layer, direction = divmod(row, 2)
    return f"layer {layer} {'backward' if direction else 'forward'}, sample {n}"


def diagnose_bridge(result, h_n, expected, num_layers, what):
    """Say where a wrongly laid out result (right shape and dtype) took its numbers from."""
    N, H = h_n.shape[1], h_n.shape[2]
    if N > 1 and torch.equal(result.detach().cpu(), h_n.reshape(num_layers, N, 2 * H)):
        raise CheckFailed(f"{what}: this is h_n.view(num_layers, N, 2H), which runs but mixes the samples of the batch "
                          "(section 4): view only reinterprets memory, and the two directions of one sample are N * H "
                          "numbers apart")
    got = result.detach().cpu()
    for layer in range(num_layers):
        for n in range(N):
            for half, name in ((0, "first half (forward)"), (1, "second half (backward)")):
                want = expected[layer, n, half * H:(half + 1) * H]
                have = got[layer, n, half * H:(half + 1) * H]
                if not torch.equal(have, want):
                    source = (f"holds the state of {describe_position(have[0], N, H)}" if
                              float(have[0]) == round(float(have[0])) and 0 <= float(have[0]) < h_n.numel()
                              else f"holds {have.tolist()}")
                    raise CheckFailed(f"{what}: decoder layer {layer}, sample {n}, {name} should be the state of "
                                      f"{describe_position(want[0], N, H)}, but it {source}")


def judge_bridge(bridge, num_layers, batch_size, hidden_size, dtype=torch.float64):
    """Check bridge() on labelled states of the given sizes; raise CheckFailed naming the layout mistake."""
    h_n, expected = labelled_h_n(num_layers, batch_size, hidden_size, dtype)
    untouched = h_n.clone()
    what = f"bridge(h_n {tuple(h_n.shape)}, num_layers={num_layers}) ({dtype})"
    with while_checking(what):
        result = bridge(h_n, num_layers)
    check_type(result, torch.Tensor, what)
    shape = tuple(result.shape)
    if shape == (batch_size, hidden_size) and (num_layers, 2) != (1, 1):
        raise CheckFailed(f"{what}: expected shape {tuple(expected.shape)}, got {shape}, one row of h_n (h_n[-1] is "
                          "the top layer's backward state alone): the decoder needs every layer, both directions")
    if shape == (num_layers, batch_size, hidden_size):
        raise CheckFailed(f"{what}: expected shape {tuple(expected.shape)}, got {shape}: half the features; the two "
                          "directions go side by side (forward, then backward), not added or one of them left out")
    check_shape(result.shape, expected.shape, f"{what}.shape")
    check(result.dtype == dtype, f"{what}: expected dtype {dtype} (h_n's), got {result.dtype}")
    check(torch.equal(h_n, untouched), f"{what}: h_n was changed in place; the bridge must leave it as it was")
    if not torch.equal(result.detach().cpu(), expected):
        diagnose_bridge(result, untouched, expected, num_layers, what)
        check_tensor(result, expected, what)


def judge_bridge_on_a_gru(bridge, num_layers, batch_size, seed, input_size=4, hidden_size=3, steps=5):
    """The top decoder layer made by bridge() from a real bidirectional nn.GRU's h_n must be [forward state after the
    last step | backward state after step 0], both read from the GRU's output (the top layer's states)."""
    generator = torch.Generator().manual_seed(seed)
    with seeded(seed):
        gru = nn.GRU(input_size, hidden_size, num_layers, bidirectional=True).double()
    with torch.no_grad():
        for parameter in gru.parameters():
            parameter.copy_(torch.rand(parameter.shape, generator=generator, dtype=torch.float64) - 0.5)
        x = torch.randn(steps, batch_size, input_size, generator=generator, dtype=torch.float64)
        output, h_n = gru(x)
    H = hidden_size
    expected_top = torch.cat([output[-1, :, :H], output[0, :, H:]], dim=-1)
    what = (f"bridge(h_n of an nn.GRU with {num_layers} layers, bidirectional, batch {batch_size}, hidden "
            f"{hidden_size}, float64), its top layer [-1]")
    with while_checking(what):
        result = bridge(h_n.clone(), num_layers)
    check_type(result, torch.Tensor, what)
    check_shape(result.shape, (num_layers, batch_size, 2 * H), f"{what}: the whole result's shape")
    check_tensor(result[-1], expected_top, f"{what}, against [output[-1, :, :H] | output[0, :, H:]]")


@exercise("ex7_1_visible", "bridge")
def exercise_7_1(bridge):
    """Labelled states (2 layers, 3 samples, hidden size 2) and a real 2-layer bidirectional nn.GRU."""
    judge_bridge(bridge, num_layers=2, batch_size=3, hidden_size=2)
    judge_bridge_on_a_gru(bridge, num_layers=2, batch_size=3, seed=71)


# --- Exercise 7.2: one decoder step ------------------------------------------------------------------------------

class DecoderParts(nn.Module):
    """The parts of a GRU decoder, as the lesson's Decoder holds them: embedding (vocab -> E), gru (E -> hidden,
    num_layers, batch first), out (hidden -> vocab)."""

    def __init__(self, vocab_size, embedding_size, hidden_size, num_layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.gru = nn.GRU(embedding_size, hidden_size, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)


def fixed_decoder(vocab_size, embedding_size, hidden_size, num_layers, offset, dtype=torch.float64):
    """A DecoderParts whose every parameter is fixed by fixed_values (the same numbers on every machine)."""
    with seeded(0):  # (every parameter is overwritten below)
        decoder = DecoderParts(vocab_size, embedding_size, hidden_size, num_layers).to(dtype)
    with torch.no_grad():
        for index, (_, parameter) in enumerate(decoder.named_parameters()):
            parameter.copy_(fixed_values(parameter.numel(), offset + index, scale=0.6, dtype=dtype)
                            .view(parameter.shape))
    return decoder


def judge_decode_step(decode_step, decoder, token, h, expected_logits, expected_h, what, more_variants=None):
    """Call decode_step(decoder, token, h) and compare with the expected (logits, new_h), naming the known mistakes:
    log_softmax, softmax or ReLU applied to the logits, the bottom layer's state read, the old state returned, the
    batch dimension squeezed away; `more_variants`: {mistake: (its logits, its new_h)} (from the hidden checks)."""
    reference = copy.deepcopy(decoder)  # the answer may change the decoder it was given; judge with an untouched copy
    untouched_h, untouched_token = h.clone(), token.clone()
    with while_checking(what):
        result = decode_step(decoder, token, h)
    check_type(result, tuple, what)
    check(len(result) == 2, f"{what}: expected a pair (logits, new_h), got {len(result)} items")
    logits, new_h = result
    check(torch.equal(h, untouched_h), f"{what}: h was changed in place; return a new state instead")
    check(torch.equal(token, untouched_token), f"{what}: token was changed in place")
    check_type(logits, torch.Tensor, f"{what}: logits")
    N, V = expected_logits.shape
    if tuple(logits.shape) == (V,) and N == 1:
        raise CheckFailed(f"{what}: logits have shape {tuple(logits.shape)}, expected (1, {V}): squeeze() also "
                          "removed the batch dimension of a batch of one; take the step with output[:, 0]")
    if tuple(logits.shape) == (N, 1, V):
        raise CheckFailed(f"{what}: logits have shape (N, 1, V) = {tuple(logits.shape)}, expected (N, V): take the "
                          "one step out of the GRU's output (output[:, 0])")
    with torch.no_grad():
        variants = {
            "log_softmax of the logits (log-probabilities): return the raw scores of decoder.out":
                expected_logits.log_softmax(dim=-1),
            "softmax of the logits (probabilities): return the raw scores of decoder.out":
                expected_logits.softmax(dim=-1),
            "ReLU of the logits: decoder.out is a plain linear layer, and its raw scores can be negative":
                expected_logits.relu(),
        }
        if expected_h.shape[0] > 1:
            variants["the output layer applied to the bottom layer's new state (new_h[0]); it reads the top "
                     "layer's (new_h[-1], which is also output[:, 0])"] = reference.out(expected_h[0])
    more_variants = more_variants or {}
    variants.update({name: pair[0] for name, pair in more_variants.items()})
    check_tensor_or_variant(logits, expected_logits, f"{what}: logits", variants)
    check_type(new_h, torch.Tensor, f"{what}: new_h")
    check_tensor_or_variant(new_h, expected_h, f"{what}: new_h",
                            {"the state h that was passed in: return the GRU's new state": untouched_h,
                             **{name: pair[1] for name, pair in more_variants.items()}})


# One fixed example: decoder fixed_decoder(7, 3, 4, 2, offset=0.3) in float64, tokens [3, 0, 5], and the state below.
# Its expected logits and new state, written out (from PyTorch's nn.GRU equations):
STEP_TOKEN = [3, 0, 5]
STEP_EXPECTED_LOGITS = [
    [0.16495467091438443, -0.22798528976942534, 0.08138118904722541, -0.7157439791449287,
     -1.6890157914747457, -1.0423061969625218, -0.06400272440250898],
    [0.24071772114055923, -0.10829008781676563, 0.21374355519016647, -0.6052881632147131,
     -1.6293181392891434, -1.048960034912859, -0.13527003661854575],
    [0.3434519042298195, 0.11896121782910374, 0.5061528017153861, -0.3240997386923633,
     -1.432798364624059, -0.9884408616393344, -0.2265593765595315],
]
STEP_EXPECTED_H = [  # (2, 3, 4), as 6 rows of 4
    [-0.24169693220526242, 0.5552131943478921, -0.05062395231571834, -0.6315617970210772],
    [-0.525563865978761, 0.13433983069660949, -0.3588956212018669, -0.1441206526417301],
    [-0.641623142685659, 0.06617263247204046, -0.3500089329513504, 0.28101121290664627],
    [0.6232692616130813, -0.6098238702496562, -0.7798562198400725, 0.47545372077602654],
    [0.5897476599815002, -0.6682811789202452, -0.6163329798556094, 0.5274394158613022],
    [0.3847640761517703, -0.6732614804697354, -0.31107001639569726, 0.6838961807093049],
]


def step_state():
    """The state h (2 layers, 3 samples, hidden 4) of the fixed example."""
    return fixed_values(24, 0.1, scale=0.8).view(2, 3, 4)


@exercise("ex7_2_visible", "decode_step")
def exercise_7_2(decode_step):
    """A 2-layer decoder with fixed weights (float64), three samples: the logits and the new state, written out."""
    decoder = fixed_decoder(7, 3, 4, 2, offset=0.3)
    token = torch.tensor(STEP_TOKEN)
    h = step_state()
    what = (f"decode_step(decoder (vocab 7, E 3, hidden 4, 2 layers, fixed weights, float64), token {STEP_TOKEN}, "
            "h (2, 3, 4))")
    judge_decode_step(decode_step, decoder, token, h, torch.tensor(STEP_EXPECTED_LOGITS, dtype=torch.float64),
                      torch.tensor(STEP_EXPECTED_H, dtype=torch.float64).view(2, 3, 4), what)


# --- Exercise 7.3: masked attention ------------------------------------------------------------------------------

def judge_attend(attend, query, encoder_outputs, lengths, expected_context, expected_weights, what, variants=None):
    """Call attend(query, encoder_outputs, lengths) and compare with the expected (context, weights). Before the
    values, properties that name the usual mistakes: padding that gets weight, the last real position masked, rows
    that do not sum to 1. `variants`: {known mistake: the weights it gives} (the hidden checks compute them)."""
    untouched = query.clone(), encoder_outputs.clone(), lengths.clone()
    with while_checking(what):
        result = attend(query, encoder_outputs, lengths)
    check_type(result, tuple, what)
    check(len(result) == 2, f"{what}: expected a pair (context, weights), got {len(result)} items")
    context, weights = result
    for name, before, now in zip(("query", "encoder_outputs", "lengths"), untouched,
                                 (query, encoder_outputs, lengths), strict=True):
        check(torch.equal(before, now), f"{what}: {name} was changed in place; leave the inputs as they were")
    N, S = expected_weights.shape
    check_type(weights, torch.Tensor, f"{what}: weights")
    check_shape(weights.shape, (N, S), f"{what}: weights.shape (N, S)")
    check(weights.dtype == expected_weights.dtype,
          f"{what}: weights: expected dtype {expected_weights.dtype} (the encoder outputs'), got {weights.dtype}")
    got = weights.detach().cpu()
    check(not torch.isnan(got).any(), f"{what}: weights contain NaN (a row whose every position is masked gives "
                                      "softmax NaN: mask only s >= lengths[n], and every length is at least 1)")
    if variants:
        named = [name for name, value in variants.items()
                 if torch.allclose(got, value, rtol=1e-6, atol=1e-9) and not torch.allclose(value, expected_weights)]
        if named:
            raise CheckFailed(f"{what}: weights are those of {named[0]}")
    for n, length in enumerate(lengths.tolist()):
        if length < S and got[n, length:].abs().max() > 0:
            position = length + int(got[n, length:].abs().argmax())
            first_only = length + 1 == S or got[n, length + 1:].abs().max() == 0
            hint = ("only position lengths[n] itself, the first padded one: off by one, mask s >= lengths[n] (the "
                    "lengths count <eos>, the last real position is lengths[n] - 1)" if first_only and length + 1 < S
                    else "was the mask applied? Filling the padded scores with 0 is not enough, since exp(0) = 1: "
                         "use -inf (or a very negative number) before the softmax")
            raise CheckFailed(f"{what}: padded position {position} of sample {n} (length {length}) has weight "
                              f"{float(got[n, position]):.4g}; padded positions must get weight exactly 0 ({hint})")
        if expected_weights[n, length - 1] > 1e-6 and got[n, length - 1] == 0:
            raise CheckFailed(f"{what}: sample {n}'s last real position, lengths[n] - 1 = {length - 1} (its <eos>), "
                              "has weight 0: off by one, the mask must cover positions s >= lengths[n] only")
    sums = got.sum(dim=-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
        n = int((sums - 1).abs().argmax())
        hint = (" (the columns sum to 1: the softmax ran over the batch dimension; it must run over the positions)"
                if N > 1 and torch.allclose(got.sum(dim=0), torch.ones(S, dtype=got.dtype), atol=1e-6) else
                " (a softmax over the positions of each sample, after masking, sums to 1; zeroing weights after the "
                "softmax leaves the rest unnormalised)")
        raise CheckFailed(f"{what}: weights of sample {n} sum to {float(sums[n]):.6g}, not 1{hint}")
    check_tensor(weights, expected_weights, f"{what}: weights")
    check_type(context, torch.Tensor, f"{what}: context")
    check_shape(context.shape, tuple(expected_context.shape), f"{what}: context.shape (N, D)")
    check_tensor(context, expected_context,
                 f"{what}: context (the weights are right; context[n] = sum over s of weights[n, s] * "
                 "encoder_outputs[n, s])")


def attention_example():
    """The fixed example: query (3, 4), encoder outputs (3, 5, 4) whose padded positions hold large numbers (as a
    real padded batch may hold anything there), lengths [5, 2, 3]."""
    query = fixed_values(12, 0.2, scale=1.0).view(3, 4)
    encoder_outputs = fixed_values(60, 1.1, scale=1.0).view(3, 5, 4)
    lengths = torch.tensor([5, 2, 3])
    for n, length in enumerate(lengths.tolist()):
        encoder_outputs[n, length:] = 5.0 + fixed_values((5 - length) * 4, 2.0 + n, scale=1.0).view(-1, 4)
    return query, encoder_outputs, lengths


# Its expected weights and context, written out:
ATTENTION_EXPECTED_WEIGHTS = [
    [0.5829706401915862, 0.23944590132774948, 0.09566351004438771, 0.047243649003182814, 0.034676299433093846],
    [0.4889936931067036, 0.5110063068932965, 0.0, 0.0, 0.0],
    [0.12984105135660284, 0.3166786749362302, 0.553480273707167, 0.0, 0.0],
]
ATTENTION_EXPECTED_CONTEXT = [
    [0.8610392849328826, 0.014058888657140403, -0.864662105731655, 0.20875501484185677],
    [-0.6980520172859476, -0.573404119081245, 0.8458119447859345, 0.3554476944911276],
    [0.6215811037982526, 0.6119012470874088, -0.7792613172778105, -0.4110941863899603],
]
# What dividing the scores by sqrt(D) would give (a known mistake):
ATTENTION_SCALED_WEIGHTS = [
    [0.38841926149469, 0.24893222466008152, 0.15734413980099426, 0.11057301042751508, 0.09473136361671906],
    [0.4944961797464321, 0.505503820253568, 0.0, 0.0, 0.0],
    [0.2161524567411732, 0.3375697902084541, 0.44627775305037265, 0.0, 0.0],
]


@exercise("ex7_3_visible", "attend")
def exercise_7_3(attend):
    """One fixed example (3 samples of lengths 5, 2 and 3, padded to 5, float64), the values written out."""
    query, encoder_outputs, lengths = attention_example()
    what = ("attend(query (3, 4), encoder_outputs (3, 5, 4), lengths [5, 2, 3]) (float64; the padded positions of "
            "encoder_outputs hold large numbers)")
    judge_attend(attend, query, encoder_outputs, lengths,
                 torch.tensor(ATTENTION_EXPECTED_CONTEXT, dtype=torch.float64),
                 torch.tensor(ATTENTION_EXPECTED_WEIGHTS, dtype=torch.float64), what,
                 {f"scores divided by sqrt(D) = {math.sqrt(4):g} (scaled dot-product attention); this exercise asks "
                  "for the plain dot product query[n] . encoder_outputs[n, s]":
                  torch.tensor(ATTENTION_SCALED_WEIGHTS, dtype=torch.float64)})


# --- Exercise 7.4: greedy decoding -------------------------------------------------------------------------------

class ScriptedDecoder(nn.Module):
    """A stand-in decoder for Exercise 7.4: called as decoder(token, state), it returns (logits (N, V), new state).
    Sample n's k-th choice (the highest logit) is scripts[n][k], provided the decoder was fed sos_id first and then
    each choice it made; fed another token, or an old state, it chooses a wrong token and notes what happened. The
    state is a tensor (2, N, 3) (like a GRU's h) or, with tuple_state, a tuple of tensors (like an attention
    decoder's); the number of steps taken is kept in it."""

    def __init__(self, scripts, vocab_size, sos_id, eos_id, tuple_state=False):
        super().__init__()
        self.scripts = [list(script) for script in scripts]
        self.vocab_size, self.sos_id, self.eos_id, self.tuple_state = vocab_size, sos_id, eos_id, tuple_state
        self.calls, self.notes = 0, []  # notes: (kind, sample, message), kind "first", "state" or "fed"

    def initial_state(self):
        N = len(self.scripts)
        h = fixed_values(2 * N * 3, 0.4).view(2, N, 3)
        h[0, :, 0] = 0  # the step counter
        return (h, fixed_values(N * 4, 0.9).view(N, 4)) if self.tuple_state else h

    def _wrong_token(self, right):
        for shift in range(1, self.vocab_size):
            token = (right + shift) % self.vocab_size
            if token not in (self.eos_id, self.sos_id):
                return token
        return right

    def forward(self, token, state):
        self.calls += 1
        N, V = len(self.scripts), self.vocab_size
        h = state[0] if self.tuple_state and isinstance(state, (tuple, list)) else state
        if not _is_tensor(token) or token.dtype != torch.int64 or tuple(token.shape) != (N,):
            raise ValueError(f"the decoder wants token, an int64 tensor of shape (N,) = ({N},), one token per "
                             f"sample; got {type(token).__name__} {getattr(token, 'dtype', '')} "
                             f"{tuple(getattr(token, 'shape', ()))}")
        if not _is_tensor(h) or tuple(h.shape) != (2, N, 3):
            raise ValueError("the decoder wants the state it returned at the step before (the initial state at the "
                             "first step)")
        steps, fed = h[0, :, 0].round().long().tolist(), token.tolist()
        logits = fixed_values(N * V, 0.05 * self.calls, scale=1.0).view(N, V)
        for n in range(N):
            script, step = self.scripts[n], steps[n]
            right = script[min(step, len(script) - 1)]
            if step != self.calls - 1:
                self.notes.append(("state", n, f"call {self.calls} of the decoder got the state of step {step}: "
                                               "pass each call the state that the call before returned"))
                right = self._wrong_token(right)
            wanted = self.sos_id if step == 0 else script[min(step, len(script)) - 1]
            if step != self.calls - 1 or self.eos_id in script[:step]:
                pass  # an old state (noted above), or a finished sample, which may be fed anything
            elif fed[n] != wanted:
                if step == 0:
                    self.notes.append(("first", n, f"the first call fed sample {n} token {fed[n]}, not sos_id = "
                                                   f"{self.sos_id}: every sample starts from sos_id"))
                else:
                    self.notes.append(("fed", n, f"call {self.calls} fed sample {n} token {fed[n]}, but the token "
                                                 f"it chose at the step before was {wanted}: feed back each sample's "
                                                 "own choice"))
                right = self._wrong_token(right)
            logits[n, right] = 3.0 + 0.1 * n
        new_h = h.clone()
        new_h[0, :, 0] += 1
        new_h[1] = torch.tanh(new_h[1] + 0.5)
        return logits, ((new_h, state[1]) if self.tuple_state else new_h)


def cut(script, stops, limit):
    """The tokens of `script` before the first one in `stops` (left out), at most `limit` of them."""
    end = next((index for index, token in enumerate(script) if token in stops), len(script))
    return list(script[:min(end, limit)])


def expected_tokens(script, eos_id, max_length):
    """What greedy decoding returns for a sample whose choices follow `script`."""
    return cut(script, {eos_id}, max_length)


LESSON_EOS, LESSON_PAD = 2, 0  # the notebook's EOS and PAD constants


def whole_batch_mistakes(scripts, eos_id, max_length):
    """{known mistake: [what it may return for the batch, ...]}: stopping at a token that is not the decoder's end
    token, stopping every sample when the first one ends."""
    mistakes = {}
    for token, name in ((LESSON_EOS, "the lesson's EOS"), (LESSON_PAD, "the lesson's <pad>")):
        if token != eos_id:
            mistakes[f"stopping at token {token}, {name}, where this decoder's end token is eos_id = {eos_id}: "
                     "compare with eos_id, the end token of the decoder's own vocabulary"] = [
                [cut(script, {token}, max_length) for script in scripts]]
    ends = [script.index(eos_id) for script in scripts if eos_id in script[:max_length]]
    if ends:
        first = min(ends)
        mistakes[f"stopping every sample when the first one ends (at step {first + 1}): each sample stops at its "
                 "own end token while the others go on"] = [[cut(script, {eos_id}, first + extra) for script in scripts]
                                                            for extra in (0, 1)]
    return mistakes


def diagnose_sample(tokens, script, eos_id, max_length, n, what):
    """Name the mistake when sample n's tokens differ from what greedy decoding gives."""
    expected = expected_tokens(script, eos_id, max_length)
    ended = len(expected) < max_length or eos_id in script[:max_length]
    if eos_id in tokens:
        raise CheckFailed(f"{what}: sample {n} = {tokens} contains the end token eos_id = {eos_id}; expected "
                          f"{expected}: a sample stops at its own end token, which is left out")
    if ended and len(tokens) > len(expected) and tokens[:len(expected)] == expected:
        raise CheckFailed(f"{what}: sample {n} = {tokens} goes on after the decoder chose eos_id = {eos_id} for it "
                          f"(after {len(expected)} tokens): each sample stops at its own end token, even while others "
                          "go on")
    if not ended and len(tokens) == max_length + 1 and tokens[:max_length] == expected:
        raise CheckFailed(f"{what}: sample {n} has max_length + 1 = {max_length + 1} tokens: max_length is off by one "
                          "(a sample that never ends gets max_length tokens: at most max_length calls of the decoder)")
    if not ended and len(tokens) == max_length - 1 and expected[:max_length - 1] == tokens:
        raise CheckFailed(f"{what}: sample {n} has max_length - 1 = {max_length - 1} tokens and never chose eos_id: "
                          "max_length is off by one (a sample that never ends gets max_length tokens)")
    if len(tokens) < len(expected) and expected[:len(tokens)] == tokens:
        raise CheckFailed(f"{what}: sample {n} = {tokens} stopped after {len(tokens)} tokens, but there the decoder "
                          f"chose token {expected[len(tokens)]}, not eos_id = {eos_id}; expected {expected}")
    raise CheckFailed(f"{what}: sample {n}: expected {expected}, got {tokens}")


def judge_greedy_decode(greedy_decode, scripts, vocab_size, sos_id, eos_id, max_length, tuple_state=False):
    """Run greedy_decode on a ScriptedDecoder (its calls counted and run here, whatever the answer does) and compare
    with the scripts, naming the mistake."""
    scripts = [list(script) for script in scripts]
    N = len(scripts)
    decoder = ScriptedDecoder(scripts, vocab_size, sos_id, eos_id, tuple_state)
    state = decoder.initial_state()
    what = (f"greedy_decode(decoder, state, batch_size={N}, sos_id={sos_id}, eos_id={eos_id}, "
            f"max_length={max_length})")
    with while_checking(what):
        result = greedy_decode(CountCalls(decoder), state, N, sos_id, eos_id, max_length)
    check_type(result, list, what)
    check(len(result) == N, f"{what}: expected a list of {N} lists (one per sample), got {len(result)} items")
    rows = []
    for n, tokens in enumerate(result):
        check_type(tokens, list, f"{what}: item {n}")
        for t, token in enumerate(tokens):
            check(type(token) is int, f"{what}: sample {n}, token {t} is {type(token).__name__} {token!r:.60}; "
                                      "return Python ints (.tolist() or .item())")
        rows.append(list(tokens))
    expected = [expected_tokens(script, eos_id, max_length) for script in scripts]
    if rows == expected:
        return
    for kind in ("first", "state"):
        for note_kind, _, message in decoder.notes:
            if note_kind == kind:
                raise CheckFailed(f"{what}: {message}")
    for name, candidates in whole_batch_mistakes(scripts, eos_id, max_length).items():
        if rows in candidates:
            raise CheckFailed(f"{what}: returned {rows}, expected {expected}: this is {name}")
    for n, tokens in enumerate(rows):
        if tokens != expected[n]:
            fed = [message for kind, sample, message in decoder.notes if kind == "fed" and sample == n]
            try:
                diagnose_sample(tokens, scripts[n], eos_id, max_length, n, what)
            except CheckFailed as failure:
                if fed and str(failure).startswith(f"{what}: sample {n}: expected"):
                    raise CheckFailed(f"{what}: {fed[0]}") from None
                raise


# The visible example: 4 samples, vocabulary of 8 tokens, start token 6, end token 5 (the lesson's EOS, 2, and its
# <pad>, 0, are ordinary tokens here). Sample 0 ends after 3 tokens, sample 1 at once, sample 2 after 5 and sample 3
# never (max_length 6).
GREEDY_SCRIPTS = [[3, 2, 7, 5, 4, 4, 3, 1, 0],
                  [5, 3, 3, 4, 1, 7, 2, 3, 3],
                  [4, 0, 1, 2, 3, 5, 7, 7, 2],
                  [7, 3, 2, 2, 0, 4, 1, 3, 4]]


@exercise("ex7_4_visible", "greedy_decode")
def exercise_7_4(greedy_decode):
    """A scripted decoder (its choices known in advance) with 4 samples that end at different steps, one never."""
    judge_greedy_decode(greedy_decode, GREEDY_SCRIPTS, vocab_size=8, sos_id=6, eos_id=5, max_length=6)
