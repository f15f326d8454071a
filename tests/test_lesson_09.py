"""Lesson 09's checks grade fairly, and its data files are what the build script makes.

How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests). The variants here are
answer cells written as a learner would write them: correct answers written differently must pass every check,
plausible mistakes must fail a hidden check with a message that names the mistake, and answers whose objects claim
to equal anything must fail.
"""

import hashlib
import importlib
import sys

import pytest

from course.lessons import SOLUTIONS
from tests.check_cells import run_check_cells
from tests.harness import LessonTests, points

LESSON = "09-text"
LESSON_DIR = SOLUTIONS / LESSON

# ----------------------------------------------------------------------------------------------------------------
# Exercise 9.1 · build_vocabulary

VOCABULARY_ALTERNATIVES = {
    # Counts by hand, order by (-count, first position).
    "sorted by first position": '''
def build_vocabulary(sentences, min_count):
    counts, first = {}, {}
    for sentence in sentences:
        for token in sentence:
            counts[token] = counts.get(token, 0) + 1
            first.setdefault(token, len(first))
    kept = sorted((t for t in counts if counts[t] >= min_count), key=lambda t: (-counts[t], first[t]))
    vocabulary = {"<pad>": 0, "<unk>": 1}
    for index, token in enumerate(kept, start=2):
        vocabulary[token] = index
    return vocabulary
''',
    # A Counter updated sentence by sentence; an OrderedDict made into a plain dict.
    "ordered dict": '''
from collections import Counter, OrderedDict

def build_vocabulary(sentences, min_count):
    counts = Counter()
    for sentence in sentences:
        counts.update(sentence)
    itos = ["<pad>", "<unk>"] + [t for t, c in counts.most_common() if c >= min_count]
    return dict(OrderedDict((t, i) for i, t in enumerate(itos)))
''',
}

VOCABULARY_MISTAKES = {
    "strict cut-off": ('''
def build_vocabulary(sentences, min_count):
    counts = collections.Counter(t for s in sentences for t in s)
    vocabulary = {"<pad>": 0, "<unk>": 1}
    for token, count in counts.most_common():
        if count > min_count:
            vocabulary[token] = len(vocabulary)
    return vocabulary
''', "count > min_count"),
    "specials swapped": ('''
def build_vocabulary(sentences, min_count):
    counts = collections.Counter(t for s in sentences for t in s)
    vocabulary = {"<unk>": 0, "<pad>": 1}
    for token, count in counts.most_common():
        if count >= min_count:
            vocabulary[token] = len(vocabulary)
    return vocabulary
''', "swapped"),
    "alphabetical ties": ('''
def build_vocabulary(sentences, min_count):
    counts = collections.Counter(t for s in sentences for t in s)
    kept = sorted((t for t in counts if counts[t] >= min_count), key=lambda t: (-counts[t], t))
    return {"<pad>": 0, "<unk>": 1, **{t: i for i, t in enumerate(kept, 2)}}
''', "alphabetically"),
    "sentence counts": ('''
def build_vocabulary(sentences, min_count):
    counts = collections.Counter(t for s in sentences for t in set(s))
    vocabulary = {"<pad>": 0, "<unk>": 1}
    for token, count in counts.most_common():
        if count >= min_count:
            vocabulary[token] = len(vocabulary)
    return vocabulary
''', "count every occurrence"),
    "specials last": ('''
def build_vocabulary(sentences, min_count):
    counts = collections.Counter(t for s in sentences for t in s)
    vocabulary = {t: i for i, (t, c) in enumerate(c for c in counts.most_common() if c[1] >= min_count)}
    vocabulary["<pad>"] = len(vocabulary)
    vocabulary["<unk>"] = len(vocabulary)
    return vocabulary
''', "after the tokens"),
    "no specials": ('''
def build_vocabulary(sentences, min_count):
    counts = collections.Counter(t for s in sentences for t in s)
    return {t: i + 2 for i, (t, c) in enumerate(counts.most_common()) if c >= min_count}
''', "'<pad>' is missing"),
    "input lower-cased in place": ('''
def build_vocabulary(sentences, min_count):
    for sentence in sentences:
        sentence[:] = [t.lower() for t in sentence]
    counts = collections.Counter(t for s in sentences for t in s)
    vocabulary = {"<pad>": 0, "<unk>": 1}
    for token, count in counts.most_common():
        if count >= min_count:
            vocabulary[token] = len(vocabulary)
    return vocabulary
''', "changed the sentences"),
    "an OrderedDict": ('''
def build_vocabulary(sentences, min_count):
    counts = collections.Counter(t for s in sentences for t in s)
    vocabulary = collections.OrderedDict([("<pad>", 0), ("<unk>", 1)])
    for token, count in counts.most_common():
        if count >= min_count:
            vocabulary[token] = len(vocabulary)
    return vocabulary
''', "plain dict"),
    "a list of tokens": ('''
def build_vocabulary(sentences, min_count):
    counts = collections.Counter(t for s in sentences for t in s)
    return ["<pad>", "<unk>"] + [t for t, c in counts.most_common() if c >= min_count]
''', "plain dict"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 9.2 · collate_tagged

COLLATE_ALTERNATIVES = {
    # Preallocated tensors filled row by row.
    "loop": '''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    longest = max(len(tokens) for tokens, _ in batch)
    tokens = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    tags = torch.full((len(batch), longest), pad_tag, dtype=torch.long)
    for n, (t, g) in enumerate(batch):
        tokens[n, : len(t)] = t
        tags[n, : len(g)] = g
    return tokens, torch.tensor([len(t) for t, _ in batch]), tags
''',
    # F.pad each sentence, then stack; a list instead of a tuple.
    "F.pad": '''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    longest = max(t.shape[0] for t, _ in batch)
    tokens = torch.stack([F.pad(t, (0, longest - t.shape[0]), value=pad_id) for t, _ in batch])
    tags = torch.stack([F.pad(g, (0, longest - g.shape[0]), value=pad_tag) for _, g in batch])
    return [tokens, torch.as_tensor([t.shape[0] for t, _ in batch], dtype=torch.int64), tags]
''',
}

COLLATE_MISTAKES = {
    "tags padded with 0": ('''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    tokens, tags = zip(*batch)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=pad_id), torch.tensor([len(t) for t in tokens]),
            pad_sequence(list(tags), batch_first=True))
''', "a real tag id"),
    "tokens padded with the pad tag": ('''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    tokens, tags = zip(*batch)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=pad_tag),
            torch.tensor([len(t) for t in tokens]), pad_sequence(list(tags), batch_first=True, padding_value=pad_tag))
''', "the other pad value"),
    "float lengths": ('''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    tokens, tags = zip(*batch)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=pad_id),
            torch.tensor([float(len(t)) for t in tokens]),
            pad_sequence(list(tags), batch_first=True, padding_value=pad_tag))
''', "floats are truncated"),
    "time-major": ('''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    tokens, tags = zip(*batch)
    return (pad_sequence(list(tokens), padding_value=pad_id), torch.tensor([len(t) for t in tokens]),
            pad_sequence(list(tags), padding_value=pad_tag))
''', "batch_first=True"),
    "sorted by length": ('''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    batch = sorted(batch, key=lambda item: -len(item[0]))
    tokens, tags = zip(*batch)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=pad_id), torch.tensor([len(t) for t in tokens]),
            pad_sequence(list(tags), batch_first=True, padding_value=pad_tag))
''', "keep the batch's order"),
    "pad values hard-coded": ('''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    tokens, tags = zip(*batch)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=0), torch.tensor([len(t) for t in tokens]),
            pad_sequence(list(tags), batch_first=True, padding_value=-100))
''', "must be"),
    "lengths off by one": ('''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    tokens, tags = zip(*batch)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=pad_id),
            torch.tensor([len(t) - 1 for t in tokens]),
            pad_sequence(list(tags), batch_first=True, padding_value=pad_tag))
''', "lengths: expected"),
    "batch changed in place": ('''
def collate_tagged(batch, pad_id=0, pad_tag=-100):
    for tokens, tags in batch:
        tags[tags < 0] = 0
        tokens += 0
        tags.add_(0) if len(tags) > 1 else tags.fill_(tags.item() + 1)
    tokens, tags = zip(*batch)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=pad_id), torch.tensor([len(t) for t in tokens]),
            pad_sequence(list(tags), batch_first=True, padding_value=pad_tag))
''', "changed the tensors"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 9.3 · GRUTagger

TAGGER_INIT = '''
class GRUTagger(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size, num_tags, bidirectional=True, pad_id=0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.gru = nn.GRU(embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_tags)
'''


def tagger(forward, init=TAGGER_INIT):
    return init + forward


TAGGER_ALTERNATIVES = {
    # Sorts the batch itself, packs with enforce_sorted=True, and puts the rows back.
    "sorted by hand": tagger('''
    def forward(self, tokens, lengths):
        order = torch.argsort(lengths, descending=True)
        packed = pack_padded_sequence(self.embedding(tokens[order.to(tokens.device)]), lengths[order],
                                      batch_first=True)
        output, _ = self.gru(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=tokens.shape[1])
        back = torch.empty_like(order)
        back[order] = torch.arange(len(order))
        return self.head(output[back.to(output.device)])
'''),
    # Runs each sentence alone (no packing needed) and pads the logits by hand.
    "one sentence at a time": tagger('''
    def forward(self, tokens, lengths):
        rows = []
        for n, length in enumerate(lengths.tolist()):
            output, _ = self.gru(self.embedding(tokens[n:n + 1, :length]))
            logits = self.head(output[0])
            rows.append(torch.cat([logits, logits.new_zeros(tokens.shape[1] - length, logits.shape[1])]))
        return torch.stack(rows)
'''),
}

TAGGER_MISTAKES = {
    "not packed": (tagger('''
    def forward(self, tokens, lengths):
        output, _ = self.gru(self.embedding(tokens))
        return self.head(output)
'''), "not packed"),
    "no total_length": (tagger('''
    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        output, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True)
        return self.head(output)
'''), "total_length"),
    "h_n instead of output": (tagger('''
    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.gru.bidirectional else h_n[-1]
        return self.head(final)
'''), "not h_n"),
    "enforce_sorted left True": (tagger('''
    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True)
        output, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=tokens.shape[1])
        return self.head(output)
'''), "enforce_sorted=False"),
    "no padding_idx": (tagger('''
    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        output, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=tokens.shape[1])
        return self.head(output)
''', init=TAGGER_INIT.replace(", padding_idx=pad_id", "")), "padding_idx"),
    "other submodule names": (tagger('''
    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        output, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=tokens.shape[1])
        return self.head(output)
''', init=TAGGER_INIT.replace("self.gru =", "self.rnn =").replace("self.gru.", "self.rnn.")), "load_state_dict"),
    "forward half only": (tagger('''
    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        output, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=tokens.shape[1])
        H = self.gru.hidden_size
        if self.gru.bidirectional:
            output = torch.cat([output[..., :H], torch.zeros_like(output[..., H:])], dim=-1)
        return self.head(output)
'''), "forward half"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 9.4 · token_accuracy

ACCURACY_ALTERNATIVES = {
    # Boolean indexing, then counts with len() and a Python sum.
    "indexing": '''
def token_accuracy(logits, tags, pad_tag=-100):
    keep = tags.ne(pad_tag)
    predicted = logits.max(dim=2).indices[keep]
    return int(predicted.eq(tags[keep]).sum()), len(tags[keep])
''',
    # Loops over the sentences, on the CPU.
    "loop": '''
def token_accuracy(logits, tags, pad_tag=-100):
    correct = counted = 0
    for sentence_logits, sentence_tags in zip(logits.detach().cpu(), tags.cpu()):
        for position_logits, tag in zip(sentence_logits, sentence_tags.tolist()):
            if tag != pad_tag:
                counted += 1
                correct += int(position_logits.argmax().item() == tag)
    return correct, counted
''',
}

ACCURACY_MISTAKES = {
    "padding counted": ('''
def token_accuracy(logits, tags, pad_tag=-100):
    return int((logits.argmax(dim=-1) == tags).sum()), tags.numel()
''', "padding"),
    "pad_tag ignored": ('''
def token_accuracy(logits, tags, pad_tag=-100):
    real = tags != -100
    return int(((logits.argmax(dim=-1) == tags) & real).sum()), int(real.sum())
''', "pad"),
    "tensors returned": ('''
def token_accuracy(logits, tags, pad_tag=-100):
    real = tags != pad_tag
    return ((logits.argmax(dim=-1) == tags) & real).sum(), real.sum()
''', "tensor.item()"),
    "a ratio": ('''
def token_accuracy(logits, tags, pad_tag=-100):
    real = tags != pad_tag
    return ((logits.argmax(dim=-1) == tags) & real).sum().item() / real.sum().item()
''', "expected tuple or list"),
    "argmax over dim 1": ('''
def token_accuracy(logits, tags, pad_tag=-100):
    real = tags != pad_tag
    predicted = logits.argmax(dim=1)
    if predicted.shape != tags.shape:
        predicted = predicted[:, :1].expand_as(tags)
    return int(((predicted == tags) & real).sum()), int(real.sum())
''', "expected (correct, counted)"),
}

# ----------------------------------------------------------------------------------------------------------------
# Hostile answers: objects that claim to equal anything.

HOSTILE = {
    "ex9_1_vocabulary": '''
class Anything(dict):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def items(self):
        return {"<pad>": 0, "<unk>": 1}.items()

def build_vocabulary(sentences, min_count):
    return Anything()
''',
    "ex9_2_collate_tagged": '''
class Anything(tuple):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

def collate_tagged(batch, pad_id=0, pad_tag=-100):
    return Anything((Anything(), Anything(), Anything()))
''',
    "ex9_3_gru_tagger": '''
class Anything(torch.Tensor):
    def __eq__(self, other):
        return True

class GRUTagger(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size, num_tags, bidirectional=True, pad_id=0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.gru = nn.GRU(embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_tags)

    def forward(self, tokens, lengths):
        return torch.zeros(*tokens.shape, self.head.out_features)
''',
    "ex9_4_token_accuracy": '''
class Anything(int):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = int.__hash__

def token_accuracy(logits, tags, pad_tag=-100):
    return (Anything(0), Anything(0))
''',
}

# The shared harness's students (answer cell grade id -> source), graded through nbgrader and the course's grader.
ALTERNATIVE = {
    "ex9_1_vocabulary": VOCABULARY_ALTERNATIVES["sorted by first position"],
    "ex9_2_collate_tagged": COLLATE_ALTERNATIVES["loop"],
    "ex9_3_gru_tagger": TAGGER_ALTERNATIVES["sorted by hand"],
    "ex9_4_token_accuracy": ACCURACY_ALTERNATIVES["indexing"],
}
MISTAKES = {
    "ex9_1_vocabulary": VOCABULARY_MISTAKES["strict cut-off"][0],
    "ex9_2_collate_tagged": COLLATE_MISTAKES["tags padded with 0"][0],
    "ex9_3_gru_tagger": TAGGER_MISTAKES["not packed"][0],
    "ex9_4_token_accuracy": ACCURACY_MISTAKES["padding counted"][0],
}
# Through the course's grader too (answers called across the process boundary): other mistakes, and correct answers
# written differently (an OrderedDict, a list instead of a tuple, the learner's own module class as a remote object,
# a loop on the CPU).
OTHER_MISTAKES = {
    "ex9_1_vocabulary": VOCABULARY_MISTAKES["specials swapped"][0],
    "ex9_2_collate_tagged": COLLATE_MISTAKES["sorted by length"][0],
    "ex9_3_gru_tagger": TAGGER_MISTAKES["no total_length"][0],
    "ex9_4_token_accuracy": ACCURACY_MISTAKES["pad_tag ignored"][0],
}
ALTERNATIVES_GRADED = {
    "ex9_1_vocabulary": VOCABULARY_ALTERNATIVES["ordered dict"],
    "ex9_2_collate_tagged": COLLATE_ALTERNATIVES["F.pad"],
    "ex9_3_gru_tagger": TAGGER_ALTERNATIVES["one sentence at a time"],
    "ex9_4_token_accuracy": ACCURACY_ALTERNATIVES["loop"],
}
AUTOGRADED = {"mistakes": MISTAKES, "other_mistakes": OTHER_MISTAKES, "alternatives": ALTERNATIVES_GRADED}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


ANSWER_CELLS = {answer_id[:5]: answer_id for answer_id in ALTERNATIVE}  # "ex9_1" -> "ex9_1_vocabulary"
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


ALL_ALTERNATIVES = [(answer_id[:5], name, source) for answer_id, variants in (
    ("ex9_1", VOCABULARY_ALTERNATIVES), ("ex9_2", COLLATE_ALTERNATIVES), ("ex9_3", TAGGER_ALTERNATIVES),
    ("ex9_4", ACCURACY_ALTERNATIVES)) for name, source in variants.items()]
ALL_MISTAKES = [(answer_id[:5], name, *case) for answer_id, variants in (
    ("ex9_1", VOCABULARY_MISTAKES), ("ex9_2", COLLATE_MISTAKES), ("ex9_3", TAGGER_MISTAKES),
    ("ex9_4", ACCURACY_MISTAKES)) for name, case in variants.items()]


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
    assert named in results["hidden"], f"{exercise} '{name}': the message does not name the mistake: {results}"


@pytest.fixture(scope="module")
def modules():
    """(lesson_checks, hidden_checks) of this lesson, imported from its folder (and removed again afterwards, so
    that another lesson's modules of the same names are not shadowed)."""
    names = ("course_checks", "lesson_checks", "hidden_checks")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path.insert(0, str(LESSON_DIR))
    try:
        yield importlib.import_module("lesson_checks"), importlib.import_module("hidden_checks")
    finally:
        sys.path.remove(str(LESSON_DIR))
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def test_checks_leave_the_global_random_state_alone(modules, capsys):
    """In a notebook the checks run in the learner's kernel: they must not change the random numbers the lesson's
    next cells draw (building modules draws their initial weights)."""
    import torch

    lesson_checks, hidden_checks = modules
    answers = {"9_1": hidden_checks.reference_build_vocabulary, "9_2": hidden_checks.reference_collate_tagged,
               "9_4": hidden_checks.reference_token_accuracy}
    before = torch.random.get_rng_state()
    for number, answer in answers.items():
        for module in modules:
            getattr(module, f"exercise_{number}")(answer)
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    namespace = {"torch": torch, "nn": nn, "pack_padded_sequence": pack_padded_sequence,
                 "pad_packed_sequence": pad_packed_sequence}
    exec(ALTERNATIVE["ex9_3_gru_tagger"], namespace)  # a tagger whose __init__ draws its initial weights
    for module in modules:
        module.exercise_9_3(namespace["GRUTagger"])
    assert torch.equal(before, torch.random.get_rng_state())


def test_the_visible_checks_hold_no_reference_answer():
    """lesson_checks.py is released to learners: it must not contain the exercises' solutions."""
    text = (LESSON_DIR / "lesson_checks.py").read_text()
    for forbidden in ("most_common", "def build_vocabulary", "def collate_tagged", "class GRUTagger",
                      "def token_accuracy", "pad_packed_sequence(", "padding_value="):
        assert forbidden not in text, forbidden


# ----------------------------------------------------------------------------------------------------------------
# Data


DATA_SHA256 = {
    "movieReviewSnippets_GroundTruth.txt": "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
    "LICENSE.vaderSentiment": "74cfe41cdbf7f6925aeb4c18c148ec8db042540edb6739fd81069aa4e3c8b118",
    "turkish_pos.tsv": "ae9a89d9d18750258cbe74a4bb5a2ca00142a1de7c9598f47eb042426bdd7463",
    "LICENSE.turkish-treebanks": "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
}


@pytest.mark.parametrize("name", sorted(DATA_SHA256))
def test_shipped_data_is_what_the_build_script_makes(name):
    from tools import build_text_data

    assert build_text_data.OUTPUT_SHA256[name] == DATA_SHA256[name]
    assert hashlib.sha256((LESSON_DIR / name).read_bytes()).hexdigest() == DATA_SHA256[name]
    assert f"`{DATA_SHA256[name]}`" in (LESSON_DIR / "DATA.md").read_text()


def test_the_tagged_sentences_keep_the_treebank_split():
    lines = (LESSON_DIR / "turkish_pos.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines]
    assert len(rows) == 4851 and all(len(row) == 5 for row in rows)
    assert all(len(row[3].split(" ")) == len(row[4].split(" ")) for row in rows)
    for section in ("web", "wiki"):
        splits = [row[1] for row in rows if row[0] == section]
        assert splits == ["dev" if i % 10 == 8 else "test" if i % 10 == 9 else "train" for i in range(len(splits))]


def test_the_build_script_reads_the_archives_as_described(tmp_path, monkeypatch):
    """tools/build_text_data.py on small stand-in archives of the same layout: the snippets and licences come out
    byte for byte, the treebank as one line per sentence with the authors' split, and a wrong checksum stops it."""
    import io
    import tarfile
    import zipfile

    from tools import build_text_data

    def tar_bytes(members):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    snippets = b"1\t2.5\tA fine film.\r\n2\t-1.25\tDull."
    inner = tar_bytes({"hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": snippets})
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    sdist.write_bytes(tar_bytes({"vaderSentiment-3.3.2/LICENSE.txt": b"MIT",
                                 "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner}))

    def conllu(count, prefix):
        return "\n\n".join(f"# sent_id = {prefix}:{i}\n# text = w{i} .\n1\tw{i}\tw\tNOUN\tNN\t_\t0\troot\t_\t_\n"
                           f"2\t.\t.\tPUNCT\t.\t_\t1\tp\t_\t_" for i in range(count)) + "\n"

    sources = {"data/web.conllu": conllu(12, "web").encode(), "data/wiki.conllu": conllu(3, "wiki").encode()}
    wheel = tmp_path / "turkish_treebanks-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("turkish_treebanks-1.0.0.dist-info/LICENSE", "Apache")
        for name, data in sources.items():
            archive.writestr(name, data)
    hashes = {sdist.name: build_text_data.sha256(sdist.read_bytes()), wheel.name: build_text_data.sha256(
        wheel.read_bytes()), **{name: build_text_data.sha256(data) for name, data in sources.items()}}
    monkeypatch.setattr(build_text_data, "SOURCE_SHA256", hashes)
    files = {**build_text_data.vader_files(sdist), **build_text_data.treebank_files(wheel)}
    assert files["movieReviewSnippets_GroundTruth.txt"] == snippets
    assert files["LICENSE.vaderSentiment"] == b"MIT" and files["LICENSE.turkish-treebanks"] == b"Apache"
    lines = files["turkish_pos.tsv"].decode().splitlines()
    assert len(lines) == 15 and lines[0] == "web\ttrain\tweb:0\tw0 .\tNOUN PUNCT"
    assert [line.split("\t")[1] for line in lines[:12]] == ["train"] * 8 + ["dev", "test", "train", "train"]
    monkeypatch.setitem(build_text_data.SOURCE_SHA256, "data/wiki.conllu", "0" * 64)
    with pytest.raises(SystemExit, match="another version"):
        build_text_data.treebank_files(wheel)
