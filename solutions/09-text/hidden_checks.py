"""Lesson 09's hidden checks (instructors only: never released to learners).

Each check compares the learner's answer with a reference on many random configurations and the edge cases, after
the types; when the values differ it also runs the known mistakes and names the one the answer matches.
"""

from collections import Counter

import torch
from course_checks import CheckFailed, exercise
from lesson_checks import (
    SPECIALS,
    TAGGER_MISTAKES,
    call_accuracy,
    call_build_vocabulary,
    call_collate,
    check_counts,
    check_tagger,
    compare_collated,
    compare_vocabulary,
    vocabulary_items,
)
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

# -----------------------------------------------------------------------------------------------------------------
# References


def reference_build_vocabulary(sentences, min_count):
    counts = Counter(token for sentence in sentences for token in sentence)
    vocabulary = dict(SPECIALS)
    for token, count in counts.most_common():  # ties keep the order of first appearance
        if count >= min_count:
            vocabulary[token] = len(vocabulary)
    return vocabulary


def reference_collate_tagged(batch, pad_id=0, pad_tag=-100):
    tokens, tags = zip(*batch, strict=True)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=pad_id),
            torch.tensor([len(t) for t in tokens]),
            pad_sequence(list(tags), batch_first=True, padding_value=pad_tag))


def reference_token_accuracy(logits, tags, pad_tag=-100):
    real = tags != pad_tag
    correct = (logits.argmax(dim=-1) == tags) & real
    return int(correct.sum().item()), int(real.sum().item())


# -----------------------------------------------------------------------------------------------------------------
# Exercise 9.1 · build_vocabulary: known mistakes, as functions of (sentences, min_count)


def _ranked(counts, min_count, order, specials_first=True, pad_id=0):
    kept = [token for token in order if counts[token] >= min_count]
    if specials_first:
        vocabulary = {"<pad>": pad_id, "<unk>": 1 - pad_id}
        vocabulary.update({token: index for index, token in enumerate(kept, 2)})
        return vocabulary
    vocabulary = {token: index for index, token in enumerate(kept)}
    vocabulary.update({"<pad>": len(kept), "<unk>": len(kept) + 1})
    return vocabulary


def _by_count(counts):
    return [token for token, _ in counts.most_common()]


def vocabulary_mistakes(sentences, min_count):
    counts = Counter(token for sentence in sentences for token in sentence)
    in_sentences = Counter(token for sentence in sentences for token in set(sentence))
    strict = Counter({token: count - 1 for token, count in counts.items()})  # count > min_count
    return {
        "the cut-off count > min_count; keep tokens with count >= min_count": _ranked(strict, min_count,
                                                                                    _by_count(counts)),
        "tokens with equal counts sorted alphabetically; they keep the order in which they first appear":
            _ranked(counts, min_count, sorted(counts, key=lambda token: (-counts[token], token))),
        "counts of sentences that contain each token; count every occurrence":
            _ranked(in_sentences, min_count, _by_count(in_sentences)),
        "the least frequent tokens first; the most frequent come first": _ranked(
            counts, min_count, [token for token, _ in sorted(counts.items(), key=lambda item: item[1])]),
        "'<pad>' and '<unk>' after the tokens; they come first, with ids 0 and 1":
            _ranked(counts, min_count, _by_count(counts), specials_first=False),
        "'<pad>' and '<unk>' swapped; '<pad>' is 0 and '<unk>' is 1":
            _ranked(counts, min_count, _by_count(counts), pad_id=1),
    }


def random_sentences(generator, count, words, longest):
    sentences = []
    for _ in range(count):
        length = int(torch.randint(0, longest + 1, (), generator=generator))
        # Zipf-like: low word numbers are far more frequent.
        draws = (torch.rand(length, generator=generator) ** 2.5 * words).long().tolist()
        sentences.append([f"w{draw}" for draw in draws])
    return sentences


def check_vocabulary(build_vocabulary, sentences, min_count):
    what = f"build_vocabulary(<{len(sentences)} sentences>, min_count={min_count})"
    got = call_build_vocabulary(build_vocabulary, sentences, min_count)
    expected = reference_build_vocabulary(sentences, min_count)
    mine = dict(vocabulary_items(got, what))
    if mine != expected:
        matches = [mistake for mistake, wrong in vocabulary_mistakes(sentences, min_count).items()
                   if wrong != expected and mine == wrong]
        if matches:
            also = "".join(f"; or (the same result for this input) {mistake}" for mistake in matches[1:])
            raise CheckFailed(f"{what}: the vocabulary differs from the expected one ({len(expected)} entries): "
                              f"it has {matches[0]}{also}")
    compare_vocabulary(got, expected, sentences, min_count, what)


@exercise("ex9_1_hidden", "build_vocabulary")
def exercise_9_1(build_vocabulary):
    generator = torch.Generator().manual_seed(9101)
    check_vocabulary(build_vocabulary, [["a"]], 1)
    check_vocabulary(build_vocabulary, [["a"]], 2)  # everything below the cut-off
    check_vocabulary(build_vocabulary, [[], ["b", "a", "b"], []], 2)  # empty sentences
    check_vocabulary(build_vocabulary, [["z", "y", "x", "y", "z", "x"]], 2)  # ties: first appearance, not a-z
    check_vocabulary(build_vocabulary, [["on", "on", "on"], ["off"], ["off"], ["off"]], 1)  # per occurrence
    check_vocabulary(build_vocabulary, [["The", "film", "."], ["the", "Film", "."]], 1)  # case kept as given
    for _ in range(10):
        sentences = random_sentences(generator, int(torch.randint(1, 40, (), generator=generator)),
                                     words=int(torch.randint(3, 40, (), generator=generator)), longest=9)
        check_vocabulary(build_vocabulary, sentences, int(torch.randint(1, 5, (), generator=generator)))


# -----------------------------------------------------------------------------------------------------------------
# Exercise 9.2 · collate_tagged


def random_batch(generator, count, longest, vocab_size=50, num_tags=12):
    lengths = torch.randint(1, longest + 1, (count,), generator=generator).tolist()
    return [(torch.randint(0, vocab_size, (length,), generator=generator),
             torch.randint(0, num_tags, (length,), generator=generator)) for length in lengths]


def check_collate(collate_tagged, batch, pad_id=None, pad_tag=None):
    what, result = call_collate(collate_tagged, batch, pad_id, pad_tag)
    compare_collated(what, result, batch, 0 if pad_id is None else pad_id, -100 if pad_tag is None else pad_tag)
    expected = reference_collate_tagged(batch, *(() if pad_id is None else (pad_id,)),
                                      **({} if pad_tag is None else {"pad_tag": pad_tag}))
    for name, got, want in zip(("tokens", "lengths", "tags"), result, expected, strict=True):
        if not torch.equal(got, want):
            raise CheckFailed(f"{what}: {name}: expected {want.tolist()}, got {got.tolist()}")


@exercise("ex9_2_hidden", "collate_tagged")
def exercise_9_2(collate_tagged):
    generator = torch.Generator().manual_seed(9201)
    one = [(torch.tensor([3]), torch.tensor([0]))]
    check_collate(collate_tagged, one)  # a batch of one sentence of one token
    check_collate(collate_tagged, one, pad_id=2, pad_tag=7)
    check_collate(collate_tagged, [(torch.tensor([1, 2]), torch.tensor([0, 0]))] * 3)  # equal lengths
    check_collate(collate_tagged, [(torch.tensor([4]), torch.tensor([1])), (torch.tensor([5, 6, 7]),
                                                                            torch.tensor([0, 1, 2]))])  # short first
    check_collate(collate_tagged, random_batch(generator, 6, 9), pad_tag=-1)
    check_collate(collate_tagged, random_batch(generator, 5, 7), pad_id=1)
    for _ in range(8):
        batch = random_batch(generator, int(torch.randint(1, 9, (), generator=generator)),
                             int(torch.randint(1, 12, (), generator=generator)))
        pad_id, pad_tag = [(None, None), (0, -100), (3, -1), (1, 99)][int(torch.randint(0, 4, (), generator=generator))]
        check_collate(collate_tagged, batch, pad_id, pad_tag)


# -----------------------------------------------------------------------------------------------------------------
# Exercise 9.3 · GRUTagger


def _h_n_everywhere(parts, tokens, lengths):
    """Every position given the sentence's final states (h_n), repeated: a per-sentence summary, not per token."""
    embedding, gru, head = parts
    with torch.no_grad():
        packed = pack_padded_sequence(embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, h_n = gru(packed)
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if gru.bidirectional else h_n[-1]
        return head(final)[:, None].expand(-1, tokens.shape[1], -1)


def _backward_only(parts, tokens, lengths):
    """Only the forward half kept, the backward half zeroed (as when the head reads output[..., :H])."""
    embedding, gru, head = parts
    with torch.no_grad():
        packed = pack_padded_sequence(embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        output, _ = pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=tokens.shape[1])
        if gru.bidirectional:
            output = torch.cat([output[..., : gru.hidden_size], torch.zeros_like(output[..., gru.hidden_size:])], -1)
        return head(output)


HIDDEN_TAGGER_MISTAKES = {
    **TAGGER_MISTAKES,
    "the sentence's final state h_n at every position; a tagger reads the GRU's output at each token":
        _h_n_everywhere,
    "the forward half of each output alone; the head reads [forward | backward]": _backward_only,
}


@exercise("ex9_3_hidden", "GRUTagger")
def exercise_9_3(GRUTagger):
    def run(*arguments, seed):
        check_tagger(GRUTagger, *arguments, seed=seed, variants=HIDDEN_TAGGER_MISTAKES)

    run(9, 4, 3, 5, True, 0, [1], 1, seed=9301)  # one sentence of one token
    run(9, 4, 3, 5, False, 0, [1], 3, seed=9302)  # a batch of one, padded past its end
    run(15, 6, 5, 7, True, 0, [2, 6, 1, 4], 6, seed=9303)  # lengths in no order
    run(15, 6, 5, 7, True, 2, [3, 5, 5], 7, seed=9304)  # another pad id; padding past the longest
    run(20, 8, 6, 4, False, 0, [5, 2, 7, 7, 1], 7, seed=9305)
    run(11, 3, 2, 9, True, 0, [4, 4], 4, seed=9306)  # equal lengths: no padding at all
    generator = torch.Generator().manual_seed(9307)
    for attempt in range(6):
        count = int(torch.randint(1, 7, (), generator=generator))
        lengths = torch.randint(1, 9, (count,), generator=generator).tolist()
        total = max(lengths) + int(torch.randint(0, 3, (), generator=generator))
        bidirectional = bool(torch.randint(0, 2, (), generator=generator))
        run(int(torch.randint(5, 30, (), generator=generator)), int(torch.randint(1, 8, (), generator=generator)),
            int(torch.randint(1, 8, (), generator=generator)), int(torch.randint(2, 10, (), generator=generator)),
            bidirectional, 0, lengths, total, seed=9310 + attempt)


# -----------------------------------------------------------------------------------------------------------------
# Exercise 9.4 · token_accuracy


def accuracy_mistakes(logits, tags, pad_tag):
    real = tags != pad_tag
    right = logits.argmax(dim=-1) == tags
    mistakes = {
        "padding counted: compare the tags with pad_tag (the argument) and count only the real tokens":
            (int(right.sum()), tags.numel()),
        "pad_tag ignored (-100 used instead of the pad_tag argument)":
            (int((right & (tags != -100)).sum()), int((tags != -100).sum())),
    }
    if tags.shape[1] == logits.shape[2]:  # as many positions as tags: argmax(dim=1) has the tags' shape
        along_positions = logits.argmax(dim=1)
        mistakes["the argmax taken over dim 1 (the positions); the predicted tag is the argmax over the last "
                 "dimension (the tags)"] = (int(((along_positions == tags) & real).sum()), int(real.sum()))
    return mistakes


def check_accuracy(token_accuracy, logits, tags, pad_tag=None):
    what, result = call_accuracy(token_accuracy, logits, tags, pad_tag)
    pad = -100 if pad_tag is None else pad_tag
    expected = reference_token_accuracy(logits, tags, pad)
    real = int((tags != pad).sum())
    if isinstance(result, (tuple, list)) and len(result) == 2 and tuple(result) != expected:
        for mistake, wrong in accuracy_mistakes(logits, tags, pad).items():
            if wrong != expected and tuple(result) == wrong and all(type(v) is int for v in result):
                raise CheckFailed(f"{what}: expected (correct, counted) = {expected}, got {tuple(result)}: "
                                  f"{mistake}")
    check_counts(result, expected, what, real=real, positions=tags.numel())


def random_tagging(generator, count, longest, num_tags, dtype=torch.float32, pad_tag=-100, pad=True):
    lengths = torch.randint(1, longest + 1, (count,), generator=generator)
    if not pad:
        lengths[:] = longest
    total = int(lengths.max())
    logits = torch.randn(count, total, num_tags, generator=generator, dtype=dtype)
    tags = torch.randint(0, num_tags, (count, total), generator=generator)
    # About half the real tokens are right: the tag is the argmax where a coin says so.
    coin = torch.rand(count, total, generator=generator) < 0.5
    tags = torch.where(coin, logits.argmax(dim=-1), tags)
    tags[torch.arange(total)[None, :] >= lengths[:, None]] = pad_tag
    return logits, tags


@exercise("ex9_4_hidden", "token_accuracy")
def exercise_9_4(token_accuracy):
    generator = torch.Generator().manual_seed(9401)
    check_accuracy(token_accuracy, *random_tagging(generator, 1, 1, 3))  # one token
    check_accuracy(token_accuracy, *random_tagging(generator, 4, 6, 5, pad=False))  # no padding at all
    check_accuracy(token_accuracy, *random_tagging(generator, 3, 5, 5, dtype=torch.float64))
    check_accuracy(token_accuracy, *random_tagging(generator, 5, 5, 5))  # as many positions as tags
    logits, tags = random_tagging(generator, 4, 7, 6, pad_tag=-1)
    check_accuracy(token_accuracy, logits, tags, pad_tag=-1)
    logits, tags = random_tagging(generator, 3, 4, 4, pad_tag=99)
    check_accuracy(token_accuracy, logits, tags, pad_tag=99)
    logits, tags = random_tagging(generator, 3, 5, 4)
    all_right = torch.where(tags == -100, tags, logits.argmax(dim=-1))
    check_accuracy(token_accuracy, logits, all_right)  # every real token right
    for _ in range(6):
        check_accuracy(token_accuracy, *random_tagging(generator, int(torch.randint(1, 8, (), generator=generator)),
                                                       int(torch.randint(1, 10, (), generator=generator)),
                                                       int(torch.randint(2, 15, (), generator=generator))))

