"""The course's working versions of Lesson 05's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import copy
import math
import os
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from course_checks import CheckFailed, yours_or_working  # noqa: F401 (CheckFailed: what a failed check raises)


def collate(batch):
    """Pad a list of (sequence, label) pairs into one batch.

    batch: a list of N pairs; sequence a (length_n, F) tensor, label an int.
    Returns (padded, lengths, labels): padded (N, max length, F), zeros after each sequence's end, the dtype of the
    sequences; lengths a 1-D int64 CPU tensor; labels a 1-D int64 tensor; all three in the order of `batch`.
    """
    sequences, labels = zip(*batch, strict=True)
    padded = pad_sequence(list(sequences), batch_first=True)
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    return padded, lengths, torch.tensor(labels, dtype=torch.int64)


class SequenceClassifier(nn.Module):
    """A GRU over a packed batch, then a linear layer on the top layer's final state(s)."""

    def __init__(self, input_size, hidden_size, num_classes, num_layers=1, bidirectional=False):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                          batch_first=True)
        self.head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_classes)

    def forward(self, x, lengths):
        """x: (N, L, input_size) padded, batch first; lengths: 1-D int64 CPU tensor. Returns (N, num_classes)."""
        _, h_n = self.gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.gru.bidirectional else h_n[-1]
        return self.head(final)


def masked_cross_entropy(logits, targets, lengths):
    """Cross-entropy averaged over the real steps only.

    logits: (N, L, C); targets: (N, L) int64 (arbitrary at padded steps); lengths: 1-D int64 CPU tensor.
    Returns a 0-d tensor: the mean over all steps t < lengths[n] of the batch, each real step weighing the same.
    """
    mask = torch.arange(logits.shape[1]) < lengths[:, None]  # (N, L), True at real steps (on the CPU)
    mask = mask.to(logits.device)
    return F.cross_entropy(logits[mask], targets[mask])


def train_step(model, batch, optimizer, max_norm):
    """One step on one batch (x, lengths, labels): forward, cross-entropy, backward, clip to max_norm, update.
    Returns the batch's loss (before the update) as a float."""
    x, lengths, labels = batch
    model_device = next(model.parameters()).device
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x.to(model_device), lengths), labels.to(model_device))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()
