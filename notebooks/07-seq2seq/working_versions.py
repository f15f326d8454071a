"""The course's working versions of Lesson 07's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import copy
import datetime
import functools
import os
import random
import re
from collections import Counter
from typing import NamedTuple
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from course_checks import CheckFailed, yours_or_working  # noqa: F401 (CheckFailed: what a failed check raises)


def bridge(h_n, num_layers):
    """(2 * num_layers, N, H) encoder h_n (layer-major) -> (num_layers, N, 2H) decoder h_0: [forward | backward]
    of the same layer and sample."""
    _, batch_size, hidden_size = h_n.shape
    by_layer = h_n.view(num_layers, 2, batch_size, hidden_size)  # [layer, direction, sample, feature]
    return by_layer.permute(0, 2, 1, 3).reshape(num_layers, batch_size, 2 * hidden_size).contiguous()


def decode_step(decoder, token, h):
    """One decoder step: token (N,) int64, h (num_layers, N, hidden) -> (logits (N, V), new h)."""
    embedded = decoder.embedding(token).unsqueeze(1)  # (N, 1, E): a sequence of one step
    output, new_h = decoder.gru(embedded, h)
    return decoder.out(output[:, 0]), new_h


def attend(query, encoder_outputs, lengths):
    """Dot-product attention over each sample's real positions: query (N, D), encoder_outputs (N, S, D), lengths
    (N,) -> (context (N, D), weights (N, S)), the weights 0 at the padded positions."""
    scores = (encoder_outputs @ query.unsqueeze(-1)).squeeze(-1)  # (N, S)
    positions = torch.arange(encoder_outputs.shape[1], device=encoder_outputs.device)
    padded = positions[None, :] >= lengths.to(encoder_outputs.device)[:, None]
    weights = scores.masked_fill(padded, float("-inf")).softmax(dim=-1)
    context = (weights.unsqueeze(-1) * encoder_outputs).sum(dim=1)
    return context, weights


def greedy_decode(step, state, batch_size, sos_id, eos_id, max_length):
    """Greedy decoding: for each of the batch_size samples, the list of chosen token ids (ints), without sos_id and
    eos_id, stopping at the sample's first eos_id or after max_length tokens."""
    with torch.no_grad():
        token = torch.full((batch_size,), sos_id, dtype=torch.long)
        results = [[] for _ in range(batch_size)]
        finished = [False] * batch_size
        for _ in range(max_length):
            logits, state = step(token, state)
            token = logits.argmax(dim=-1)
            for n, chosen in enumerate(token.tolist()):
                if finished[n]:
                    continue
                if chosen == eos_id:
                    finished[n] = True
                else:
                    results[n].append(chosen)
            if all(finished):
                break
        return results
