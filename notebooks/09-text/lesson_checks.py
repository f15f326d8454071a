"""Lesson 09's visible checks: run them from the notebook's check cells (``checks.exercise_9_1(build_vocabulary)``).

Each check calls your answer on small, fixed inputs, compares what comes back with values worked out by hand or
computed with PyTorch itself, and raises ``CheckFailed`` with what was expected and what came back (and the known
mistake, when one explains it). The hidden checks run the same kind of comparison on many more configurations.
"""

import copy

import torch
from course_checks import (
    CheckFailed,
    check,
    check_shape,
    check_tensor,
    check_type,
    exercise,
    is_module,
    type_name,
    while_checking,
)
from torch import nn

SPECIALS = {"<pad>": 0, "<unk>": 1}


# -----------------------------------------------------------------------------------------------------------------
# Exercise 9.1 · build_vocabulary


def vocabulary_items(value, what):
    """The (token, id) pairs of a returned vocabulary: a plain dict whose keys are str and ids int (not bool)."""
    if type(value) is not dict:  # a plain dict: what the course's grader brings back as data (an OrderedDict is not)
        raise CheckFailed(f"{what}: expected a plain dict, got {type_name(value)}: {value!r:.80}"
                          + ("; return dict(...) of it" if type_name(value) in ("OrderedDict", "defaultdict",
                                                                                "Counter") else ""))
    items = []
    for token, index in dict.items(value):
        check(type(token) is str, f"{what}: every key must be a token (str), got {type(token).__name__}: {token!r:.60}")
        check(type(index) is int, f"{what}: the id of {token!r} must be an int, got {type(index).__name__}: "
                                  f"{index!r:.60}")
        items.append((token, index))
    return items


def token_counts(sentences):
    """{token: number of occurrences}, in order of first appearance."""
    counts = {}
    for sentence in sentences:
        for token in sentence:
            counts[token] = counts.get(token, 0) + 1
    return counts


def compare_vocabulary(got, expected, sentences, min_count, what):
    """`got` (a returned vocabulary) must equal `expected` ({token: id}); when it does not, say how it differs."""
    items = vocabulary_items(got, what)
    mine = dict(items)
    if mine == expected:
        return
    counts = token_counts(sentences)
    for special, index in SPECIALS.items():
        check(special in mine, f"{what}: {special!r} is missing: the vocabulary starts with '<pad>': 0, '<unk>': 1")
        if mine[special] != index:
            swapped = " (<pad> and <unk> swapped)" if mine.get("<pad>") == 1 and mine.get("<unk>") == 0 else ""
            raise CheckFailed(f"{what}: {special!r} has id {mine[special]}, expected {index}{swapped}: '<pad>' is 0 "
                              f"(what padding is filled with) and '<unk>' is 1")
    missing = [token for token in expected if token not in mine]
    extra = [token for token in mine if token not in expected]
    if missing:
        at_cut_off = [token for token in missing if counts.get(token) == min_count]
        hint = (f"; {at_cut_off[:3]} occur exactly min_count={min_count} times: keep every token with count >= "
                f"min_count" if at_cut_off else "")
        raise CheckFailed(f"{what}: tokens missing from the vocabulary: {missing[:5]} (counts "
                          f"{[counts.get(t, 0) for t in missing[:5]]}){hint}")
    if extra:
        raise CheckFailed(f"{what}: tokens that should not be in the vocabulary: {extra[:5]} (counts "
                          f"{[counts.get(t, 0) for t in extra[:5]]}, below min_count={min_count})")
    ids = sorted(mine.values())
    check(ids == list(range(len(ids))), f"{what}: the ids must be 0, 1, ..., {len(ids) - 1} with no gaps or repeats, "
                                        f"got {ids[:12]}")
    order = sorted((index, token) for token, index in mine.items() if token not in SPECIALS)
    want = sorted((index, token) for token, index in expected.items() if token not in SPECIALS)
    got_order, want_order = [token for _, token in order], [token for _, token in want]
    raise CheckFailed(f"{what}: the tokens are in another order: expected {want_order[:8]} (counts "
                      f"{[counts[t] for t in want_order[:8]]}), got {got_order[:8]}: most frequent first, and tokens "
                      f"with the same count in the order they first appear in the sentences")


def call_build_vocabulary(build_vocabulary, sentences, min_count):
    """Call the answer on a copy; check that it did not change its input."""
    given = copy.deepcopy(sentences)
    with while_checking(f"build_vocabulary({sentences!r:.80}, min_count={min_count})"):
        vocabulary = build_vocabulary(given, min_count)
    check(given == sentences, f"build_vocabulary(..., min_count={min_count}) changed the sentences it was given: "
                              f"leave them as they are")
    return vocabulary


REVIEWS = [["the", "film", "is", "good"], ["the", "plot", "is", "thin", "."], ["good", "film", "."], ["a", "film"]]
# Counts: film 3; the, is, good, "." 2 each (first seen in that order); plot, thin, a 1 each.
REVIEW_VOCABULARIES = {
    1: {"<pad>": 0, "<unk>": 1, "film": 2, "the": 3, "is": 4, "good": 5, ".": 6, "plot": 7, "thin": 8, "a": 9},
    2: {"<pad>": 0, "<unk>": 1, "film": 2, "the": 3, "is": 4, "good": 5, ".": 6},
    3: {"<pad>": 0, "<unk>": 1, "film": 2},
    4: {"<pad>": 0, "<unk>": 1},
}


@exercise("ex9_1_visible", "build_vocabulary")
def exercise_9_1(build_vocabulary):
    for min_count, expected in REVIEW_VOCABULARIES.items():
        got = call_build_vocabulary(build_vocabulary, REVIEWS, min_count)
        compare_vocabulary(got, expected, REVIEWS, min_count, f"build_vocabulary(REVIEWS, min_count={min_count})")
    got = call_build_vocabulary(build_vocabulary, [], 1)
    compare_vocabulary(got, dict(SPECIALS), [], 1, "build_vocabulary([], min_count=1)")


# -----------------------------------------------------------------------------------------------------------------
# Exercise 9.2 · collate_tagged


def call_collate(collate_tagged, batch, pad_id=None, pad_tag=None):
    """The answer's (tokens, lengths, tags) for `batch` (pad values given only when not None), checked for type
    and shape; the batch is handed over as a copy and must come back unchanged."""
    given = [(tokens.clone(), tags.clone()) for tokens, tags in batch]
    arguments = {key: value for key, value in (("pad_id", pad_id), ("pad_tag", pad_tag)) if value is not None}
    what = (f"collate_tagged(batch of {len(batch)} sentences with lengths {[len(t) for t, _ in batch]}"
            + "".join(f", {key}={value}" for key, value in arguments.items()) + ")")
    with while_checking(what):
        result = collate_tagged(given, **arguments)
    unchanged = all(torch.equal(a, b) and torch.equal(c, d) for (a, c), (b, d) in zip(given, batch, strict=True))
    check(unchanged, f"{what} changed the tensors of the batch it was given: leave them as they are")
    check_type(result, (tuple, list), what)
    check(len(result) == 3, f"{what}: expected 3 things (tokens, lengths, tags), got {len(result)}")
    return what, result


def compare_collated(what, result, batch, pad_id, pad_tag):
    tokens, lengths, tags = result
    count, longest = len(batch), max(len(t) for t, _ in batch)
    true_lengths = [len(t) for t, _ in batch]
    for name, value in (("tokens", tokens), ("lengths", lengths), ("tags", tags)):
        check_type(value, torch.Tensor, f"{what}: {name}")
        check(value.dtype == torch.int64, f"{what}: {name}: expected dtype torch.int64, got {value.dtype}"
              + (" (pack_padded_sequence wants int64 lengths on the CPU; floats are truncated silently)"
                 if name == "lengths" else ""))
    check(lengths.device.type == "cpu", f"{what}: lengths is on {lengths.device}: pack_padded_sequence wants the "
                                        f"lengths on the CPU")
    check_shape(tuple(lengths.shape), (count,), f"{what}: lengths.shape")
    if lengths.tolist() != true_lengths:
        order = " (sorted: keep the batch's order)" if sorted(lengths.tolist()) == sorted(true_lengths) else ""
        raise CheckFailed(f"{what}: lengths: expected {true_lengths}, got {lengths.tolist()}{order}")
    for name, value in (("tokens", tokens), ("tags", tags)):
        if tuple(value.shape) == (longest, count) and longest != count:
            raise CheckFailed(f"{what}: {name} has shape {tuple(value.shape)}, (longest, sentences): the batch "
                              f"must come first, ({count}, {longest}): pad_sequence(..., batch_first=True)")
        check_shape(tuple(value.shape), (count, longest), f"{what}: {name}.shape")
    real = torch.arange(longest)[None, :] < torch.tensor(true_lengths)[:, None]
    for name, value, pad, other, index in (("tokens", tokens, pad_id, pad_tag, 0), ("tags", tags, pad_tag, pad_id, 1)):
        padding = value[~real]
        if padding.numel() and not bool((padding == pad).all()):
            guess = ""
            if name == "tags" and bool((padding == 0).all()):
                guess = ": they hold 0, a real tag id: the loss would count padding as that tag"
            elif bool((padding == other).all()):
                guess = f": they hold {other}, the other pad value"
            elif bool((padding == 0).all()):
                guess = ": they hold 0"
            raise CheckFailed(f"{what}: {name} after each sentence's end must be {pad}, got "
                              f"{sorted(set(padding.tolist()))[:5]}{guess}")
        for n, item in enumerate(batch):
            if not torch.equal(value[n, : true_lengths[n]], item[index]):
                raise CheckFailed(f"{what}: {name} of sentence {n}: expected {item[index].tolist()}, got "
                                  f"{value[n, : true_lengths[n]].tolist()}"
                                  + (" (the batch's order must be kept)" if name == "tokens" else ""))


TAGGED_BATCH = [(torch.tensor([5, 3, 8]), torch.tensor([1, 0, 2])), (torch.tensor([4]), torch.tensor([3])),
                (torch.tensor([7, 2]), torch.tensor([0, 0]))]


@exercise("ex9_2_visible", "collate_tagged")
def exercise_9_2(collate_tagged):
    what, result = call_collate(collate_tagged, TAGGED_BATCH)
    compare_collated(what, result, TAGGED_BATCH, 0, -100)
    expected_tokens = torch.tensor([[5, 3, 8], [4, 0, 0], [7, 2, 0]])
    expected_tags = torch.tensor([[1, 0, 2], [3, -100, -100], [0, 0, -100]])
    check(torch.equal(result[0], expected_tokens) and torch.equal(result[2], expected_tags),
          f"{what}: expected tokens {expected_tokens.tolist()} and tags {expected_tags.tolist()}")
    what, result = call_collate(collate_tagged, TAGGED_BATCH, pad_id=1, pad_tag=-1)
    compare_collated(what, result, TAGGED_BATCH, 1, -1)
    one = [(torch.tensor([9]), torch.tensor([4]))]
    what, result = call_collate(collate_tagged, one)
    compare_collated(what, result, one, 0, -100)


# -----------------------------------------------------------------------------------------------------------------
# Exercise 9.3 · GRUTagger


def tagger_parts(vocab_size, embedding_dim, hidden_size, num_tags, bidirectional, pad_id, seed):
    """nn.Embedding, nn.GRU and nn.Linear with weights drawn from a generator seeded with `seed` (the global random
    state is left alone), and the state_dict a GRUTagger with those submodules has."""
    generator = torch.Generator().manual_seed(seed)
    embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
    gru = nn.GRU(embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
    head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_tags)
    with torch.no_grad():
        for module in (embedding, gru, head):
            for parameter in module.parameters():
                parameter.copy_(torch.rand(parameter.shape, generator=generator) * 1.6 - 0.8)
        embedding.weight[pad_id] = 0
    state = {f"{prefix}.{key}": value.clone() for prefix, module in (("embedding", embedding), ("gru", gru),
                                                                      ("head", head))
             for key, value in module.state_dict().items()}
    return embedding, gru, head, state


def tagger_batch(lengths, total_length, vocab_size, pad_id, seed):
    """Token ids (N, total_length), pad_id after each sentence's end, and the lengths (int64, CPU)."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.full((len(lengths), total_length), pad_id, dtype=torch.int64)
    for n, length in enumerate(lengths):
        tokens[n, :length] = torch.randint(0, vocab_size, (length,), generator=generator)
    return tokens, torch.tensor(lengths)


def each_sentence_alone(embedding, gru, head, tokens, lengths):
    """[logits (length, num_tags)] of every sentence run alone through the same modules (no padding at all)."""
    with torch.no_grad():
        return [head(gru(embedding(tokens[n, :length])[None])[0][0]) for n, length in enumerate(lengths.tolist())]


def over_the_padding(embedding, gru, head, tokens):
    """Logits (N, L, num_tags) of the GRU run over the padded batch without packing (a known mistake)."""
    with torch.no_grad():
        return head(gru(embedding(tokens))[0])


def check_tagger(GRUTagger, *arguments, seed, variants=None):
    """check_one_tagger, with the global random state saved and restored around it (building modules draws
    their initial weights from it): a check leaves the notebook's random numbers as they were."""
    with torch.random.fork_rng(devices=[]):
        check_one_tagger(GRUTagger, *arguments, seed=seed, variants=variants)


def check_one_tagger(GRUTagger, vocab_size, embedding_dim, hidden_size, num_tags, bidirectional, pad_id, lengths,
                     total_length, seed, variants=None):
    """Build the learner's GRUTagger, load a fixed state_dict, and compare its logits at every real token with each
    sentence run alone through PyTorch's modules. `variants` ({mistake: function of (parts, tokens, lengths)
    returning logits (N, L, K)}) name a known mistake when the values differ."""
    configuration = (f"GRUTagger({vocab_size}, {embedding_dim}, {hidden_size}, {num_tags}, bidirectional="
                     f"{bidirectional}, pad_id={pad_id})")
    embedding, gru, head, state = tagger_parts(vocab_size, embedding_dim, hidden_size, num_tags, bidirectional,
                                               pad_id, seed)
    tokens, lengths = tagger_batch(lengths, total_length, vocab_size, pad_id, seed + 1)
    with while_checking(configuration):
        model = GRUTagger(vocab_size, embedding_dim, hidden_size, num_tags, bidirectional=bidirectional,
                          pad_id=pad_id)
    check(is_module(model), f"{configuration}: expected an nn.Module, got {type(model).__name__}")
    with while_checking(f"{configuration}.embedding.padding_idx"):
        padding_idx = model.embedding.padding_idx
    check(padding_idx == pad_id, f"{configuration}: embedding.padding_idx is {padding_idx}, expected {pad_id}: "
                                 f"nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id) keeps the pad row at "
                                 f"zero and gives it no gradient")
    try:
        model.load_state_dict(state)
    except Exception as error:
        shapes = {key: tuple(value.shape) for key, value in state.items()}
        raise CheckFailed(f"{configuration}: load_state_dict with the submodules embedding, gru and head failed "
                          f"({type(error).__name__}: {str(error)[:300]}). Expected these names and shapes: "
                          f"{shapes}") from None
    model.eval()
    what = f"{configuration} on tokens {tuple(tokens.shape)}, lengths {lengths.tolist()}"
    with while_checking(what):
        try:
            logits = model(tokens.clone(), lengths.clone())
        except RuntimeError as error:
            if "must be sorted" in str(error):
                raise CheckFailed(f"{what}: {error} -- pass enforce_sorted=False to pack_padded_sequence: the "
                                  f"lengths come in any order") from None
            raise
    check_type(logits, torch.Tensor, f"{what}: the logits")
    count = len(lengths)
    if logits.dim() == 3 and tuple(logits.shape) == (count, int(lengths.max()), num_tags) \
            and int(lengths.max()) != total_length:
        raise CheckFailed(f"{what}: the logits have shape {tuple(logits.shape)}, expected ({count}, {total_length}, "
                          f"{num_tags}): one row per position of the input. pad_packed_sequence stops at the longest "
                          f"length unless you pass total_length=tokens.shape[1]")
    if logits.dim() == 2 and tuple(logits.shape) == (count, num_tags):
        raise CheckFailed(f"{what}: the logits have shape {tuple(logits.shape)}, one row per sentence; a tagger "
                          f"gives one row per token, ({count}, {total_length}, {num_tags}): use the GRU's output, "
                          f"not h_n")
    check_shape(tuple(logits.shape), (count, total_length, num_tags), f"{what}: logits.shape")
    check(logits.dtype == torch.float32, f"{what}: logits: expected dtype torch.float32, got {logits.dtype}")
    alone = each_sentence_alone(embedding, gru, head, tokens, lengths)
    got = [logits[n, :length].detach().cpu() for n, length in enumerate(lengths.tolist())]
    parts = (embedding, gru, head)
    for n, (mine, want) in enumerate(zip(got, alone, strict=True)):
        try:
            check_tensor(mine, want, f"{what}: logits of sentence {n} (length {lengths[n].item()})")
        except CheckFailed as failure:
            for mistake, variant in (variants or {}).items():
                wrong = variant(parts, tokens, lengths)[n, : lengths[n]]
                if torch.allclose(mine, wrong, rtol=1e-5, atol=1e-5):
                    raise CheckFailed(f"{failure}. They match {mistake}") from None
            raise


TAGGER_MISTAKES = {
    "a GRU run over the padding (not packed): in the backward direction each sentence then starts at the padding; "
    "pack the batch with pack_padded_sequence(..., enforce_sorted=False)":
        lambda parts, tokens, lengths: over_the_padding(*parts, tokens),
}


@exercise("ex9_3_visible", "GRUTagger")
def exercise_9_3(GRUTagger):
    check_tagger(GRUTagger, 12, 5, 4, 6, True, 0, [4, 2, 3], 4, seed=931, variants=TAGGER_MISTAKES)
    check_tagger(GRUTagger, 10, 3, 5, 4, False, 0, [3, 1], 5, seed=932, variants=TAGGER_MISTAKES)


# -----------------------------------------------------------------------------------------------------------------
# Exercise 9.4 · token_accuracy


def check_counts(result, expected, what, real, positions):
    """`result` must be a pair of Python ints equal to `expected` (correct, counted)."""
    check_type(result, (tuple, list), what)
    check(len(result) == 2, f"{what}: expected 2 numbers (correct, counted), got {len(result)}")
    for name, value in zip(("correct", "counted"), result, strict=True):
        if isinstance(value, torch.Tensor):
            raise CheckFailed(f"{what}: {name} is a tensor; return Python ints (tensor.item())")
        check(type(value) is int, f"{what}: {name}: expected an int, got {type(value).__name__}: {value!r:.60}")
    correct, counted = result
    if (correct, counted) == tuple(expected):
        return
    if counted == positions and positions != real:
        raise CheckFailed(f"{what}: expected (correct, counted) = {tuple(expected)}, got {(correct, counted)}: you "
                          f"counted all {positions} positions, padding included; count only the tokens whose tag is "
                          f"not pad_tag ({real} of them)")
    raise CheckFailed(f"{what}: expected (correct, counted) = {tuple(expected)}, got {(correct, counted)}")


def call_accuracy(token_accuracy, logits, tags, pad_tag=None):
    given_logits, given_tags = logits.clone(), tags.clone()
    arguments = {} if pad_tag is None else {"pad_tag": pad_tag}
    what = (f"token_accuracy(logits {tuple(logits.shape)} {logits.dtype}, tags {tags.tolist()!s:.80}"
            + (f", pad_tag={pad_tag}" if pad_tag is not None else "") + ")")
    with while_checking(what):
        result = token_accuracy(given_logits, given_tags, **arguments)
    check(torch.equal(given_logits, logits) and torch.equal(given_tags, tags),
          f"{what} changed its inputs: leave them as they are")
    return what, result


ACCURACY_LOGITS = torch.tensor([[[2.0, 0.5, -1.0], [0.1, 0.3, 0.2], [1.0, -1.0, 3.0]],
                                [[-0.5, 1.5, 0.0], [0.7, 0.6, 0.5], [0.0, 0.0, 1.0]]])
# argmax: [[0, 1, 2], [1, 0, 2]]
ACCURACY_TAGS = torch.tensor([[0, 2, 2], [1, -100, -100]])  # real: 4 tokens; right: (0,0), (0,2), (1,0)


@exercise("ex9_4_visible", "token_accuracy")
def exercise_9_4(token_accuracy):
    what, result = call_accuracy(token_accuracy, ACCURACY_LOGITS, ACCURACY_TAGS)
    check_counts(result, (3, 4), what, real=4, positions=6)
    tags = torch.where(ACCURACY_TAGS == -100, -1, ACCURACY_TAGS)
    what, result = call_accuracy(token_accuracy, ACCURACY_LOGITS, tags, pad_tag=-1)
    check_counts(result, (3, 4), what, real=4, positions=6)
    what, result = call_accuracy(token_accuracy, ACCURACY_LOGITS[:1, :1], ACCURACY_TAGS[:1, :1])
    check_counts(result, (1, 1), what, real=1, positions=1)
