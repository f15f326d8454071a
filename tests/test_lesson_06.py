"""Lesson 06's checks grade fairly: plausible forecasting mistakes (windows off by one, scaling statistics that leak
the future, a state that is not carried or not detached, batch_first mixed up, chunks cut wrongly, a bidirectional
GRU accepted) lose points, correct answers written differently score full marks.

How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests)."""

import base64
import hashlib
import zipfile

import pytest
import torch

from course.lessons import nbgrader, notebook_path, read
from tests.check_cells import in_lesson_folder, run_check_cells
from tests.conftest import REPO
from tests.harness import LessonTests
from tools import build_co2

LESSON = "06-forecasting"
EXERCISES = {  # answer cell -> its visible and hidden check cells
    "ex6_1_make_windows": ("ex6_1_visible", "ex6_1_hidden"),
    "ex6_2_scaling": ("ex6_2_visible", "ex6_2_hidden"),
    "ex6_3_rollout": ("ex6_3_visible", "ex6_3_hidden"),
    "ex6_4_run_in_chunks": ("ex6_4_visible", "ex6_4_hidden"),
    "ex6_5_tbptt_epoch": ("ex6_5_visible", "ex6_5_hidden"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 6.1 · make_windows

WINDOWS_CORRECT = {
    # A loop over the windows, stacked.
    "loop": '''
def make_windows(series, input_length, horizon):
    count = series.shape[0] - input_length - horizon + 1
    if count < 1:
        raise ValueError("series too short")
    inputs = [series[i:i + input_length] for i in range(count)]
    targets = [series[i + input_length:i + input_length + horizon] for i in range(count)]
    return torch.stack(inputs), torch.stack(targets)
''',
    # Fancy indexing with a grid of positions.
    "index grid": '''
def make_windows(series, input_length, horizon):
    width = input_length + horizon
    if series.numel() < width:
        raise ValueError(f"need at least {width} values, got {series.numel()}")
    starts = torch.arange(series.numel() - width + 1)
    grid = starts[:, None] + torch.arange(width)[None, :]
    windows = series[grid]
    return windows[:, :input_length].clone(), windows[:, input_length:].clone()
''',
}

WINDOWS_MISTAKES = {
    # range(T - input_length - horizon): the most recent window is lost.
    "one window too few": ('''
def make_windows(series, input_length, horizon):
    if len(series) < input_length + horizon:
        raise ValueError("too short")
    count = len(series) - input_length - horizon
    inputs = torch.stack([series[i:i + input_length] for i in range(count)])
    targets = torch.stack([series[i + input_length:i + input_length + horizon] for i in range(count)])
    return inputs, targets
''', "one window too few"),
    # Targets start at the last input value instead of right after it.
    "targets shifted by one": ('''
def make_windows(series, input_length, horizon):
    if len(series) < input_length + horizon:
        raise ValueError("too short")
    count = len(series) - input_length - horizon + 1
    inputs = torch.stack([series[i:i + input_length] for i in range(count)])
    targets = torch.stack([series[i + input_length - 1:i + input_length - 1 + horizon] for i in range(count)])
    return inputs, targets
''', "starts with the last input value"),
    # No check for a short series: unfold raises a RuntimeError instead of the ValueError asked for.
    "no ValueError": ('''
def make_windows(series, input_length, horizon):
    windows = series.unfold(0, input_length + horizon, 1)
    return windows[:, :input_length], windows[:, input_length:]
''', "expected a ValueError"),
    # Targets squeezed to (N,) when horizon is 1.
    "targets squeezed": ('''
def make_windows(series, input_length, horizon):
    if len(series) < input_length + horizon:
        raise ValueError("too short")
    windows = series.unfold(0, input_length + horizon, 1)
    return windows[:, :input_length], windows[:, input_length:].squeeze(-1)
''', "targets.shape"),
    # Rebuilt from Python floats: always float32.
    "dtype lost": ('''
def make_windows(series, input_length, horizon):
    if len(series) < input_length + horizon:
        raise ValueError("too short")
    values = series.tolist()
    count = len(values) - input_length - horizon + 1
    inputs = torch.tensor([values[i:i + input_length] for i in range(count)])
    targets = torch.tensor([values[i + input_length:i + input_length + horizon] for i in range(count)])
    return inputs, targets
''', "dtype"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 6.2 · scale_splits and unscale

SCALING_CORRECT = {
    # numpy's standard deviation (divides by n), stats as Python floats.
    "numpy std": '''
import numpy as np

def scale_splits(train, val, test):
    values = train.detach().cpu().double().numpy()
    mean, std = float(np.mean(values)), float(np.std(values))
    return tuple((part - mean) / std for part in (train, val, test)) + ((mean, std),)

def unscale(values, stats):
    return stats[1] * values + stats[0]
''',
    # Statistics kept as 0-d tensors, torch.std's default correction.
    "tensor stats": '''
def scale_splits(train, val, test):
    mean = train.mean()
    std = train.std()
    scaled = [(part - mean) / std for part in (train, val, test)]
    return scaled[0], scaled[1], scaled[2], (mean, std)

def unscale(values, stats):
    mean, std = stats
    return torch.addcmul(torch.full_like(values, float(mean)), values, torch.full_like(values, float(std)))
''',
}

SCALING_MISTAKES = {
    # Statistics of the whole series: the future leaks into training.
    "statistics from all parts": ('''
def scale_splits(train, val, test):
    everything = torch.cat([train, val, test])
    mean, std = everything.mean().item(), everything.std().item()
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, (mean, std)

def unscale(values, stats):
    return values * stats[1] + stats[0]
''', "leak"),
    # Each part scaled with its own statistics.
    "each part its own statistics": ('''
def scale_splits(train, val, test):
    def own(part):
        return (part - part.mean()) / part.std()
    return own(train), own(val), own(test), (train.mean().item(), train.std().item())

def unscale(values, stats):
    return values * stats[1] + stats[0]
''', "its own part's mean and std"),
    # unscale scales again instead of undoing.
    "unscale inverted": ('''
def scale_splits(train, val, test):
    mean, std = train.mean().item(), train.std().item()
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, (mean, std)

def unscale(values, stats):
    return (values - stats[0]) / stats[1]
''', "unscale"),
    # The parts scaled in place: the statement says the arguments must not change.
    "scaled in place": ('''
def scale_splits(train, val, test):
    mean, std = train.mean().item(), train.std().item()
    for part in (train, val, test):
        part.sub_(mean).div_(std)
    return train, val, test, (mean, std)

def unscale(values, stats):
    return values * stats[1] + stats[0]
''', "changed in place"),
    # unscale undoes the scaling in place.
    "unscale in place": ('''
def scale_splits(train, val, test):
    mean, std = train.mean().item(), train.std().item()
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, (mean, std)

def unscale(values, stats):
    return values.mul_(stats[1]).add_(stats[0])
''', "changed in place"),
    # Min-max scaling instead of mean and standard deviation.
    "min-max scaling": ('''
def scale_splits(train, val, test):
    low, span = train.min().item(), (train.max() - train.min()).item()
    return (train - low) / span, (val - low) / span, (test - low) / span, (low, span)

def unscale(values, stats):
    return values * stats[1] + stats[0]
''', "mean"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 6.3 · rollout

ROLLOUT_CORRECT = {
    # Time-major inside, the head on the top layer's h_n, and the last forecast fed back too (steps + 1 calls, which
    # the statement accepts).
    "time-major, h_n[-1], steps + 1 calls": '''
def rollout(gru, head, history, steps):
    unbatched = history.dim() == 2
    x = history.unsqueeze(1) if unbatched else (history.transpose(0, 1) if gru.batch_first else history)
    was_batch_first = gru.batch_first
    forecasts = []
    with torch.no_grad():
        if was_batch_first:
            x = x.transpose(0, 1)
        _, h = gru(x)
        for _ in range(steps):
            y = head(h[-1])  # (N, F): the top layer's state is its last output
            forecasts.append(y)
            step = y.unsqueeze(1) if was_batch_first else y.unsqueeze(0)
            _, h = gru(step, h)
    result = torch.stack(forecasts)  # (steps, N, F)
    if unbatched:
        return result[:, 0]
    return result.transpose(0, 1) if was_batch_first else result
''',
    # Keyword arguments, select + unsqueeze, and the forecasts written into a tensor made in advance.
    "keywords and a tensor made in advance": '''
def rollout(gru, head, history, steps):
    dim = 1 if gru.batch_first and history.ndim == 3 else 0
    shape = list(history.shape)
    shape[dim] = steps
    result = history.new_zeros(shape)
    with torch.no_grad():
        output, state = gru(input=history)
        current = head(output.select(dim, output.shape[dim] - 1)).unsqueeze(dim)
        for k in range(steps):
            result.narrow(dim, k, 1).copy_(current)
            if k + 1 < steps:
                output, state = gru(input=current, hx=state)
                current = head(output)
    return result
''',
}

ROLLOUT_TEMPLATE = '''
def rollout(gru, head, history, steps):
    time_dim = TIME_DIM
    with torch.no_grad():
        output, h = gru(history)
        FIRST
        forecasts = [first]
        for _ in range(steps - 1):
            output, h = CALL
            forecasts.append(head(output))
    return torch.cat(forecasts, dim=time_dim)
'''
ROLLOUT_RIGHT = {
    "TIME_DIM": "1 if gru.batch_first and history.dim() == 3 else 0",
    "FIRST": "first = head(output.narrow(time_dim, output.shape[time_dim] - 1, 1))",
    "CALL": "gru(forecasts[-1], h)",
}


def rollout_with(**changes):
    source = ROLLOUT_TEMPLATE
    for key, value in {**ROLLOUT_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


ROLLOUT_MISTAKES = {
    # The state is not passed back in: every step starts from zeros.
    "h not carried": (rollout_with(CALL="gru(forecasts[-1])"), "zero state"),
    # The last history value (the input) fed back at every step instead of the rollout's own forecast.
    "refeeds the input": (rollout_with(CALL="gru(history.narrow(time_dim, history.shape[time_dim] - 1, 1), h)"),
                          "the last history value again (the input) instead of the rollout's own forecast"),
    # No state carried: the whole sequence so far is re-run from the start for every forecast. The numbers are
    # right, but it is not the rollout the exercise asks for, and its cost grows with the square of the length.
    "reruns the whole history": ('''
def rollout(gru, head, history, steps):
    dim = 1 if (gru.batch_first and history.ndim == 3) else 0
    seq = history
    out = []
    for _ in range(steps):
        o, _ = gru(seq)
        nxt = head(o.select(dim, o.shape[dim] - 1)).unsqueeze(dim)
        out.append(nxt)
        seq = torch.cat([seq, nxt], dim)
    return torch.cat(out, dim).detach()
''', "reruns the whole history each step"),
    # The history fed one step per call (right numbers, but not one call on the history).
    "history one step per call": ('''
def rollout(gru, head, history, steps):
    dim = 1 if gru.batch_first and history.dim() == 3 else 0
    h = None
    with torch.no_grad():
        for x in history.split(1, dim=dim):
            output, h = gru(x, h)
        forecasts = [head(output)]
        for _ in range(steps - 1):
            output, h = gru(forecasts[-1], h)
            forecasts.append(head(output))
    return torch.cat(forecasts, dim=dim)
''', "once on the whole history"),
    # The history changed in place (a forecast written over its last step).
    "history changed": (rollout_with(
        FIRST="first = head(output.narrow(time_dim, output.shape[time_dim] - 1, 1)); "
              "history.narrow(time_dim, history.shape[time_dim] - 1, 1).copy_(first)"), "changed in place"),
    # batch_first ignored: the time dimension is taken to be 0 always.
    "batch_first ignored": (rollout_with(TIME_DIM="0"), "rollout"),
    # The bottom layer's final state fed to the head: right for one layer only.
    "bottom layer of h_n": (rollout_with(
        FIRST="first = head(h[0]).unsqueeze(time_dim) if history.dim() == 3 else head(h[:1])"), "bottom layer"),
    # The last history value fed in again before the first forecast: every forecast one step late.
    "last value fed twice": (rollout_with(
        FIRST="output, h = gru(history.narrow(time_dim, history.shape[time_dim] - 1, 1), h); "
              "first = head(output)"), "the last history value again"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 6.4 · run_in_chunks

CHUNKS_CORRECT = {
    # Time-major inside, slices by index, the state detached between chunks (same values).
    "time-major, detached": '''
def run_in_chunks(gru, x, chunk_length):
    if gru.bidirectional:
        raise ValueError("bidirectional GRUs read the sequence backwards too; chunks cannot be run in order")
    batched = x.dim() == 3
    seq = x.transpose(0, 1) if batched and gru.batch_first else x
    outs, state = [], None
    for start in range(0, seq.shape[0], chunk_length):
        piece = seq[start:start + chunk_length]
        if batched and gru.batch_first:
            piece = piece.transpose(0, 1)
        out, state = gru(piece, state)
        state = state.detach()
        outs.append(out.transpose(0, 1) if batched and gru.batch_first else out)
    output = torch.cat(outs, 0)
    return (output.transpose(0, 1) if batched and gru.batch_first else output), state
''',
    # torch.split on the right dimension, with an explicit zero initial state.
    "explicit h0": '''
def run_in_chunks(gru, x, chunk_length):
    if gru.bidirectional:
        raise ValueError("Bidirectional GRU: the backward pass needs the whole sequence")
    dim = 1 if gru.batch_first and x.ndim == 3 else 0
    shape = (gru.num_layers, gru.hidden_size) if x.ndim == 2 else (gru.num_layers, x.shape[1 - dim], gru.hidden_size)
    h = torch.zeros(shape, dtype=x.dtype, device=x.device)
    pieces = []
    for chunk in torch.split(x, chunk_length, dim=dim):
        y, h = gru(chunk, h)
        pieces += [y]
    return torch.cat(pieces, dim=dim), h
''',
}

CHUNKS_TEMPLATE = '''
def run_in_chunks(gru, x, chunk_length):
    REFUSE
    time_dim = TIME_DIM
    outputs, h, first_h = [], None, None
    for chunk in CHUNKS:
        output, h = CALL
        first_h = h if first_h is None else first_h
        outputs.append(output)
    return torch.cat(outputs, dim=time_dim), H_N
'''
CHUNKS_RIGHT = {
    "REFUSE": "if gru.bidirectional: raise ValueError('a bidirectional GRU cannot run in chunks')",
    "TIME_DIM": "1 if gru.batch_first and x.dim() == 3 else 0",
    "CHUNKS": "x.split(chunk_length, dim=time_dim)",
    "CALL": "gru(chunk, h)",
    "H_N": "h",
}


def chunks_with(**changes):
    source = CHUNKS_TEMPLATE
    for key, value in {**CHUNKS_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


CHUNKS_MISTAKES = {
    # The state is not carried: every chunk starts from zeros.
    "h not carried": (chunks_with(CALL="gru(chunk)"), "zero state"),
    # batch_first ignored: always cut along dimension 0 (for batch_first input, that cuts the batch).
    "batch_first ignored": (chunks_with(TIME_DIM="0"), "time dimension"),
    # Always cut along dimension 1, as if every input were batch first.
    "always dimension 1": (chunks_with(TIME_DIM="1 if x.dim() == 3 else 0"), "time dimension"),
    # The last, shorter chunk is dropped.
    "short last chunk dropped": (chunks_with(
        CHUNKS="[x.narrow(time_dim, s, chunk_length) for s in range(0, x.shape[time_dim] - chunk_length + 1, "
               "chunk_length)]"), "left out"),
    # The state after the first chunk returned as h_n.
    "first chunk's h_n": (chunks_with(H_N="first_h"), "h_n"),
    # A bidirectional GRU is run anyway.
    "bidirectional accepted": (chunks_with(REFUSE="pass"), "ValueError"),
    # The wrong exception type for a bidirectional GRU.
    "NotImplementedError": (chunks_with(
        REFUSE="if gru.bidirectional: raise NotImplementedError('bidirectional')"), "expected a ValueError"),
    # No chunks at all: one call on the whole sequence.
    "one call": (chunks_with(CHUNKS="[x]"), "more than chunk_length"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 6.5 · tbptt_epoch

TBPTT_CORRECT = {
    # nn.MSELoss, index arithmetic, detach_() in place, float() instead of item().
    "MSELoss and detach_": '''
def tbptt_epoch(model, series, chunk_length, optimizer):
    criterion = nn.MSELoss()
    steps = series.shape[1] - 1
    state, losses = None, []
    for start in range(0, steps, chunk_length):
        stop = min(start + chunk_length, steps)
        if state is not None:
            state.detach_()
        prediction, state = model(series[:, start:stop], state)
        loss = criterion(prediction, series[:, start + 1:stop + 1])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
''',
    # A while loop with narrow, the state detached before use.
    "while loop": '''
def tbptt_epoch(model, series, chunk_length, optimizer):
    inputs, targets = series[:, :-1], series[:, 1:]
    hidden, out, start = None, [], 0
    while start < inputs.shape[1]:
        size = min(chunk_length, inputs.shape[1] - start)
        x, y = inputs.narrow(1, start, size), targets.narrow(1, start, size)
        predicted, hidden = model(x, None if hidden is None else hidden.detach())
        loss = torch.nn.functional.mse_loss(predicted, y)
        model.zero_grad()
        loss.backward()
        optimizer.step()
        out.append(loss.item())
        start += size
    return out
''',
}

TBPTT_TEMPLATE = '''
def tbptt_epoch(model, series, chunk_length, optimizer):
    inputs, targets = series[:, :-1], TARGETS
    h, losses = None, []
    for x, y in zip(inputs.split(chunk_length, dim=1), targets.split(chunk_length, dim=1)):
        DETACH
        predicted, h = CALL
        loss = nn.functional.mse_loss(predicted, y)
        ZERO
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
'''
TBPTT_RIGHT = {
    "TARGETS": "series[:, 1:]",
    "DETACH": "h = None if h is None else h.detach()",
    "CALL": "model(x, h)",
    "ZERO": "optimizer.zero_grad()",
}


def tbptt_with(**changes):
    source = TBPTT_TEMPLATE
    for key, value in {**TBPTT_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


TBPTT_MISTAKES = {
    # The state carried with its graph: the second chunk's backward runs into the freed graph of the first.
    "h not detached": (tbptt_with(DETACH="pass"), "detached between chunks"),
    # The state not carried: every chunk starts from zeros.
    "h not carried": (tbptt_with(CALL="model(x)"), "zero state"),
    # Gradients never zeroed: they pile up from chunk to chunk.
    "no zero_grad": (tbptt_with(ZERO="pass"), "optimizer.zero_grad()"),
    # Targets equal to the inputs: the model learns to copy, not to forecast.
    "targets not shifted": (tbptt_with(TARGETS="series[:, :-1]"), "the targets are the inputs themselves"),
    # No optimizer step on a shorter last chunk: the losses are right, the parameters after the pass are not.
    "short last chunk not trained": (tbptt_with(
        ZERO="optimizer.zero_grad()\n        if y.shape[1] < chunk_length:\n            losses.append(loss.item())\n"
             "            continue"), "after the pass"),
}

ALL_CORRECT = {"ex6_1_make_windows": WINDOWS_CORRECT, "ex6_2_scaling": SCALING_CORRECT,
               "ex6_3_rollout": ROLLOUT_CORRECT, "ex6_4_run_in_chunks": CHUNKS_CORRECT,
               "ex6_5_tbptt_epoch": TBPTT_CORRECT}
ALL_MISTAKES = {"ex6_1_make_windows": WINDOWS_MISTAKES, "ex6_2_scaling": SCALING_MISTAKES,
                "ex6_3_rollout": ROLLOUT_MISTAKES, "ex6_4_run_in_chunks": CHUNKS_MISTAKES,
                "ex6_5_tbptt_epoch": TBPTT_MISTAKES}

# ----------------------------------------------------------------------------------------------------------------
# Five students through nbgrader's autograde.

HOSTILE = {
    "ex6_1_make_windows": '''
class Anything(tuple):
    def __eq__(self, other):
        return True
    def __len__(self):
        return 2
    def __iter__(self):
        return iter([self, self])
    shape = property(lambda self: self)

def make_windows(series, input_length, horizon):
    return Anything()
''',
    "ex6_2_scaling": '''
class Anything(float):
    def __eq__(self, other):
        return True

def scale_splits(train, val, test):
    return train, val, test, (Anything(0.0), Anything(1.0))

def unscale(values, stats):
    return Anything(0.0)
''',
    "ex6_3_rollout": '''
class Anything:
    def __eq__(self, other):
        return True
    shape = property(lambda self: self)

def rollout(gru, head, history, steps):
    return Anything()
''',
    "ex6_4_run_in_chunks": '''
class Anything(tuple):
    def __eq__(self, other):
        return True

def run_in_chunks(gru, x, chunk_length):
    if gru.bidirectional:
        raise ValueError("bidirectional")
    return Anything((Anything(), Anything()))
''',
    "ex6_5_tbptt_epoch": '''
class Anything(list):
    def __eq__(self, other):
        return True

def tbptt_epoch(model, series, chunk_length, optimizer):
    return Anything()
''',
}

SUBMISSIONS = {
    "alternative": {"ex6_1_make_windows": WINDOWS_CORRECT["loop"], "ex6_2_scaling": SCALING_CORRECT["numpy std"],
                    "ex6_3_rollout": ROLLOUT_CORRECT["time-major, h_n[-1], steps + 1 calls"],
                    "ex6_4_run_in_chunks": CHUNKS_CORRECT["time-major, detached"],
                    "ex6_5_tbptt_epoch": TBPTT_CORRECT["MSELoss and detach_"]},
    "mistakes-a": {"ex6_1_make_windows": WINDOWS_MISTAKES["targets shifted by one"][0],
                   "ex6_2_scaling": SCALING_MISTAKES["statistics from all parts"][0],
                   "ex6_3_rollout": ROLLOUT_MISTAKES["h not carried"][0],
                   "ex6_4_run_in_chunks": CHUNKS_MISTAKES["h not carried"][0],
                   "ex6_5_tbptt_epoch": TBPTT_MISTAKES["h not detached"][0]},
    "mistakes-b": {"ex6_1_make_windows": WINDOWS_MISTAKES["one window too few"][0],
                   "ex6_2_scaling": SCALING_MISTAKES["each part its own statistics"][0],
                   "ex6_3_rollout": ROLLOUT_MISTAKES["bottom layer of h_n"][0],
                   "ex6_4_run_in_chunks": CHUNKS_MISTAKES["batch_first ignored"][0],
                   "ex6_5_tbptt_epoch": TBPTT_MISTAKES["h not carried"][0]},
    "mistakes-c": {"ex6_1_make_windows": WINDOWS_MISTAKES["no ValueError"][0],
                   "ex6_2_scaling": SCALING_MISTAKES["unscale inverted"][0],
                   "ex6_3_rollout": ROLLOUT_MISTAKES["last value fed twice"][0],
                   "ex6_4_run_in_chunks": CHUNKS_MISTAKES["bidirectional accepted"][0],
                   "ex6_5_tbptt_epoch": TBPTT_MISTAKES["no zero_grad"][0]},
    "hostile": HOSTILE,
}
ALTERNATIVE = SUBMISSIONS["alternative"]
AUTOGRADED = {"mistakes-a": SUBMISSIONS["mistakes-a"]}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


HIDDEN = [hidden for _, hidden in EXERCISES.values()]


# ----------------------------------------------------------------------------------------------------------------
# Every variant through the check cells, in-process.

@pytest.mark.parametrize("student", ["mistakes-a", "mistakes-b", "mistakes-c", "hostile"])
def test_plausible_mistakes_fail_the_hidden_checks(student):
    results = run_check_cells(LESSON, SUBMISSIONS[student])
    for grade_id in HIDDEN:
        assert results[grade_id] is not None, (student, grade_id)


def test_which_mistakes_the_visible_checks_already_show():
    # The visible examples are a one-layer batch_first rollout and a two-layer time-major chunked run: the bottom
    # layer's state (right for one layer) and an ignored batch_first (right for time-major input) only show in the
    # hidden checks. Every other mistake fails the visible checks too.
    passing_visible = {("mistakes-b", "ex6_3_visible"), ("mistakes-b", "ex6_4_visible")}
    for student in ["mistakes-a", "mistakes-b", "mistakes-c", "hostile"]:
        results = run_check_cells(LESSON, SUBMISSIONS[student])
        for visible, _ in EXERCISES.values():
            assert (results[visible] is None) == ((student, visible) in passing_visible), (student, visible)


def run_checks(answer_id, answer):
    """Put ``answer`` in place of the answer cell ``answer_id`` and run its check cells: {grade_id: None if it
    passed, else the error message}."""
    return run_check_cells(LESSON, {answer_id: answer}, list(EXERCISES[answer_id]))


@pytest.mark.parametrize("answer_id, name", [(a, n) for a, variants in ALL_CORRECT.items() for n in variants])
def test_correct_variants_pass(answer_id, name):
    results = run_checks(answer_id, ALL_CORRECT[answer_id][name])
    assert results == dict.fromkeys(EXERCISES[answer_id]), f"{answer_id} '{name}': {results}"


@pytest.mark.parametrize("answer_id, name", [(a, n) for a, variants in ALL_MISTAKES.items() for n in variants])
def test_every_mistake_fails_the_hidden_checks_with_a_message_that_names_it(answer_id, name):
    source, words = ALL_MISTAKES[answer_id][name]
    message = run_checks(answer_id, source)[EXERCISES[answer_id][1]]
    assert message is not None, f"the hidden checks of {answer_id} let '{name}' pass"
    assert message.startswith("CheckFailed"), f"{answer_id} '{name}': not a check failure: {message}"
    assert words in message, f"{answer_id} '{name}': the message does not say '{words}': {message}"


@pytest.mark.parametrize("name, words", [
    ("refeeds the input", "the last history value again (the input) instead of the rollout's own forecast"),
    ("last value fed twice", "the last history value again (the input)"),
    ("reruns the whole history", "reruns the whole history each step"),
    ("h not carried", "zero state"),
    ("history one step per call", "once on the whole history"),
])
def test_the_visible_rollout_checks_name_the_mistakes_of_the_calls(name, words):
    """What each call of gru got is recorded (CountSteps), so the visible checks already name these mistakes."""
    message = run_checks("ex6_3_rollout", ROLLOUT_MISTAKES[name][0])["ex6_3_visible"]
    assert message is not None and message.startswith("CheckFailed") and words in message, (name, message)


def test_the_visible_checks_name_the_in_place_and_tbptt_mistakes():
    for answer_id, name in [("ex6_2_scaling", "scaled in place"), ("ex6_2_scaling", "unscale in place"),
                            ("ex6_2_scaling", "statistics from all parts"), ("ex6_5_tbptt_epoch", "h not carried"),
                            ("ex6_5_tbptt_epoch", "no zero_grad"), ("ex6_5_tbptt_epoch", "targets not shifted")]:
        source, words = ALL_MISTAKES[answer_id][name]
        message = run_checks(answer_id, source)[EXERCISES[answer_id][0]]
        assert message is not None and words in message, (answer_id, name, message)


# ----------------------------------------------------------------------------------------------------------------
# The check modules: references only in hidden_checks.py, literal values that the references reproduce.

FOLDER = REPO / "solutions" / LESSON


@pytest.fixture(scope="module")
def check_modules():
    """lesson_checks and hidden_checks, imported from the lesson folder (as the notebook imports them; the lesson's
    own modules, kept apart from other lessons' by in_lesson_folder)."""
    with in_lesson_folder(FOLDER):
        import hidden_checks
        import lesson_checks
    return lesson_checks, hidden_checks


def test_the_literal_values_of_the_visible_checks_are_what_the_references_compute(check_modules):
    lesson_checks, hidden_checks = check_modules
    computed = hidden_checks.visible_literals()
    batched, unbatched = computed["rollouts"]
    assert torch.allclose(batched, torch.tensor(lesson_checks.ROLLOUT_BATCHED, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(unbatched, torch.tensor(lesson_checks.ROLLOUT_UNBATCHED, dtype=torch.float64), atol=1e-9)
    assert computed["losses"] == pytest.approx(lesson_checks.TBPTT_LOSSES, rel=1e-11)
    assert computed["mistakes"].keys() == lesson_checks.TBPTT_MISTAKE_LOSSES.keys()
    for name, losses in computed["mistakes"].items():
        assert losses == pytest.approx(lesson_checks.TBPTT_MISTAKE_LOSSES[name], rel=1e-11), name
        assert losses != pytest.approx(computed["losses"], rel=1e-7), f"the example does not show '{name}'"
    assert computed["parameters"].keys() == lesson_checks.TBPTT_PARAMETERS.keys()
    for name, value in computed["parameters"].items():
        written = torch.tensor(lesson_checks.TBPTT_PARAMETERS[name], dtype=torch.float64)
        assert torch.allclose(value, written, atol=1e-9), name


def test_no_answer_outside_the_answer_cells_and_hidden_checks():
    """Reference implementations live in hidden_checks.py only; the notebook has no version of an answer of its own
    (a later cell uses yours_or_working) and no check code beyond one call per check cell."""
    visible_source = (FOLDER / "lesson_checks.py").read_text()
    for name in ["reference_windows", "reference_rollout", "reference_tbptt", "restarting_rollout"]:
        assert name not in visible_source, name
    nb = read(notebook_path(LESSON))
    teaching = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and not nbgrader(c).get("grade_id"))
    for name in ["reference_", "def rollout_forecaster", "def train_in_chunks", "def tbptt", "def rollout",
                 "def run_in_chunks", "def make_windows", "def scale_splits", "def unscale", ".unfold("]:
        assert name not in teaching, name
    assert "notebook's own" not in "\n".join(c.source for c in nb.cells)
    for cell in nb.cells:
        grade_id = nbgrader(cell).get("grade_id", "")
        if grade_id.endswith("_visible") or grade_id.endswith("_hidden"):
            code = [line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")]
            assert len(code) in (1, 2), (grade_id, code)  # checks.exercise_N_M(...) or import + call


def test_the_checks_leave_the_random_generator_as_it_was(check_modules):
    lesson_checks, hidden_checks = check_modules
    namespace = {"torch": torch, "nn": torch.nn}
    for cell in read(notebook_path(LESSON)).cells:
        if nbgrader(cell).get("solution"):
            exec(cell.source, namespace)
    state = torch.get_rng_state()
    lesson_checks.exercise_6_4.run(namespace["run_in_chunks"])
    hidden_checks.exercise_6_3.run(namespace["rollout"])
    assert torch.equal(torch.get_rng_state(), state)


def test_count_steps_records_calls_with_keywords(check_modules):
    lesson_checks, _ = check_modules
    gru = lesson_checks.CountSteps(torch.nn.GRU(2, 3, batch_first=True))
    _, h = gru(input=torch.zeros(4, 5, 2))
    gru(torch.zeros(4, 1, 2), hx=h)
    assert gru.calls == 2 and gru.lengths == [5, 1] and gru.states_in[0] is None
    assert torch.equal(gru.states_in[1], gru.states_out[0]) and gru.hidden_size == 3


# ----------------------------------------------------------------------------------------------------------------
# The data file is the one DATA.md describes, and tools/build_co2.py rebuilds it byte for byte from a wheel.

def fake_wheel(path, data, listed_data=None):
    """A zip laid out like the statsmodels wheel: the CO2 file, and a RECORD that lists its hash."""
    listed = hashlib.sha256(data if listed_data is None else listed_data).digest()
    digest = base64.urlsafe_b64encode(listed).rstrip(b"=").decode()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(build_co2.MEMBER, data)
        archive.writestr("statsmodels-0.15.0.dist-info/RECORD",
                         f"{build_co2.MEMBER},sha256={digest},{len(data)}\nstatsmodels-0.15.0.dist-info/RECORD,,\n")
    return path


def test_shipped_data_file_is_the_one_data_md_describes():
    data = build_co2.TARGET.read_bytes()
    assert hashlib.sha256(data).hexdigest() == build_co2.SHA256
    data_md = (build_co2.TARGET.parent / "DATA.md").read_text()
    assert build_co2.SHA256 in data_md and f"{len(data):,} bytes" in data_md


def test_build_co2_extracts_the_file_byte_for_byte_and_refuses_others(tmp_path):
    data = build_co2.TARGET.read_bytes()
    assert build_co2.extract(fake_wheel(tmp_path / "good.whl", data)) == data
    with pytest.raises(SystemExit, match="RECORD"):
        build_co2.extract(fake_wheel(tmp_path / "tampered.whl", data + b"1", listed_data=data))
    with pytest.raises(SystemExit, match="expected"):
        build_co2.extract(fake_wheel(tmp_path / "other.whl", data[:-1]))
    assert build_co2.main(["--wheel", str(tmp_path / "good.whl"), "--check"]) == 0
