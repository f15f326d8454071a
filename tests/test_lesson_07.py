"""Lesson 07's checks grade fairly: plausible seq2seq mistakes (the `h_n.view(num_layers, N, 2H)` bridge, `h_n[-1]`,
the wrong layer's state, a softmax or ReLU on the logits, attention that lets padding in or is off by one, greedy
decoding that stops at the wrong token, does not stop a finished sequence, stops the whole batch or is off by one in
max_length) lose points, each with a message that names it; correct answers written differently score full marks;
no exercise's checks depend on another exercise's answer; and the shipped model file is the one DATA.md describes.

How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests)."""

import hashlib
import re

import pytest
import torch

from course.lessons import SOLUTIONS, is_answer_cell, notebook_path, read
from tests.check_cells import lesson_run, run_check_cells
from tests.harness import LessonTests

LESSON = "07-seq2seq"
LESSON_DIR = SOLUTIONS / LESSON
EXERCISES = {  # answer cell -> (visible checks, hidden checks)
    "ex7_1_bridge": ("ex7_1_visible", "ex7_1_hidden"),
    "ex7_2_decode_step": ("ex7_2_visible", "ex7_2_hidden"),
    "ex7_3_attend": ("ex7_3_visible", "ex7_3_hidden"),
    "ex7_4_greedy_decode": ("ex7_4_visible", "ex7_4_hidden"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 7.1: bridge

BRIDGE_CORRECT = {
    "even and odd rows": '''
def bridge(h_n, num_layers):
    return torch.cat([h_n[0::2], h_n[1::2]], dim=-1)
''',
    "loop over layers": '''
def bridge(h_n, num_layers):
    return torch.stack([torch.cat([h_n[2 * layer], h_n[2 * layer + 1]], dim=-1) for layer in range(num_layers)])
''',
    "view, transpose, reshape": '''
def bridge(h_n, num_layers):
    n, h = h_n.shape[1], h_n.shape[2]
    return h_n.view(num_layers, 2, n, h).transpose(1, 2).reshape(num_layers, n, 2 * h)
''',
    "unflatten, movedim, flatten": '''
def bridge(h_n, num_layers):
    return h_n.unflatten(0, (num_layers, 2)).movedim(1, 2).flatten(2)
''',
}
BRIDGE_MISTAKES = {  # name: (answer, what the message must say)
    "view(num_layers, N, 2H)": ('''
def bridge(h_n, num_layers):
    return h_n.view(num_layers, h_n.shape[1], 2 * h_n.shape[2])
''', "h_n.view(num_layers, N, 2H)"),
    "right view, then view without moving the direction axis": ('''
def bridge(h_n, num_layers):
    n, h = h_n.shape[1], h_n.shape[2]
    return h_n.view(num_layers, 2, n, h).reshape(num_layers, n, 2 * h)
''', "mixes the samples"),
    "h_n[-1]": ('''
def bridge(h_n, num_layers):
    return h_n[-1]
''', "h_n[-1]"),
    "top layer for every layer": ('''
def bridge(h_n, num_layers):
    return torch.cat([h_n[-2], h_n[-1]], dim=-1).unsqueeze(0).repeat(num_layers, 1, 1)
''', "decoder layer 0, sample 0, first half (forward) should be the state of layer 0 forward, sample 0, but it holds "
     "the state of layer 1 forward, sample 0"),
    "direction-major view": ('''
def bridge(h_n, num_layers):
    by_direction = h_n.view(2, num_layers, h_n.shape[1], h_n.shape[2])
    return torch.cat([by_direction[0], by_direction[1]], dim=-1)
''', "holds the state of layer 1 forward"),
    "directions swapped": ('''
def bridge(h_n, num_layers):
    return torch.cat([h_n[1::2], h_n[0::2]], dim=-1)
''', "should be the state of layer 0 forward, sample 0, but it holds the state of layer 0 backward, sample 0"),
    "directions summed": ('''
def bridge(h_n, num_layers):
    return h_n[0::2] + h_n[1::2]
''', "not added"),
    "float32 result": ('''
def bridge(h_n, num_layers):
    return torch.cat([h_n[0::2], h_n[1::2]], dim=-1).float()
''', "expected dtype torch.float64 (h_n's)"),
    "h_n changed in place": ('''
def bridge(h_n, num_layers):
    result = torch.cat([h_n[0::2], h_n[1::2]], dim=-1)
    h_n.zero_()
    return result
''', "h_n was changed in place"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 7.2: decode_step

DECODE_STEP_CORRECT = {
    "logits from new_h[-1]": '''
def decode_step(decoder, token, h):
    _, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(new_h[-1]), new_h
''',
    "view and squeeze(1)": '''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token.view(-1, 1)), h.clone())
    return decoder.out(output).squeeze(1), new_h
''',
    "gru called on a time-major sequence": '''
def decode_step(decoder, token, h):
    embedded = decoder.embedding(token).unsqueeze(1)
    output, new_h = decoder.gru(embedded, h)
    return output[:, -1] @ decoder.out.weight.T + decoder.out.bias, new_h
''',
}
DECODE_STEP_MISTAKES = {
    "bottom layer's state": ('''
def decode_step(decoder, token, h):
    _, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(new_h[0]), new_h
''', "bottom layer's new state"),
    "squeeze() drops a batch of one": ('''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(output).squeeze(), new_h
''', "squeeze() also removed the batch dimension"),
    "probabilities": ('''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(output[:, 0]).softmax(dim=-1), new_h
''', "softmax of the logits"),
    "log_softmax": ('''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return F.log_softmax(decoder.out(output[:, 0]), dim=-1), new_h
''', "log_softmax of the logits"),
    "ReLU": ('''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return torch.relu(decoder.out(output[:, 0])), new_h
''', "ReLU of the logits"),
    "old h returned": ('''
def decode_step(decoder, token, h):
    output, _ = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(output[:, 0]), h
''', "the state h that was passed in"),
    "h not passed to the GRU": ('''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]))
    return decoder.out(output[:, 0]), new_h
''', "h was not passed to decoder.gru"),
    "no sequence dimension": ('''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token), h)
    return decoder.out(output), new_h
''', "while checking decode_step"),
    "(N, 1, V) logits": ('''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(output), new_h
''', "take the one step out"),
    "h changed in place": ('''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    h.copy_(new_h)
    return decoder.out(output[:, 0]), new_h
''', "h was changed in place"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 7.3: attend

ATTEND_CORRECT = {
    "einsum and where": '''
def attend(query, encoder_outputs, lengths):
    scores = torch.einsum("nd,nsd->ns", query, encoder_outputs)
    keep = torch.arange(encoder_outputs.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    weights = torch.softmax(torch.where(keep, scores, torch.full_like(scores, -1e9)), dim=1)
    return torch.einsum("ns,nsd->nd", weights, encoder_outputs), weights
''',
    "one sample at a time": '''
def attend(query, encoder_outputs, lengths):
    contexts, rows = [], []
    for n in range(encoder_outputs.shape[0]):
        real = encoder_outputs[n, :int(lengths[n])]
        weights = torch.softmax(real @ query[n], dim=0)
        contexts.append(weights @ real)
        rows.append(torch.cat([weights, weights.new_zeros(encoder_outputs.shape[1] - len(weights))]))
    return torch.stack(contexts), torch.stack(rows)
''',
    "exp, mask, normalise by hand": '''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs * query[:, None, :]).sum(-1)
    keep = (torch.arange(encoder_outputs.shape[1])[None] < lengths[:, None]).to(scores.dtype)
    top = scores.masked_fill(keep == 0, float("-inf")).max(dim=-1, keepdim=True).values
    exp = torch.exp(scores - top) * keep
    weights = exp / exp.sum(dim=-1, keepdim=True)
    return torch.bmm(weights.unsqueeze(1), encoder_outputs).squeeze(1), weights
''',
    "PyTorch's scaled_dot_product_attention with scale 1 for the context": '''
def attend(query, encoder_outputs, lengths):
    keep = torch.arange(encoder_outputs.shape[1])[None] < lengths[:, None]
    weights = (encoder_outputs @ query[..., None])[..., 0].masked_fill(~keep, float("-inf")).softmax(-1)
    context = F.scaled_dot_product_attention(query[:, None], encoder_outputs, encoder_outputs,
                                             attn_mask=keep[:, None], scale=1.0)[:, 0]
    return context, weights
''',
}
ATTEND_MISTAKES = {
    "no mask": ('''
def attend(query, encoder_outputs, lengths):
    weights = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1).softmax(-1)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "padded positions take part in the softmax"),
    "padding filled with 0": ('''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1)
    padded = torch.arange(encoder_outputs.shape[1])[None] >= lengths[:, None]
    weights = scores.masked_fill(padded, 0.0).softmax(-1)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "filled with 0 instead of -inf"),
    "scaled by sqrt(D)": ('''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1) / query.shape[-1] ** 0.5
    padded = torch.arange(encoder_outputs.shape[1])[None] >= lengths[:, None]
    weights = scores.masked_fill(padded, float("-inf")).softmax(-1)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "divided by sqrt(D)"),
    "mask after the softmax": ('''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1)
    padded = torch.arange(encoder_outputs.shape[1])[None] >= lengths[:, None]
    weights = scores.softmax(-1).masked_fill(padded, 0.0)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "after the softmax"),
    "mask hides the <eos> too": ('''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1)
    padded = torch.arange(encoder_outputs.shape[1])[None] >= lengths[:, None] - 1
    weights = scores.masked_fill(padded, float("-inf")).softmax(-1).nan_to_num(0.0)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "off by one"),
    "mask lets the first padded position through": ('''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1)
    padded = torch.arange(encoder_outputs.shape[1])[None] > lengths[:, None]
    weights = scores.masked_fill(padded, float("-inf")).softmax(-1)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "off by one"),
    "softmax over the batch": ('''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1)
    padded = torch.arange(encoder_outputs.shape[1])[None] >= lengths[:, None]
    weights = scores.masked_fill(padded, float("-inf")).softmax(0).nan_to_num(0.0)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "batch"),
    "mask as long as the longest sample": ('''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1)
    padded = torch.arange(int(lengths.max()))[None] >= lengths[:, None]
    weights = scores.masked_fill(padded, float("-inf")).softmax(-1)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "while checking attend"),
    "context from the mean of the outputs": ('''
def attend(query, encoder_outputs, lengths):
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1)
    padded = torch.arange(encoder_outputs.shape[1])[None] >= lengths[:, None]
    weights = scores.masked_fill(padded, float("-inf")).softmax(-1)
    return encoder_outputs.mean(dim=1), weights
''', "context[n] = sum over s"),
    "padding zeroed in place": ('''
def attend(query, encoder_outputs, lengths):
    padded = torch.arange(encoder_outputs.shape[1])[None] >= lengths[:, None]
    encoder_outputs.masked_fill_(padded[..., None], 0.0)
    weights = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1).masked_fill(padded, float("-inf")).softmax(-1)
    return (weights.unsqueeze(1) @ encoder_outputs).squeeze(1), weights
''', "encoder_outputs was changed in place"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 7.4: greedy_decode. The mistakes share one batched loop with one change each.

GREEDY_CORRECT = {
    "every step for all, then cut at the first end token": '''
def greedy_decode(step, state, batch_size, sos_id, eos_id, max_length):
    token, steps = torch.full((batch_size,), sos_id), []
    for _ in range(max_length):
        logits, state = step(token, state)
        token = logits.argmax(-1)
        steps.append(token)
    rows = torch.stack(steps, dim=1).tolist()
    return [row[:row.index(eos_id)] if eos_id in row else row for row in rows]
''',
    "a mask of running samples, finished ones fed eos_id": '''
def greedy_decode(step, state, batch_size, sos_id, eos_id, max_length):
    token = torch.full((batch_size,), sos_id, dtype=torch.long)
    running = torch.ones(batch_size, dtype=torch.bool)
    rows = [[] for _ in range(batch_size)]
    steps = 0
    while running.any() and steps < max_length:
        logits, state = step(token, state)
        steps += 1
        chosen = logits.argmax(dim=1)
        running &= chosen != eos_id
        for n in running.nonzero().flatten().tolist():
            rows[n].append(int(chosen[n]))
        token = torch.where(running, chosen, torch.full_like(chosen, eos_id))
    return rows
''',
}
GREEDY_TEMPLATE = '''
def greedy_decode(step, state, batch_size, sos_id, eos_id, max_length):
    with torch.no_grad():
        first_state = state
        token = torch.full((batch_size,), START, dtype=torch.long)
        results = [[] for _ in range(batch_size)]
        finished = [False] * batch_size
        for _ in range(RANGE):
            logits, NEW_STATE = step(token, STATE_IN)
            chosen = logits.argmax(dim=-1)
            TOKEN_UPDATE
            for n, value in enumerate(chosen.tolist()):
                SKIP
                if value == END:
                    finished[n] = True
                    ON_EOS
                else:
                    results[n].append(value)
            STOP
    return results
'''
GREEDY_RIGHT = {"START": "sos_id", "RANGE": "max_length", "NEW_STATE": "state", "STATE_IN": "state",
                "TOKEN_UPDATE": "token = chosen", "SKIP": "if finished[n]: continue", "END": "eos_id",
                "ON_EOS": "pass", "STOP": "if all(finished): break"}


def greedy_with(**changes):
    source = GREEDY_TEMPLATE
    for key, value in {**GREEDY_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


GREEDY_MISTAKES = {
    "the notebook's EOS instead of eos_id": (greedy_with(END="EOS"), "the lesson's EOS"),
    "<pad> as the end token": (greedy_with(END="PAD"), "the lesson's <pad>"),
    "the notebook's SOS instead of sos_id": (greedy_with(START="SOS"), "not sos_id"),
    "never stops: <eos> and what follows kept": (greedy_with(SKIP="pass", ON_EOS="results[n].append(value)",
                                                             STOP="pass"), "contains the end token"),
    "<eos> dropped but a finished sample keeps growing": (greedy_with(SKIP="pass"), "goes on after"),
    "<eos> kept in the result": (greedy_with(ON_EOS="results[n].append(value)"), "contains the end token"),
    "the whole batch stops when one sample finishes": (greedy_with(STOP="if any(finished): break"),
                                                       "stopping every sample when the first one ends"),
    "max_length + 1 steps": (greedy_with(RANGE="max_length + 1"), "max_length + 1"),
    "max_length - 1 steps": (greedy_with(RANGE="max_length - 1"), "max_length - 1"),
    "state not carried from step to step": (greedy_with(NEW_STATE="_", STATE_IN="first_state"),
                                            "pass each call the state"),
    "<sos> fed at every step": (greedy_with(TOKEN_UPDATE="pass"), "feed back each sample's own choice"),
    "tensors instead of ints": ('''
def greedy_decode(step, state, batch_size, sos_id, eos_id, max_length):
    rows = [[] for _ in range(batch_size)]
    token = torch.full((batch_size,), sos_id)
    done = torch.zeros(batch_size, dtype=torch.bool)
    for _ in range(max_length):
        logits, state = step(token, state)
        token = logits.argmax(-1)
        done = done | (token == eos_id)
        for n in range(batch_size):
            if not done[n]:
                rows[n].append(token[n])
    return rows
''', "return Python ints"),
    "tokens fed as int32": ('''
def greedy_decode(step, state, batch_size, sos_id, eos_id, max_length):
    token, steps = torch.full((batch_size,), sos_id, dtype=torch.int32), []
    for _ in range(max_length):
        logits, state = step(token, state)
        token = logits.argmax(-1).int()
        steps.append(token)
    rows = torch.stack(steps, dim=1).tolist()
    return [row[:row.index(eos_id)] if eos_id in row else row for row in rows]
''', "int64 tensor of shape (N,)"),
}

# ----------------------------------------------------------------------------------------------------------------
# Objects that claim to equal anything.

HOSTILE = {
    "ex7_1_bridge": '''
class Anything:
    def __eq__(self, other):
        return True
    shape = property(lambda self: Anything())

def bridge(h_n, num_layers):
    return Anything()
''',
    "ex7_2_decode_step": '''
class Anything(tuple):
    def __eq__(self, other):
        return True

def decode_step(decoder, token, h):
    return Anything((Anything(), Anything()))
''',
    "ex7_3_attend": '''
class Anything(torch.Tensor):
    def __eq__(self, other):
        return True

def attend(query, encoder_outputs, lengths):
    return (torch.zeros(query.shape[0], query.shape[1], dtype=query.dtype).as_subclass(Anything),
            torch.zeros(encoder_outputs.shape[:2], dtype=query.dtype).as_subclass(Anything))
''',
    "ex7_4_greedy_decode": '''
class Anything(list):
    def __eq__(self, other):
        return True
    def __len__(self):
        return 10 ** 6

def greedy_decode(step, state, batch_size, sos_id, eos_id, max_length):
    return Anything()
''',
}

SUBMISSIONS = {
    "alternative": {"ex7_1_bridge": BRIDGE_CORRECT["loop over layers"],
                    "ex7_2_decode_step": DECODE_STEP_CORRECT["logits from new_h[-1]"],
                    "ex7_3_attend": ATTEND_CORRECT["einsum and where"],
                    "ex7_4_greedy_decode": GREEDY_CORRECT["every step for all, then cut at the first end token"]},
    "mistakes-a": {"ex7_1_bridge": BRIDGE_MISTAKES["view(num_layers, N, 2H)"][0],
                   "ex7_2_decode_step": DECODE_STEP_MISTAKES["log_softmax"][0],
                   "ex7_3_attend": ATTEND_MISTAKES["padding filled with 0"][0],
                   "ex7_4_greedy_decode": GREEDY_MISTAKES["the notebook's EOS instead of eos_id"][0]},
    "mistakes-b": {"ex7_1_bridge": BRIDGE_MISTAKES["h_n[-1]"][0],
                   "ex7_2_decode_step": DECODE_STEP_MISTAKES["squeeze() drops a batch of one"][0],
                   "ex7_3_attend": ATTEND_MISTAKES["mask lets the first padded position through"][0],
                   "ex7_4_greedy_decode": GREEDY_MISTAKES["max_length + 1 steps"][0]},
}
ALTERNATIVE = SUBMISSIONS["alternative"]
AUTOGRADED = {"mistakes-a": SUBMISSIONS["mistakes-a"]}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


HIDDEN = [hidden for _, hidden in EXERCISES.values()]


# ----------------------------------------------------------------------------------------------------------------
# Many more variants, in-process.

@pytest.mark.parametrize("student", ["mistakes-a", "mistakes-b"])
def test_plausible_mistakes_fail_the_hidden_checks(student):
    results = run_check_cells(LESSON, SUBMISSIONS[student])
    for grade_id in HIDDEN:
        assert results[grade_id] is not None, (student, grade_id)


def test_which_mistakes_the_visible_checks_already_show():
    # The visible examples (2 layers, batches of 3 or 4) show every mistake of the two students but squeeze(), which
    # only breaks a batch of one (hidden checks).
    for student in ["mistakes-a", "mistakes-b"]:
        results = run_check_cells(LESSON, SUBMISSIONS[student])
        for visible, _ in EXERCISES.values():
            passes_visible = (student, visible) == ("mistakes-b", "ex7_2_visible")
            assert (results[visible] is None) == passes_visible, (student, visible, results[visible])


def passes(answer_id, answer):
    """{check grade id: passed} for the exercise's visible and hidden check cells, run in that order (as in the
    notebook) after replacing the answer cell ``answer_id`` with ``answer``."""
    return {grade_id: error is None for grade_id, error in messages(answer_id, answer).items()}


def messages(answer_id, answer):
    """{check grade id: None or the error message} for the exercise's visible and hidden check cells."""
    return run_check_cells(LESSON, {answer_id: answer}, list(EXERCISES[answer_id]))


VARIANTS = [("ex7_1_bridge", BRIDGE_CORRECT, BRIDGE_MISTAKES), ("ex7_2_decode_step", DECODE_STEP_CORRECT,
            DECODE_STEP_MISTAKES), ("ex7_3_attend", ATTEND_CORRECT, ATTEND_MISTAKES),
            ("ex7_4_greedy_decode", GREEDY_CORRECT, GREEDY_MISTAKES)]
CORRECT_CASES = [(answer_id, name, source) for answer_id, correct, _ in VARIANTS for name, source in correct.items()]
MISTAKE_CASES = [(answer_id, name, source, told) for answer_id, _, mistakes in VARIANTS
                 for name, (source, told) in mistakes.items()]


@pytest.mark.parametrize("answer_id, name, source", CORRECT_CASES, ids=[f"{a}: {n}" for a, n, _ in CORRECT_CASES])
def test_correct_answers_written_differently_pass(answer_id, name, source):
    results = passes(answer_id, source)
    assert all(results.values()), f"{answer_id}: the correct variant '{name}' failed: {messages(answer_id, source)}"


@pytest.mark.parametrize("answer_id, name, source, told", MISTAKE_CASES,
                         ids=[f"{a}: {n}" for a, n, _, _ in MISTAKE_CASES])
def test_every_plausible_mistake_fails_the_hidden_checks_with_a_message_that_names_it(answer_id, name, source, told):
    results = messages(answer_id, source)
    hidden = results[EXERCISES[answer_id][1]]
    assert hidden is not None, f"{answer_id}: '{name}' passed the hidden checks"
    failed = [message for message in results.values() if message is not None]
    assert any(told in message for message in failed), f"{answer_id}: '{name}': the checks say {failed}, not {told!r}"


# The visible checks name these mistakes too (Exercise 7.2: a log_softmax or a ReLU on the logits; 7.4: an end token
# that is not the decoder's own, a sample not stopped at its own end token, max_length off by one).
VISIBLE_NAMES = [("ex7_2_decode_step", DECODE_STEP_MISTAKES, "log_softmax"),
                 ("ex7_2_decode_step", DECODE_STEP_MISTAKES, "ReLU"),
                 ("ex7_2_decode_step", DECODE_STEP_MISTAKES, "probabilities"),
                 ("ex7_2_decode_step", DECODE_STEP_MISTAKES, "bottom layer's state"),
                 ("ex7_3_attend", ATTEND_MISTAKES, "scaled by sqrt(D)"),
                 ("ex7_3_attend", ATTEND_MISTAKES, "mask hides the <eos> too"),
                 ("ex7_3_attend", ATTEND_MISTAKES, "mask lets the first padded position through"),
                 ("ex7_4_greedy_decode", GREEDY_MISTAKES, "the notebook's EOS instead of eos_id"),
                 ("ex7_4_greedy_decode", GREEDY_MISTAKES, "<eos> dropped but a finished sample keeps growing"),
                 ("ex7_4_greedy_decode", GREEDY_MISTAKES, "the whole batch stops when one sample finishes"),
                 ("ex7_4_greedy_decode", GREEDY_MISTAKES, "max_length + 1 steps"),
                 ("ex7_4_greedy_decode", GREEDY_MISTAKES, "max_length - 1 steps")]


@pytest.mark.parametrize("answer_id, mistakes, name", VISIBLE_NAMES, ids=[f"{a}: {n}" for a, _, n in VISIBLE_NAMES])
def test_the_visible_checks_name_the_mistake(answer_id, mistakes, name):
    source, told = mistakes[name]
    visible = messages(answer_id, source)[EXERCISES[answer_id][0]]
    assert visible is not None and told in visible, (name, visible)


def test_the_reference_solutions_pass_in_process():
    for answer_id in EXERCISES:
        assert all(passes(answer_id, lesson_run(LESSON).source[answer_id]).values()), answer_id


def test_no_exercise_is_judged_through_another_answer():
    # Every other answer broken: each exercise's correct answer still passes all of its checks.
    broken = {answer_id: f"def {name}(*args):\n    raise RuntimeError('broken')\n"
              for answer_id, name in [("ex7_1_bridge", "bridge"), ("ex7_2_decode_step", "decode_step"),
                                      ("ex7_3_attend", "attend"), ("ex7_4_greedy_decode", "greedy_decode")]}
    for answer_id in EXERCISES:
        answers = {**broken, answer_id: lesson_run(LESSON).source[answer_id]}
        results = run_check_cells(LESSON, answers, list(EXERCISES[answer_id]))
        assert not any(results.values()), (answer_id, results)


def test_greedy_checks_do_not_trust_a_decoder_the_answer_changed():
    # Rewrites the scripted decoder it was given so that every sample ends at once, then returns empty outputs.
    cheat = '''
def greedy_decode(step, state, batch_size, sos_id, eos_id, max_length):
    for script in step.module.scripts:
        script[0] = eos_id
    logits, state = step(torch.full((batch_size,), sos_id), state)
    return [[] for _ in range(batch_size)]
'''
    assert not any(passes("ex7_4_greedy_decode", cheat).values())


@pytest.mark.parametrize("answer_id", sorted(HOSTILE))
def test_objects_that_equal_anything_score_nothing(answer_id):
    assert not any(passes(answer_id, HOSTILE[answer_id]).values()), answer_id


def test_no_answer_outside_the_answer_cells():
    # The answers' names are defined only in their answer cells (later cells take them from yours_or_working), and no
    # teaching cell keeps a copy of an answer under another name (the old concat_directions, generate, loss_by_loop,
    # step_from_weights).
    cells = [cell for cell in read(notebook_path(LESSON)).cells if cell.cell_type == "code"]
    for cell in cells:
        if is_answer_cell(cell):
            continue
        for name in ("bridge", "decode_step", "attend", "greedy_decode", "concat_directions", "loss_by_loop",
                     "step_from_weights", "sequence_loss_by"):
            assert not re.search(rf"^\s*def {name}\(", cell.source, re.M), (name, cell.source[:80])
    visible_checks = (LESSON_DIR / "lesson_checks.py").read_text()
    for reference in ("def reference_", "def step_from_weights", "def gru_cell", "masked_fill", "permute("):
        assert reference not in visible_checks, reference


def test_shipped_model_file_matches_data_md_and_holds_both_models():
    path = LESSON_DIR / "date_model.pt"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in (LESSON_DIR / "DATA.md").read_text(), "DATA.md does not give date_model.pt's sha256"
    assert path.stat().st_size < 512 * 1024
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    for name in ("h_0 only", "attention"):
        history = shipped[name]["history"]
        assert history["best_step"] in [v["step"] for v in history["validations"]]
        assert all(value.dtype == torch.float16 for value in shipped[name]["encoder"].values())
