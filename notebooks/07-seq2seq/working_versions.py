"""The course's working versions of Lesson 07's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import datetime
import os
import random
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tqdm.auto import tqdm
import builtins as _builtins
import numbers
import operator
import copy


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


def sequence_loss(logits, targets, pad_id):
    """Mean cross-entropy over the positions where targets != pad_id. logits (N, T, V), targets (N, T)."""
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad_id)


def greedy_decode(encoder, decoder, source, lengths, max_length):
    """Greedy decoding: for each of the N samples, the list of chosen token ids (ints), without <sos> and <eos>,
    stopping at the sample's first <eos> or after max_length tokens."""
    with torch.no_grad():
        _, h_n = encoder(source, lengths)
        h = concat_directions(h_n)
        token = torch.full((source.shape[0],), SOS, dtype=torch.long, device=source.device)
        results = [[] for _ in range(source.shape[0])]
        finished = [False] * source.shape[0]
        for _ in range(max_length):
            logits, h = decode_step(decoder, token, h)
            token = logits.argmax(dim=-1)
            for n, chosen in enumerate(token.tolist()):
                if finished[n]:
                    continue
                if chosen == EOS:
                    finished[n] = True
                else:
                    results[n].append(chosen)
            if all(finished):
                break
        return results
