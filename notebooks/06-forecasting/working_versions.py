"""The course's working versions of Lesson 06's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import copy
import csv
import math
import os
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from course_checks import CheckFailed, yours_or_working  # noqa: F401


def make_windows(series, input_length, horizon):
    """All (input, target) windows of a 1-D series: inputs (N, input_length), targets (N, horizon), with
    N = len(series) - input_length - horizon + 1. Raises ValueError when the series is too short."""
    if len(series) < input_length + horizon:
        raise ValueError(f"a series of {len(series)} values is too short for one window of input_length="
                         f"{input_length} and horizon={horizon}")
    windows = series.unfold(0, input_length + horizon, 1)  # (N, input_length + horizon), a view
    return windows[:, :input_length], windows[:, input_length:]


def scale_splits(train, val, test):
    """(train_scaled, val_scaled, test_scaled, (mean, std)): every part scaled with the mean and standard
    deviation of train alone; mean and std as Python floats."""
    mean, std = train.mean().item(), train.std().item()
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, (mean, std)


def unscale(values, stats):
    """values (any shape) back in the series' units: the inverse of the scaling with stats = (mean, std)."""
    mean, std = stats
    return values * std + mean


def rollout(gru, head, history, steps):
    """`steps` forecasts after `history`, each fed back in as the next input while the GRU's state is carried from
    call to call. Same layout as history: (steps, F), (N, steps, F) if gru.batch_first, else (steps, N, F)."""
    time_dim = 1 if gru.batch_first and history.dim() == 3 else 0
    with torch.no_grad():
        output, h = gru(history)  # warm up on the whole history
        last = output.narrow(time_dim, output.shape[time_dim] - 1, 1)  # the output at the last step
        forecasts = [head(last)]
        for _ in range(steps - 1):
            output, h = gru(forecasts[-1], h)  # one step: the forecast goes in, the state carries over
            forecasts.append(head(output))
    return torch.cat(forecasts, dim=time_dim)


def run_in_chunks(gru, x, chunk_length):
    """(output, h_n) equal to gru(x), from one call per chunk of at most chunk_length steps, each call's h_n
    passed on as the next call's h_0. Raises ValueError for a bidirectional GRU."""
    if gru.bidirectional:
        raise ValueError("a bidirectional GRU cannot run in chunks: its backward direction starts at the end of the "
                         "whole sequence")
    time_dim = 1 if gru.batch_first and x.dim() == 3 else 0
    outputs, h = [], None
    for chunk in x.split(chunk_length, dim=time_dim):
        output, h = gru(chunk, h)
        outputs.append(output)
    return torch.cat(outputs, dim=time_dim), h


def tbptt_epoch(model, series, chunk_length, optimizer):
    """One pass over series (N, T, F) in chunks of chunk_length steps: inputs steps 0..T-2, targets steps 1..T-1,
    one optimizer step per chunk on the mean squared error, the state carried over and detached.
    Returns the chunks' losses as a list of floats."""
    inputs, targets = series[:, :-1], series[:, 1:]
    h, losses = None, []
    for x, y in zip(inputs.split(chunk_length, dim=1), targets.split(chunk_length, dim=1), strict=True):
        if h is not None:
            h = h.detach()  # keep the state's value, drop the graph of the chunks before
        predicted, h = model(x, h)
        loss = nn.functional.mse_loss(predicted, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
