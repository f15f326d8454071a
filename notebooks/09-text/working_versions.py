"""The course's working versions of Lesson 09's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import collections
import copy
import math
import os
import re
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader
from course_checks import CheckFailed, yours_or_working  # noqa: F401 (CheckFailed: what a failed check raises)


def build_vocabulary(sentences, min_count):
    """{token: id}: "<pad>" 0, "<unk>" 1, then the tokens occurring at least min_count times, most frequent first
    (ties in order of first appearance)."""
    counts = collections.Counter(token for sentence in sentences for token in sentence)
    vocabulary = {"<pad>": 0, "<unk>": 1}
    for token, count in counts.most_common():
        if count >= min_count:
            vocabulary[token] = len(vocabulary)
    return vocabulary


def collate_tagged(batch, pad_id=0, pad_tag=-100):
    """[(tokens, tags)] -> tokens (N, L) padded with pad_id, lengths (N,) int64 on the CPU, tags (N, L) padded with
    pad_tag."""
    tokens, tags = zip(*batch, strict=True)
    lengths = torch.tensor([len(t) for t in tokens], dtype=torch.int64)
    return (pad_sequence(list(tokens), batch_first=True, padding_value=pad_id), lengths,
            pad_sequence(list(tags), batch_first=True, padding_value=pad_tag))


class GRUTagger(nn.Module):
    """Embedding -> packed (bi)GRU -> a linear layer at every token: tag logits (N, L, num_tags)."""
    def __init__(self, vocab_size, embedding_dim, hidden_size, num_tags, bidirectional=True, pad_id=0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.gru = nn.GRU(embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_tags)

    def forward(self, tokens, lengths):
        """tokens: (N, L) int64, padded; lengths: 1-D int64 CPU tensor. Returns (N, L, num_tags)."""
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.gru(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=tokens.shape[1])
        return self.head(output)


def token_accuracy(logits, tags, pad_tag=-100):
    """(correct, counted) over the positions whose tag is not pad_tag, as Python ints."""
    real = tags != pad_tag
    correct = (logits.argmax(dim=-1) == tags) & real
    return int(correct.sum().item()), int(real.sum().item())
