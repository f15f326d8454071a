"""The course's working versions of Lesson 08's exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""

import collections
import copy
import inspect
import io
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.benchmark import Timer
from course_checks import CheckFailed, yours_or_working  # noqa: F401 (the error a failed check raises; a helper)


def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    """Median time of one call of fn(), in the units of clock(), after `warmup` untimed calls.

    On a GPU (CUDA or MPS), synchronize() (default: the device's own) is called right before each reading of the
    clock. Raises ValueError if repeats < 1 or warmup < 0.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"median_time needs repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    kind = torch.device(device).type
    if kind in ("cuda", "mps"):
        wait = synchronize or {"cuda": torch.cuda.synchronize, "mps": torch.mps.synchronize}[kind]
    else:
        def wait():
            pass
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        wait()
        start = clock()
        fn()
        wait()
        times.append(clock() - start)
    return float(statistics.median(times))


def autocast_dtype(device_type):
    """The dtype torch.autocast should use on `device_type` ("cuda", "mps" or "cpu")."""
    return torch.bfloat16 if device_type == "cpu" else torch.float16


def autocast_max_error(model, x, low_dtype=None):
    """(low_dtype, max |output under autocast - output in float32|) for model(x) on x's device."""
    if low_dtype is None:
        low_dtype = autocast_dtype(x.device.type)
    with torch.no_grad():
        reference = model(x)[0]
        with torch.autocast(device_type=x.device.type, dtype=low_dtype):
            low = model(x)[0]
    return low_dtype, (low.float() - reference.float()).abs().max().item()


class LearnableInitialState(nn.Module):
    """A trained initial state for an nn.GRU: one parameter h0 (num_layers * D, 1, H), zeros at first;
    forward(batch_size) returns it for the whole batch, (num_layers * D, batch_size, H), contiguous."""

    def __init__(self, hidden_size, num_layers=1, bidirectional=False):
        super().__init__()
        directions = 2 if bidirectional else 1
        self.h0 = nn.Parameter(torch.zeros(num_layers * directions, 1, hidden_size))

    def forward(self, batch_size):
        return self.h0.expand(-1, batch_size, -1).contiguous()


def keras_gru_to_torch(kernel, recurrent_kernel, bias=None):
    """state_dict of a one-layer nn.GRU equivalent to a Keras GRU(reset_after=True) with these weights."""
    def reorder(columns):  # Keras (rows, 3H) with blocks z | r | h -> PyTorch (3H, rows) with blocks r | z | n
        z, r, h = np.split(np.asarray(columns), 3, axis=-1)
        return torch.from_numpy(np.ascontiguousarray(np.concatenate([r, z, h], axis=-1).T))

    state = {"weight_ih_l0": reorder(kernel), "weight_hh_l0": reorder(recurrent_kernel)}
    if bias is not None:
        bias = np.asarray(bias)
        state["bias_ih_l0"] = reorder(bias[0])
        state["bias_hh_l0"] = reorder(bias[1])
    return state
