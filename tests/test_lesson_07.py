"""Lesson 07's checks grade fairly: plausible seq2seq mistakes (the `h_n.view(num_layers, N, 2H)` bridge, `h_n[-1]`,
the wrong layer's state, padding counted in the loss, greedy decoding that does not stop a finished sequence or
stops the whole batch) lose points, and correct answers written differently score full marks.

How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests)."""

import pytest

from tests.check_cells import lesson_run, run_check_cells
from tests.harness import LessonTests

LESSON = "07-seq2seq"
EXERCISES = {  # answer cell -> (visible checks, hidden checks)
    "ex7_1_bridge": ("ex7_1_visible", "ex7_1_hidden"),
    "ex7_2_decode_step": ("ex7_2_visible", "ex7_2_hidden"),
    "ex7_3_sequence_loss": ("ex7_3_visible", "ex7_3_hidden"),
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
BRIDGE_MISTAKES = {
    "view(num_layers, N, 2H)": '''
def bridge(h_n, num_layers):
    return h_n.view(num_layers, h_n.shape[1], 2 * h_n.shape[2])
''',
    "right view, then view without moving the direction axis": '''
def bridge(h_n, num_layers):
    n, h = h_n.shape[1], h_n.shape[2]
    return h_n.view(num_layers, 2, n, h).reshape(num_layers, n, 2 * h)
''',
    "h_n[-1]": '''
def bridge(h_n, num_layers):
    return h_n[-1]
''',
    "top layer for every layer": '''
def bridge(h_n, num_layers):
    return torch.cat([h_n[-2], h_n[-1]], dim=-1).unsqueeze(0).repeat(num_layers, 1, 1)
''',
    "direction-major view": '''
def bridge(h_n, num_layers):
    by_direction = h_n.view(2, num_layers, h_n.shape[1], h_n.shape[2])
    return torch.cat([by_direction[0], by_direction[1]], dim=-1)
''',
    "directions swapped": '''
def bridge(h_n, num_layers):
    return torch.cat([h_n[1::2], h_n[0::2]], dim=-1)
''',
    "directions summed": '''
def bridge(h_n, num_layers):
    return h_n[0::2] + h_n[1::2]
''',
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
}
DECODE_STEP_MISTAKES = {
    "bottom layer's state": '''
def decode_step(decoder, token, h):
    _, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(new_h[0]), new_h
''',
    "squeeze() drops a batch of one": '''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(output).squeeze(), new_h
''',
    "probabilities": '''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(output[:, 0]).softmax(dim=-1), new_h
''',
    "old h returned": '''
def decode_step(decoder, token, h):
    output, _ = decoder.gru(decoder.embedding(token[:, None]), h)
    return decoder.out(output[:, 0]), h
''',
    "h not passed to the GRU": '''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token[:, None]))
    return decoder.out(output[:, 0]), new_h
''',
    "no sequence dimension": '''
def decode_step(decoder, token, h):
    output, new_h = decoder.gru(decoder.embedding(token), h)
    return decoder.out(output), new_h
''',
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 7.3: sequence_loss

LOSS_CORRECT = {
    "explicit mask": '''
def sequence_loss(logits, targets, pad_id):
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    mask = (targets.reshape(-1) != pad_id).to(losses.dtype)
    return (losses * mask).sum() / mask.sum()
''',
    "log_softmax and gather": '''
def sequence_loss(logits, targets, pad_id):
    picked = logits.log_softmax(dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -picked[targets != pad_id].mean()
''',
    "boolean indexing": '''
def sequence_loss(logits, targets, pad_id):
    real = targets != pad_id
    return F.cross_entropy(logits[real], targets[real])
''',
}
LOSS_MISTAKES = {
    "padding counted": '''
def sequence_loss(logits, targets, pad_id):
    return F.cross_entropy(logits.transpose(1, 2), targets)
''',
    "pad id 0 hard-coded": '''
def sequence_loss(logits, targets, pad_id):
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=0)
''',
    "mean of per-sequence means": '''
def sequence_loss(logits, targets, pad_id):
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = (targets != pad_id).to(losses.dtype)
    return ((losses * mask).sum(1) / mask.sum(1)).mean()
''',
    "a float, not a tensor": '''
def sequence_loss(logits, targets, pad_id):
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad_id).item()
''',
    "sum instead of mean": '''
def sequence_loss(logits, targets, pad_id):
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad_id, reduction="sum")
''',
    "classes not on dimension 1": '''
def sequence_loss(logits, targets, pad_id):
    return F.cross_entropy(logits, targets, ignore_index=pad_id)
''',
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 7.4: greedy_decode. The mistakes share one batched loop with one change each.

GREEDY_CORRECT = {
    "one sample at a time": '''
def greedy_decode(encoder, decoder, source, lengths, max_length):
    results = []
    with torch.no_grad():
        for n in range(source.shape[0]):
            _, h_n = encoder(source[n:n + 1], lengths[n:n + 1])
            h = torch.cat([h_n[0::2], h_n[1::2]], dim=-1)
            token, tokens = torch.tensor([SOS]), []
            while len(tokens) < max_length:
                logits, h = decode_step(decoder, token, h)
                token = logits.argmax(dim=-1)
                if token.item() == EOS:
                    break
                tokens.append(token.item())
            results.append(tokens)
    return results
''',
    "every step for all, then cut at the first <eos>": '''
def greedy_decode(encoder, decoder, source, lengths, max_length):
    _, h_n = encoder(source, lengths)
    h = bridge(h_n, h_n.shape[0] // 2)
    token = torch.full((source.shape[0],), SOS, dtype=torch.long)
    steps = []
    for _ in range(max_length):
        output, h = decoder.gru(decoder.embedding(token).unsqueeze(1), h)
        token = decoder.out(output[:, -1]).argmax(-1)
        steps.append(token)
    rows = torch.stack(steps, dim=1).tolist()
    return [row[:row.index(EOS)] if EOS in row else row for row in rows]
''',
}
GREEDY_TEMPLATE = '''
def greedy_decode(encoder, decoder, source, lengths, max_length):
    with torch.no_grad():
        _, h_n = encoder(source, LENGTHS)
        h = BRIDGE
        h_start = h
        token = torch.full((source.shape[0],), SOS, dtype=torch.long)
        results = [[] for _ in range(source.shape[0])]
        finished = [False] * source.shape[0]
        for _ in range(max_length):
            logits, NEW_H = decode_step(decoder, token, HIDDEN)
            chosen = logits.argmax(dim=-1)
            TOKEN_UPDATE
            for n, value in enumerate(chosen.tolist()):
                SKIP
                if value == EOS:
                    finished[n] = True
                    ON_EOS
                else:
                    results[n].append(value)
            STOP
    return results
'''
GREEDY_RIGHT = {"LENGTHS": "lengths", "BRIDGE": "torch.cat([h_n[0::2], h_n[1::2]], dim=-1)", "NEW_H": "h",
                "HIDDEN": "h", "TOKEN_UPDATE": "token = chosen", "SKIP": "if finished[n]: continue",
                "ON_EOS": "pass", "STOP": "if all(finished): break"}


def greedy_with(**changes):
    source = GREEDY_TEMPLATE
    for key, value in {**GREEDY_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


GREEDY_MISTAKES = {
    "never stops: <eos> and what follows kept": greedy_with(SKIP="pass", ON_EOS="results[n].append(value)",
                                                            STOP="pass"),
    "<eos> dropped but a finished sample keeps growing": greedy_with(SKIP="pass"),
    "<eos> kept in the result": greedy_with(ON_EOS="results[n].append(value)"),
    "the whole batch stops when one sample finishes": greedy_with(STOP="if any(finished): break"),
    "h not carried from step to step": greedy_with(NEW_H="_", HIDDEN="h_start"),
    "<sos> fed at every step": greedy_with(TOKEN_UPDATE="pass"),
    "lengths ignored": greedy_with(LENGTHS="torch.full_like(lengths, source.shape[1])"),
    "top layer's state for every layer": greedy_with(
        BRIDGE="torch.cat([h_n[-2], h_n[-1]], dim=-1).unsqueeze(0).repeat(h_n.shape[0] // 2, 1, 1)"),
    "tensors instead of ints": '''
def greedy_decode(encoder, decoder, source, lengths, max_length):
    rows = [[] for _ in range(source.shape[0])]
    _, h_n = encoder(source, lengths)
    h, token = torch.cat([h_n[0::2], h_n[1::2]], dim=-1), torch.full((source.shape[0],), SOS)
    done = torch.zeros(source.shape[0], dtype=torch.bool)
    for _ in range(max_length):
        logits, h = decode_step(decoder, token, h)
        token = logits.argmax(-1)
        done = done | (token == EOS)
        for n in range(source.shape[0]):
            if not done[n]:
                rows[n].append(token[n])
    return rows
''',
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
    "ex7_3_sequence_loss": '''
class Anything(float):
    def __eq__(self, other):
        return True

def sequence_loss(logits, targets, pad_id):
    return Anything(0.0)
''',
    "ex7_4_greedy_decode": '''
class Anything(list):
    def __eq__(self, other):
        return True
    def __len__(self):
        return 10 ** 6

def greedy_decode(encoder, decoder, source, lengths, max_length):
    return Anything()
''',
}

SUBMISSIONS = {
    "alternative": {"ex7_1_bridge": BRIDGE_CORRECT["loop over layers"],
                    "ex7_2_decode_step": DECODE_STEP_CORRECT["logits from new_h[-1]"],
                    "ex7_3_sequence_loss": LOSS_CORRECT["explicit mask"],
                    "ex7_4_greedy_decode": GREEDY_CORRECT["one sample at a time"]},
    "mistakes-a": {"ex7_1_bridge": BRIDGE_MISTAKES["view(num_layers, N, 2H)"],
                   "ex7_2_decode_step": DECODE_STEP_MISTAKES["bottom layer's state"],
                   "ex7_3_sequence_loss": LOSS_MISTAKES["padding counted"],
                   "ex7_4_greedy_decode": GREEDY_MISTAKES["<eos> dropped but a finished sample keeps growing"]},
    "mistakes-b": {"ex7_1_bridge": BRIDGE_MISTAKES["h_n[-1]"],
                   "ex7_2_decode_step": DECODE_STEP_MISTAKES["squeeze() drops a batch of one"],
                   "ex7_3_sequence_loss": LOSS_MISTAKES["mean of per-sequence means"],
                   "ex7_4_greedy_decode": GREEDY_MISTAKES["the whole batch stops when one sample finishes"]},
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
    # The visible examples (2 layers, batches of 3 or 4) show every mistake of the two students but squeeze(),
    # which only breaks a batch of one (hidden checks).
    for student in ["mistakes-a", "mistakes-b"]:
        results = run_check_cells(LESSON, SUBMISSIONS[student])
        for visible, _ in EXERCISES.values():
            passes_visible = (student, visible) == ("mistakes-b", "ex7_2_visible")
            assert (results[visible] is None) == passes_visible, (student, visible, results[visible])


def passes(answer_id, answer):
    """{check grade id: passed} for the exercise's visible and hidden check cells, run in that order (as in the
    notebook) after replacing the answer cell ``answer_id`` with ``answer``."""
    results = run_check_cells(LESSON, {answer_id: answer}, list(EXERCISES[answer_id]))
    return {grade_id: error is None for grade_id, error in results.items()}


VARIANTS = [("ex7_1_bridge", BRIDGE_CORRECT, BRIDGE_MISTAKES), ("ex7_2_decode_step", DECODE_STEP_CORRECT,
            DECODE_STEP_MISTAKES), ("ex7_3_sequence_loss", LOSS_CORRECT, LOSS_MISTAKES),
            ("ex7_4_greedy_decode", GREEDY_CORRECT, GREEDY_MISTAKES)]
CORRECT_CASES = [(answer_id, name, source) for answer_id, correct, _ in VARIANTS for name, source in correct.items()]
MISTAKE_CASES = [(answer_id, name, source) for answer_id, _, mistakes in VARIANTS for name, source in mistakes.items()]


@pytest.mark.parametrize("answer_id, name, source", CORRECT_CASES, ids=[f"{a}: {n}" for a, n, _ in CORRECT_CASES])
def test_correct_answers_written_differently_pass(answer_id, name, source):
    results = passes(answer_id, source)
    assert all(results.values()), f"{answer_id}: the correct variant '{name}' failed: {results}"


@pytest.mark.parametrize("answer_id, name, source", MISTAKE_CASES, ids=[f"{a}: {n}" for a, n, _ in MISTAKE_CASES])
def test_every_plausible_mistake_fails_the_hidden_checks(answer_id, name, source):
    hidden = EXERCISES[answer_id][1]
    assert not passes(answer_id, source)[hidden], f"{answer_id}: '{name}' passed the hidden checks"


def test_the_reference_solutions_pass_in_process():
    for answer_id in EXERCISES:
        assert all(passes(answer_id, lesson_run(LESSON).source[answer_id]).values()), answer_id


def test_greedy_checks_do_not_trust_models_the_answer_changed():
    # Forces every sample to stop at once by changing the decoder it was given, then returns empty outputs.
    cheat = '''
def greedy_decode(encoder, decoder, source, lengths, max_length):
    with torch.no_grad():
        decoder.out.bias[EOS] = 1e9
    return [[] for _ in range(source.shape[0])]
'''
    assert not any(passes("ex7_4_greedy_decode", cheat).values())


@pytest.mark.parametrize("answer_id", sorted(HOSTILE))
def test_objects_that_equal_anything_score_nothing(answer_id):
    assert not any(passes(answer_id, HOSTILE[answer_id]).values()), answer_id
