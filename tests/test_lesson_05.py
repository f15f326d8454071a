"""Lesson 05's checks grade fairly, and its data file is what the build script makes.

How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests)."""

import hashlib
import re

import numpy as np
import pytest

from course.lessons import SOLUTIONS
from tests.check_cells import run_check_cells
from tests.harness import LessonTests, points
from tools import build_japanese_vowels

LESSON = "05-sequence-classification"
LESSON_DIR = SOLUTIONS / LESSON

# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.1 · collate

COLLATE_ALTERNATIVES = {
    # Preallocated zeros and a loop; lengths from .shape, labels through as_tensor.
    "loop": '''
def collate(batch):
    longest = max(sequence.shape[0] for sequence, _ in batch)
    first = batch[0][0]
    padded = first.new_zeros((len(batch), longest, first.shape[1]))
    for n, (sequence, _) in enumerate(batch):
        padded[n, : sequence.shape[0]] = sequence
    lengths = torch.tensor([sequence.shape[0] for sequence, _ in batch], dtype=torch.long)
    return padded, lengths, torch.as_tensor([label for _, label in batch])
''',
    # Sorts by length to pad, then puts everything back in the batch's order.
    "sort-and-unsort": '''
def collate(batch):
    order = sorted(range(len(batch)), key=lambda n: -len(batch[n][0]))
    padded_sorted = pad_sequence([batch[n][0] for n in order], batch_first=True)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    lengths = torch.tensor([len(s) for s, _ in batch])
    return padded_sorted[inverse], lengths, torch.tensor([label for _, label in batch])
''',
}

COLLATE_MISTAKES = {
    # Lengths as floats: pack_padded_sequence truncates them silently.
    "float lengths": ('''
def collate(batch):
    sequences, labels = zip(*batch)
    lengths = torch.tensor([float(len(s)) for s in sequences])
    return pad_sequence(list(sequences), batch_first=True), lengths, torch.tensor(labels)
''', "torch.int64"),
    # Time-major padding.
    "time-major": ('''
def collate(batch):
    sequences, labels = zip(*batch)
    return pad_sequence(list(sequences)), torch.tensor([len(s) for s in sequences]), torch.tensor(labels)
''', "batch_first=True"),
    # Sorted by length, and the labels with them: the batch's order is lost.
    "sorted": ('''
def collate(batch):
    batch = sorted(batch, key=lambda item: -len(item[0]))
    sequences, labels = zip(*batch)
    return (pad_sequence(list(sequences), batch_first=True), torch.tensor([len(s) for s in sequences]),
            torch.tensor(labels))
''', "sorted by length"),
    # Zeros in the default dtype: float64 sequences come back as float32.
    "float32 zeros": ('''
def collate(batch):
    longest = max(len(s) for s, _ in batch)
    padded = torch.zeros(len(batch), longest, batch[0][0].shape[1])
    for n, (sequence, _) in enumerate(batch):
        padded[n, : len(sequence)] = sequence
    return padded, torch.tensor([len(s) for s, _ in batch]), torch.tensor([label for _, label in batch])
''', "dtype"),
    # Labels as floats (F.cross_entropy wants class indices as int64).
    "float labels": ('''
def collate(batch):
    sequences, labels = zip(*batch)
    return (pad_sequence(list(sequences), batch_first=True), torch.tensor([len(s) for s in sequences]),
            torch.tensor(labels, dtype=torch.float32))
''', "labels: expected dtype torch.int64"),
    # Lengths and labels as lists.
    "lists": ('''
def collate(batch):
    sequences, labels = zip(*batch)
    return pad_sequence(list(sequences), batch_first=True), [len(s) for s in sequences], list(labels)
''', "expected Tensor"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.2 · SequenceClassifier

CLASSIFIER_HEAD = '''
class SequenceClassifier(nn.Module):
    def __init__(self, input_size, hidden_size, num_classes, num_layers=1, bidirectional=False):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                          batch_first=BATCH_FIRST)
        self.head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_classes)

    def forward(self, x, lengths):
'''


def classifier(body, batch_first=True):
    return CLASSIFIER_HEAD.replace("BATCH_FIRST", str(batch_first)) + body


RIGHT_PACK = '''
        _, h_n = self.gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
'''
CLASSIFIER_ALTERNATIVES = {
    # The padded output, read at each sequence's last real step (forward) and at step 0 (backward).
    "from output": classifier('''
        packed, _ = self.gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        output, _ = pad_packed_sequence(packed, batch_first=True)
        hidden = self.gru.hidden_size
        rows = torch.arange(x.shape[0], device=x.device)
        last = output[rows, (lengths - 1).to(x.device), :hidden]
        if not self.gru.bidirectional:
            return self.head(last)
        return self.head(torch.cat([last, output[:, 0, hidden:]], dim=1))
'''),
    # Sorts the batch itself (enforce_sorted=True) and sorts the logits back.
    "sort and unsort": classifier('''
        sorted_lengths, order = torch.sort(lengths, descending=True)
        _, h_n = self.gru(pack_padded_sequence(x[order.to(x.device)], sorted_lengths, batch_first=True))
        directions = 2 if self.gru.bidirectional else 1
        final = h_n[-directions:].permute(1, 0, 2).reshape(len(lengths), -1)
        logits = self.head(final)
        return logits[torch.argsort(order).to(x.device)]
'''),
    # A time-major GRU, and h_n read through a view.
    "time-major view": classifier('''
        packed = pack_padded_sequence(x.transpose(0, 1), lengths.tolist(), enforce_sorted=False)
        _, h_n = self.gru(packed)
        directions = 2 if self.gru.bidirectional else 1
        top = h_n.view(self.gru.num_layers, directions, x.shape[0], self.gru.hidden_size)[-1]
        return self.head(torch.cat(list(top), dim=-1))
''', batch_first=False),
}

CLASSIFIER_MISTAKES = {
    # h_n[-1] for both directions: the backward state only (and the wrong size for the head).
    "h_n[-1] when bidirectional": (classifier(RIGHT_PACK + '''
        return self.head(h_n[-1])
'''), "while checking"),
    # [backward | forward].
    "directions swapped": (classifier(RIGHT_PACK + '''
        final = torch.cat([h_n[-1], h_n[-2]], dim=-1) if self.gru.bidirectional else h_n[-1]
        return self.head(final)
'''), "[backward | forward]"),
    # The top layer's rows reshaped to (N, D * H) without moving the batch dimension first.
    "reshape without permute": (classifier(RIGHT_PACK + '''
        directions = 2 if self.gru.bidirectional else 1
        return self.head(h_n[-directions:].reshape(x.shape[0], -1))
'''), "rows of different sequences mixed"),
    # The bottom layer's rows.
    "bottom layer": (classifier(RIGHT_PACK + '''
        final = torch.cat([h_n[0], h_n[1]], dim=-1) if self.gru.bidirectional else h_n[0]
        return self.head(final)
'''), "bottom layer"),
    # No packing: the GRU runs over the padding.
    "not packed": (classifier('''
        _, h_n = self.gru(x)
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.gru.bidirectional else h_n[-1]
        return self.head(final)
'''), "not packed"),
    # Sorted for packing, never sorted back: the logits come out in length order.
    "not unsorted": (classifier('''
        sorted_lengths, order = torch.sort(lengths, descending=True)
        _, h_n = self.gru(pack_padded_sequence(x[order.to(x.device)], sorted_lengths, batch_first=True))
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.gru.bidirectional else h_n[-1]
        return self.head(final)
'''), "sorted by length"),
    # The default enforce_sorted=True: raises on unsorted lengths.
    "enforce_sorted": (classifier('''
        _, h_n = self.gru(pack_padded_sequence(x, lengths, batch_first=True))
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.gru.bidirectional else h_n[-1]
        return self.head(final)
'''), "enforce_sorted"),
    # output[:, -1] of the padded output.
    "output[:, -1]": (classifier('''
        packed, _ = self.gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        output, _ = pad_packed_sequence(packed, batch_first=True)
        return self.head(output[:, -1])
'''), "output[:, -1]"),
    # squeeze(): a batch of one loses its batch dimension.
    "squeeze": (classifier(RIGHT_PACK + '''
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.gru.bidirectional else h_n[-1]
        return self.head(final).squeeze()
'''), "squeeze"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.3 · masked_cross_entropy

MASKED_ALTERNATIVES = {
    # ignore_index.
    "ignore_index": '''
def masked_cross_entropy(logits, targets, lengths):
    padded = torch.arange(logits.shape[1])[None, :] >= lengths[:, None]
    targets = targets.masked_fill(padded.to(targets.device), -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
''',
    # Per-step losses times a float mask.
    "weighted": '''
def masked_cross_entropy(logits, targets, lengths):
    per_step = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = (torch.arange(logits.shape[1]) < lengths.unsqueeze(1)).to(per_step)
    return (per_step * mask).sum() / mask.sum()
''',
    # The real steps as a PackedSequence's data.
    "packed": '''
def masked_cross_entropy(logits, targets, lengths):
    real_logits = pack_padded_sequence(logits, lengths, batch_first=True, enforce_sorted=False).data
    real_targets = pack_padded_sequence(targets, lengths, batch_first=True, enforce_sorted=False).data
    return F.cross_entropy(real_logits, real_targets)
''',
    # A loop over the sequences.
    "loop": '''
def masked_cross_entropy(logits, targets, lengths):
    total = 0
    for n, length in enumerate(lengths.tolist()):
        total = total + F.cross_entropy(logits[n, :length], targets[n, :length], reduction="sum")
    return total / lengths.sum().item()
''',
}


def masked_with(mask, reduce):
    """A masked_cross_entropy whose mask is ``mask`` (an expression in t, the steps, and lengths, a column) and that
    returns ``reduce`` (an expression in per_step, the (N, L) losses, and m, the mask as floats)."""
    return f'''
def masked_cross_entropy(logits, targets, lengths):
    per_step = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    t, lengths = torch.arange(logits.shape[1])[None, :], lengths[:, None]
    m = ({mask}).to(per_step)
    return {reduce}
'''


RIGHT_MASK, OVER_MASK = "t < lengths", "(per_step * m).sum() / m.sum()"
MASKED_MISTAKES = {
    # The plain loss: every position, padded ones included.
    "not masked": ('''
def masked_cross_entropy(logits, targets, lengths):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
''', "padded steps included"),
    # Averaged per sequence: the mean of the sequences' means.
    "mean of means": (masked_with(RIGHT_MASK, "((per_step * m).sum(1) / m.sum(1)).mean()"),
                      "the mean of each sequence's mean"),
    # Averaged per batch: the real steps' total over the number of sequences.
    "per batch": (masked_with(RIGHT_MASK, "(per_step * m).sum() / len(per_step)"),
                  "divided by N, the number of sequences"),
    # N times the mean: the sum of the sequences' means.
    "sum of means": (masked_with(RIGHT_MASK, "((per_step * m).sum(1) / m.sum(1)).sum()"),
                     "the sum of each sequence's mean"),
    # A sum where a mean is asked.
    "total": (masked_with(RIGHT_MASK, "(per_step * m).sum()"), "the total over the real steps"),
    "divided by N * L": (masked_with(RIGHT_MASK, "(per_step * m).mean()"), "divided by N * L"),
    # Off-by-one masks.
    "mask t <= length": (masked_with("t <= lengths", OVER_MASK), "t <= lengths[n]"),
    "mask t < length - 1": (masked_with("t < lengths - 1", OVER_MASK), "t < lengths[n] - 1"),
    # The mask of padding at the start.
    "padding first": (masked_with("t >= per_step.shape[1] - lengths", OVER_MASK), "as if the padding came first"),
    "a float": ('''
def masked_cross_entropy(logits, targets, lengths):
    mask = torch.arange(logits.shape[1]) < lengths[:, None]
    return F.cross_entropy(logits[mask], targets[mask]).item()
''', "expected Tensor"),
    "detached": ('''
def masked_cross_entropy(logits, targets, lengths):
    mask = torch.arange(logits.shape[1]) < lengths[:, None]
    return F.cross_entropy(logits[mask], targets[mask]).detach()
''', "does not require grad"),
    # ignore_index through an in-place change of the caller's targets.
    "targets changed in place": ('''
def masked_cross_entropy(logits, targets, lengths):
    targets[torch.arange(logits.shape[1]) >= lengths[:, None]] = -100
    return F.cross_entropy(logits.transpose(1, 2), targets)
''', "changed its argument targets in place"),
}
# The mistakes issue 21 names for this exercise: the visible checks show each of them, by name.
MASKED_MISTAKES_NAMED_VISIBLY = ["not masked", "mean of means", "per batch", "sum of means", "total",
                                 "divided by N * L", "mask t <= length", "mask t < length - 1", "padding first"]

# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.4 · train_step


def step_with(order, ret="loss.item()", move=True):
    """A train_step whose body runs the lines named in ``order``."""
    lines = {
        "train": "model.train()",
        "zero": "optimizer.zero_grad()",
        "forward": "loss = F.cross_entropy(model(x, lengths), labels)",
        "backward": "loss.backward()",
        "clip": "nn.utils.clip_grad_norm_(model.parameters(), max_norm)",
        "step": "optimizer.step()",
    }
    body = "\n    ".join(lines[name] for name in order)
    moving = ("where = next(model.parameters()).device\n    x, labels = x.to(where), labels.to(where)"
              if move else "pass")
    return f'''
def train_step(model, batch, optimizer, max_norm):
    x, lengths, labels = batch
    {moving}
    {body}
    return {ret}
'''


RIGHT_ORDER = ["train", "zero", "forward", "backward", "clip", "step"]
STEP_ALTERNATIVES = {
    # model.zero_grad(), a list of parameters for clipping, float(loss).
    "model.zero_grad": '''
def train_step(model, batch, optimizer, max_norm):
    x, lengths, labels = batch
    device = next(iter(model.parameters())).device
    model.train(True)
    model.zero_grad(set_to_none=True)
    logits = model(x.to(device), lengths)
    loss = F.cross_entropy(logits, labels.to(device))
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_norm=max_norm)
    optimizer.step()
    return float(loss.detach())
''',
    # Clears the gradients after the step instead of before (the next step starts clean either way).
    "zero after step": step_with(["train", "forward", "backward", "clip", "step", "zero"]),
}

STEP_MISTAKES = {
    "no zero_grad": (step_with(["train", "forward", "backward", "clip", "step"]), "zero_grad"),
    "clip after step": (step_with(["train", "zero", "forward", "backward", "step", "clip"]), "not clipped"),
    "no clipping": (step_with(["train", "zero", "forward", "backward", "step"]), "not clipped"),
    "no model.train()": (step_with(["zero", "forward", "backward", "clip", "step"]), "model.train()"),
    "zero_grad before step": (step_with(["train", "forward", "backward", "clip", "zero", "step"]), "unchanged"),
    "returns the tensor": (step_with(RIGHT_ORDER, ret="loss"), "float"),
    # The loss recomputed after the update.
    "loss after the update": (step_with(RIGHT_ORDER, ret="F.cross_entropy(model(x, lengths), labels).item()"),
                              "before the update"),
}

# ----------------------------------------------------------------------------------------------------------------
# Autograded students.

ALTERNATIVE = {
    "ex5_1_collate": COLLATE_ALTERNATIVES["loop"],
    "ex5_2_sequence_classifier": CLASSIFIER_ALTERNATIVES["from output"],
    "ex5_3_masked_cross_entropy": MASKED_ALTERNATIVES["ignore_index"],
    "ex5_4_train_step": STEP_ALTERNATIVES["model.zero_grad"],
}
MISTAKES = {
    "ex5_1_collate": COLLATE_MISTAKES["float lengths"][0],
    "ex5_2_sequence_classifier": CLASSIFIER_MISTAKES["h_n[-1] when bidirectional"][0],
    "ex5_3_masked_cross_entropy": MASKED_MISTAKES["not masked"][0],
    "ex5_4_train_step": STEP_MISTAKES["no zero_grad"][0],
}
HOSTILE = {
    "ex5_1_collate": '''
class Anything(tuple):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

def collate(batch):
    return Anything((Anything(), Anything(), Anything()))
''',
    "ex5_2_sequence_classifier": '''
class Anything:
    def __eq__(self, other):
        return True
    shape = property(lambda self: Anything())

class SequenceClassifier(nn.Module):
    def __init__(self, input_size, hidden_size, num_classes, num_layers=1, bidirectional=False):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                          batch_first=True)
        self.head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_classes)

    def forward(self, x, lengths):
        return Anything()
''',
    "ex5_3_masked_cross_entropy": '''
class Anything(float):
    def __eq__(self, other):
        return True
    def __le__(self, other):
        return True

def masked_cross_entropy(logits, targets, lengths):
    return Anything(0.0)
''',
    "ex5_4_train_step": '''
class Anything(float):
    def __eq__(self, other):
        return True
    def __le__(self, other):
        return True
    def __sub__(self, other):
        return 0.0

def train_step(model, batch, optimizer, max_norm):
    return Anything(0.0)
''',
}
# Through the course's grader too (answers called across the process boundary): other mistakes, the named ones of
# Exercise 5.3 among them, and correct answers written differently (the learner's own class as a remote object, a
# PackedSequence's data, gradients cleared after the step).
OTHER_MISTAKES = {
    "ex5_1_collate": COLLATE_MISTAKES["sorted"][0],
    "ex5_2_sequence_classifier": CLASSIFIER_MISTAKES["not packed"][0],
    "ex5_3_masked_cross_entropy": MASKED_MISTAKES["mean of means"][0],
    "ex5_4_train_step": STEP_MISTAKES["clip after step"][0],
}
ALTERNATIVES_GRADED = {
    "ex5_1_collate": COLLATE_ALTERNATIVES["sort-and-unsort"],
    "ex5_2_sequence_classifier": CLASSIFIER_ALTERNATIVES["sort and unsort"],
    "ex5_3_masked_cross_entropy": MASKED_ALTERNATIVES["packed"],
    "ex5_4_train_step": STEP_ALTERNATIVES["zero after step"],
}
AUTOGRADED = {"mistakes": MISTAKES, "other_mistakes": OTHER_MISTAKES, "alternatives": ALTERNATIVES_GRADED}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


ANSWER_CELLS = {answer_id[:5]: answer_id for answer_id in ALTERNATIVE}  # "ex5_1" -> "ex5_1_collate"
EXERCISES = list(ANSWER_CELLS)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_plausible_mistakes_score_nothing(scores, exercise):
    # Every one of these mistakes shows on the visible examples too.
    for student in ("mistakes", "other_mistakes"):
        assert points(scores, student, f"{exercise}_visible") == 0, student
        assert points(scores, student, f"{exercise}_hidden") == 0, student


def test_correct_answers_written_differently_score_full_marks_through_the_grader(scores):
    for grade_id, (score, max_score) in scores["alternatives"].items():
        assert score == max_score, f"alternatives/{grade_id}: {score}/{max_score}"


# ----------------------------------------------------------------------------------------------------------------
# The other variants, in-process.

def run_variant(exercise, answer):
    """{visible, hidden: None if the cell passed, else the message of what it raised}."""
    results = run_check_cells(LESSON, {ANSWER_CELLS[exercise]: answer})
    return {"visible": results[f"{exercise}_visible"], "hidden": results[f"{exercise}_hidden"]}


ALL_ALTERNATIVES = [("ex5_1", name, source) for name, source in COLLATE_ALTERNATIVES.items()] + [
    ("ex5_2", name, source) for name, source in CLASSIFIER_ALTERNATIVES.items()] + [
    ("ex5_3", name, source) for name, source in MASKED_ALTERNATIVES.items()] + [
    ("ex5_4", name, source) for name, source in STEP_ALTERNATIVES.items()]
ALL_MISTAKES = [("ex5_1", name, *case) for name, case in COLLATE_MISTAKES.items()] + [
    ("ex5_2", name, *case) for name, case in CLASSIFIER_MISTAKES.items()] + [
    ("ex5_3", name, *case) for name, case in MASKED_MISTAKES.items()] + [
    ("ex5_4", name, *case) for name, case in STEP_MISTAKES.items()]


@pytest.mark.parametrize(("exercise", "name", "answer"), ALL_ALTERNATIVES,
                         ids=[f"{e}-{n}" for e, n, _ in ALL_ALTERNATIVES])
def test_correct_answers_written_differently_pass(exercise, name, answer):
    results = run_variant(exercise, answer)
    assert results == {"visible": None, "hidden": None}, results


@pytest.mark.parametrize("grade_id", sorted(HOSTILE))
def test_objects_that_equal_anything_score_nothing(grade_id):
    results = run_variant(grade_id[:5], HOSTILE[grade_id])
    assert results["visible"] is not None and results["hidden"] is not None, results


@pytest.mark.parametrize(("exercise", "name", "answer", "named"), ALL_MISTAKES,
                         ids=[f"{e}-{n}" for e, n, _, _ in ALL_MISTAKES])
def test_every_plausible_mistake_fails_the_hidden_checks_and_says_why(exercise, name, answer, named):
    results = run_variant(exercise, answer)
    assert results["hidden"] is not None, f"the hidden checks of {exercise} let '{name}' pass"
    message = results["visible"] or results["hidden"]
    assert named in message, f"{exercise} '{name}': the message does not name the mistake: {message}"


@pytest.mark.parametrize("name", MASKED_MISTAKES_NAMED_VISIBLY)
def test_the_visible_checks_name_each_masked_loss_mistake(name):
    """A learner sees the mistake named before grading: the visible checks of Exercise 5.3 reveal each one."""
    answer, named = MASKED_MISTAKES[name]
    message = run_variant("ex5_3", answer)["visible"]
    assert message is not None and named in message, f"'{name}': {message}"


# ----------------------------------------------------------------------------------------------------------------
# The check modules.

@pytest.fixture(scope="module")
def check_modules():
    """lesson_checks and hidden_checks, imported from the lesson's folder."""
    import importlib
    import sys

    sys.path.insert(0, str(LESSON_DIR))
    try:
        return importlib.import_module("lesson_checks"), importlib.import_module("hidden_checks")
    finally:
        sys.path.remove(str(LESSON_DIR))


def test_the_visible_checks_literal_values_are_what_the_hidden_references_compute(check_modules):
    visible, hidden = check_modules
    computed = hidden.visible_literals()
    for table in ("EXPECTED_LOGITS", "MISTAKE_LOGITS", "EXPECTED_MASKED_LOSS", "MISTAKE_MASKED_LOSS"):
        literal = getattr(visible, table)
        assert list(literal) == list(computed[table]), table
        for example, values in computed[table].items():
            if isinstance(values, dict):
                assert list(literal[example]) == list(values), (table, example)
                pairs = [(np.array(literal[example][k]), np.array(values[k])) for k in values]
            else:
                pairs = [(np.array(literal[example]), np.array(values))]
            for got, want in pairs:
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=f"{table}[{example!r}]")


def test_each_visible_masked_example_tells_every_mistake_apart(check_modules):
    """In the example with a sequence of length L next to one of length 1, every named mistake gives its own value."""
    visible, _ = check_modules
    values = [visible.EXPECTED_MASKED_LOSS["lengths [4, 1]"], *visible.MISTAKE_MASKED_LOSS["lengths [4, 1]"].values()]
    gaps = [abs(a - b) for i, a in enumerate(values) for b in values[i + 1:]]
    assert min(gaps) > 1e-3, sorted(gaps)[:3]


# What would give an answer away: the released visible checks use none of it in their code (messages may name it).
ANSWER_NAMES = {"pad_sequence", "pack_padded_sequence", "pad_packed_sequence", "ignore_index", "zero_grad",
                "clip_grad_norm_", "backward"}
ANSWER_METHODS = {"step"}  # optimizer.step()


def test_the_released_visible_checks_hold_no_answer():
    import ast

    tree = ast.parse((LESSON_DIR / "lesson_checks.py").read_text())
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} | attributes
    used |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.keyword)}
    used |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert sorted(used & ANSWER_NAMES) == [] and sorted(attributes & ANSWER_METHODS) == []


# ----------------------------------------------------------------------------------------------------------------
# The data file.

def recorded_sha256():
    """{file name: SHA-256} from the lesson's DATA.md table."""
    text = (LESSON_DIR / "DATA.md").read_text()
    return dict(re.findall(r"^\| `([\w.]+)`[^|]*\| `([0-9a-f]{64})` \|$", text, re.M))


def test_shipped_file_matches_the_sha256_in_data_md():
    recorded = recorded_sha256()
    shipped = hashlib.sha256((LESSON_DIR / "japanese_vowels.npz").read_bytes()).hexdigest()
    assert recorded["japanese_vowels.npz"] == shipped
    # The sources' digests in DATA.md are the ones the build script checks.
    assert {name: recorded[name] for name in build_japanese_vowels.SOURCE_SHA256} == (
        build_japanese_vowels.SOURCE_SHA256)


def test_shipped_file_is_what_the_build_script_writes_for_its_contents():
    path = LESSON_DIR / "japanese_vowels.npz"
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    assert build_japanese_vowels.npz_bytes(arrays) == path.read_bytes()
    assert list(arrays) == [f"{split}_{kind}" for split in ("train", "test")
                            for kind in ("frames", "lengths", "speakers")]
    for split, count, per_speaker in (("train", 270, [30] * 9), ("test", 370, [31, 35, 88, 44, 29, 24, 40, 50, 29])):
        frames, lengths, speakers = (arrays[f"{split}_{kind}"] for kind in ("frames", "lengths", "speakers"))
        assert frames.dtype == np.float32 and frames.shape == (int(lengths.sum()), 12)
        assert lengths.dtype == np.int64 and lengths.shape == (count,) and 7 <= lengths.min() <= lengths.max() <= 29
        assert speakers.dtype == np.int64 and np.bincount(speakers).tolist() == per_speaker


TINY_TS = """#A comment
@problemName Tiny
@dimensions 12
@data
{first}:2
{second}:9
"""


def tiny_source(rows):
    series = [",".join(f"{(k + 1) * 0.000001 * (t + 1) + d:.6f}" for t in range(rows)) for d, k in
              enumerate(range(12))]
    return ":".join(series)


def test_build_script_parses_ts_and_writes_the_same_bytes_every_time(tmp_path):
    text = TINY_TS.format(first=tiny_source(3), second="5.8E-4," + tiny_source(2).split(",", 1)[1])
    texts = {name: text.encode() for name in build_japanese_vowels.SPLITS.values()}
    build_japanese_vowels.check_sources(texts, expected=None)
    first, second = build_japanese_vowels.build(texts), build_japanese_vowels.build(texts)
    assert first == second
    (tmp_path / "tiny.npz").write_bytes(first)
    with np.load(tmp_path / "tiny.npz") as data:
        assert data["train_lengths"].tolist() == [3, 2] and data["train_speakers"].tolist() == [1, 8]
        assert data["train_frames"].shape == (5, 12)
        assert data["train_frames"][3, 0] == np.float32(5.8e-4)  # second utterance, first frame, coefficient 0
    with pytest.raises(ValueError, match="SHA-256"):
        build_japanese_vowels.check_sources(texts)
    with pytest.raises(ValueError, match="label"):
        bad_label = TINY_TS.format(first=tiny_source(2), second=tiny_source(2)).replace(":9\n", ":10\n")
        build_japanese_vowels.parse_ts(bad_label)
