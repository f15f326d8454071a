"""Lesson 06's hidden checks: for instructors only, never released and never inside a grading kernel. The reference
implementations the checks compare with live here, and only here. Every check runs with its own seed and gives the
caller's random generator its state back (lesson_checks.seeded).
"""
import math
import random

import torch
from course_checks import CheckFailed, check_tensor, check_tensor_or_variant, exercise
from lesson_checks import (
    TBPTT_NO_ZERO_GRAD,
    TBPTT_NOT_SHIFTED,
    TBPTT_ZERO_STATE,
    CountSteps,
    SmallForecaster,
    check_bidirectional_refused,
    check_chunks,
    check_losses,
    check_parameters,
    check_too_short,
    check_window_pair,
    chunks_input,
    own_statistics,
    rollout_call,
    rollout_example,
    rollout_gru,
    scaling_call,
    seeded,
    sgd_with_momentum,
    tbptt_call,
    tbptt_example,
    unscale_call,
    windows_call,
)
from torch import nn

# --- Exercise 6.1 · make_windows -----------------------------------------------------------------------------------

def reference_windows(series, input_length, horizon):
    count = len(series) - input_length - horizon + 1
    inputs = torch.stack([series[i: i + input_length] for i in range(count)])
    targets = torch.stack([series[i + input_length: i + input_length + horizon] for i in range(count)])
    return inputs, targets


def check_windows(make_windows, series, input_length, horizon):
    result, series, what = windows_call(make_windows, series, input_length, horizon)
    check_window_pair(result, series, input_length, horizon, what, *reference_windows(series, input_length, horizon))


@exercise("ex6_1_hidden", "make_windows")
@seeded(6101)
def exercise_6_1(make_windows):
    rng = random.Random(6101)
    check_windows(make_windows, torch.randn(12, dtype=torch.float64), 1, 6)
    check_windows(make_windows, torch.randn(12, dtype=torch.float64), 6, 1)
    check_windows(make_windows, torch.randn(9), 4, 3)  # float32
    check_windows(make_windows, torch.randn(7, dtype=torch.float64), 1, 1)
    for _ in range(8):
        input_length, horizon = rng.randint(1, 8), rng.randint(1, 5)
        length = input_length + horizon + rng.randint(0, 20)
        check_windows(make_windows, torch.randn(length, dtype=rng.choice([torch.float32, torch.float64])),
                      input_length, horizon)
    check_windows(make_windows, torch.randn(5, dtype=torch.float64), 3, 2)  # exactly one window
    check_too_short(make_windows, 5, 3, 3)
    check_too_short(make_windows, 1, 1, 1)
    check_too_short(make_windows, 6, 7, 1)


# --- Exercise 6.2 · scale_splits and unscale -----------------------------------------------------------------------

def rising_series(length, dtype=torch.float64):
    """A trend with a cycle and noise, like CO2: every later part has a higher level."""
    t = torch.arange(length, dtype=torch.float64)
    return (0.5 * t + 3 * torch.sin(t / 2) + torch.randn(length, dtype=torch.float64)).to(dtype)


def check_scaling(scale_splits, train, val, test):
    scaled, (mean, std), what, parts = scaling_call(scale_splits, [train, val, test])
    train, val, test = parts
    tol = {"rel_tol": 1e-9, "abs_tol": 1e-9} if train.dtype == torch.float64 else {"rel_tol": 1e-5, "abs_tol": 1e-5}
    everything, train64 = torch.cat(parts).double(), train.double()
    if not math.isclose(mean, train64.mean().item(), **tol):
        leak = math.isclose(mean, everything.mean().item(), **tol)
        raise CheckFailed(f"{what}: mean: expected the training part's mean {train64.mean().item():.6g}, got "
                          f"{mean:.6g}" + (": that is the mean of all three parts, so the validation and test "
                                           "parts leak into the scaling" if leak else ""))
    train_stds = [train64.std(correction=c).item() for c in (1, 0)]
    if not any(math.isclose(std, s, **tol) for s in train_stds):
        leak = any(math.isclose(std, everything.std(correction=c).item(), **tol) for c in (1, 0))
        raise CheckFailed(f"{what}: std: expected the training part's standard deviation {train_stds[0]:.6g} "
                          f"(or {train_stds[1]:.6g} dividing by n), got {std:.6g}"
                          + (": that is the std of all three parts, so the validation and test parts leak into "
                             "the scaling" if leak else ""))
    for name, part, got in zip(["train_scaled", "val_scaled", "test_scaled"], parts, scaled, strict=True):
        if name != "train_scaled" and own_statistics(got, part):
            raise CheckFailed(f"{what}: {name} is scaled with its own part's mean and std; every part must use "
                              f"the training part's (the others would leak future information)")
        check_tensor(got, (part - mean) / std, f"{what}: {name}")


def check_unscale(unscale, values, mean, std):
    result, values, what = unscale_call(unscale, values, (mean, std))
    check_tensor_or_variant(result, values * std + mean, what, {
        "(values - mean) / std, the scaling itself: unscale must undo it": (values - mean) / std})


@exercise("ex6_2_hidden", "scale_splits", "unscale")
@seeded(6201)
def exercise_6_2(scale_splits, unscale):
    for length, cut1, cut2, dtype in [(100, 70, 85, torch.float64), (30, 10, 20, torch.float64),
                                      (50, 40, 49, torch.float32), (25, 5, 6, torch.float64),
                                      (80, 50, 70, torch.float32)]:
        series = rising_series(length, dtype)
        check_scaling(scale_splits, series[:cut1].clone(), series[cut1:cut2].clone(), series[cut2:].clone())
    for shape, mean, std in [((5,), 3.0, 0.5), ((4, 6), -1.5, 2.5), ((3, 7, 1), 0.1, 0.3), ((2, 1, 5, 2), 10.0, 4.0)]:
        check_unscale(unscale, torch.randn(*shape, dtype=torch.float64), mean, std)
    check_unscale(unscale, torch.randn(8, 2), 2.0, 3.0)  # float32
    series = rising_series(40)
    parts = [series[:20].clone(), series[20:30].clone(), series[30:].clone()]
    scaled, stats, what, parts = scaling_call(scale_splits, parts)
    for name, part, values in [("train", parts[0], scaled[0]), ("test", parts[2], scaled[2])]:
        result, _, _ = unscale_call(unscale, values, stats)
        check_tensor(result, part, f"unscale(scale_splits(...)[{name}], stats): the round trip")


# --- Exercise 6.3 · rollout ----------------------------------------------------------------------------------------

def reference_rollout(gru, head, history, steps):
    """Re-runs history + forecasts so far from a zero state for every forecast: slow, simple, and right."""
    time_dim = 1 if gru.batch_first and history.dim() == 3 else 0
    sequence = history
    with torch.no_grad():
        for _ in range(steps):
            output, _ = gru(sequence)
            forecast = head(output.narrow(time_dim, output.shape[time_dim] - 1, 1))
            sequence = torch.cat([sequence, forecast], dim=time_dim)
    return sequence.narrow(time_dim, history.shape[time_dim], steps)


def bottom_layer_rollout(gru, head, history, steps, every_step):
    """The mistake of feeding the head the bottom layer's final state, h_n[0], instead of the top layer's output:
    for the first forecast only, or at every step."""
    time_dim = 1 if gru.batch_first and history.dim() == 3 else 0
    with torch.no_grad():
        output, h = gru(history)
        forecasts = [head(h[0]).unsqueeze(time_dim) if history.dim() == 3 else head(h[:1])]
        for _ in range(steps - 1):
            output, h = gru(forecasts[-1], h)
            if every_step:
                forecasts.append(head(h[0]).unsqueeze(time_dim) if history.dim() == 3 else head(h[:1]))
            else:
                forecasts.append(head(output))
    return torch.cat(forecasts, dim=time_dim)


def check_rollout(rollout, num_layers=1, batch_first=True, unbatched=False, features=1, hidden_size=5, length=6,
                  batch_size=3, steps=4, bias=True, head_kind="linear", dtype=torch.float64):
    config = (f"num_layers={num_layers}, batch_first={batch_first}, {'unbatched' if unbatched else 'batched'} "
              f"history, F={features}, H={hidden_size}, L={length}, N={batch_size}, steps={steps}, bias={bias}, "
              f"{dtype}")
    gru = rollout_gru(num_layers, batch_first, features, hidden_size, bias, dtype)
    linear = nn.Linear(hidden_size, features, dtype=dtype)
    head = linear if head_kind == "linear" else nn.Sequential(linear, nn.Tanh())
    if unbatched:
        history = torch.randn(length, features, dtype=dtype)
    elif batch_first:
        history = torch.randn(batch_size, length, features, dtype=dtype)
    else:
        history = torch.randn(length, batch_size, features, dtype=dtype)
    expected = reference_rollout(gru.module, head, history, steps)
    variants = {}
    if num_layers > 1:
        for every_step in (False, True):
            variants[f"the forecasts of a head fed the bottom layer's h_n[0]{' at every step' if every_step else ''}; "
                     f"the head reads the top layer's output"] = bottom_layer_rollout(gru.module, head, history, steps,
                                                                                       every_step)
    result, what = rollout_call(rollout, gru, head, history, steps, config)
    check_tensor_or_variant(result, expected, what, variants)


@exercise("ex6_3_hidden", "rollout")
@seeded(6301)
def exercise_6_3(rollout):
    rng = random.Random(6301)
    for num_layers in (1, 2, 3):
        for batch_first in (True, False):
            check_rollout(rollout, num_layers, batch_first)
            check_rollout(rollout, num_layers, batch_first, unbatched=True, steps=3)
    check_rollout(rollout, 2, False, features=2, steps=5)
    check_rollout(rollout, 3, True, features=2, unbatched=True)
    check_rollout(rollout, 1, True, steps=1)
    check_rollout(rollout, 2, False, length=1, steps=3)
    check_rollout(rollout, 2, True, batch_size=1, bias=False)
    check_rollout(rollout, 1, False, head_kind="tanh", steps=6)
    check_rollout(rollout, 2, True, dtype=torch.float32, steps=3)
    for _ in range(4):
        check_rollout(rollout, rng.randint(1, 3), rng.random() < 0.5, unbatched=rng.random() < 0.3,
                      features=rng.randint(1, 3), hidden_size=rng.randint(1, 6), length=rng.randint(1, 7),
                      batch_size=rng.randint(1, 4), steps=rng.randint(1, 6), bias=rng.random() < 0.7)


# --- Exercise 6.4 · run_in_chunks ----------------------------------------------------------------------------------

def check_random_chunks(run_in_chunks, num_layers=2, batch_first=False, unbatched=False, length=10, chunk_length=4,
                        batch_size=3, input_size=3, hidden_size=4, bias=True, dtype=torch.float64):
    config = (f"num_layers={num_layers}, batch_first={batch_first}, {'unbatched' if unbatched else 'batched'}, "
              f"L={length}, N={batch_size}, H_in={input_size}, H={hidden_size}, bias={bias}, {dtype}")
    gru = CountSteps(nn.GRU(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dtype=dtype))
    x = chunks_input(gru.module, unbatched, length, batch_size, None)
    check_chunks(run_in_chunks, gru, x, chunk_length, config)


@exercise("ex6_4_hidden", "run_in_chunks")
@seeded(6401)
def exercise_6_4(run_in_chunks):
    rng = random.Random(6401)
    for num_layers in (1, 2, 3):
        for batch_first in (True, False):
            check_random_chunks(run_in_chunks, num_layers, batch_first, length=7, chunk_length=3)  # 3, 3 and 1
            check_random_chunks(run_in_chunks, num_layers, batch_first, unbatched=True, length=8, chunk_length=3)
    check_random_chunks(run_in_chunks, 1, True, length=5, chunk_length=1)
    check_random_chunks(run_in_chunks, 2, False, unbatched=True, length=4, chunk_length=1)
    check_random_chunks(run_in_chunks, 2, True, length=6, chunk_length=6)
    check_random_chunks(run_in_chunks, 3, False, length=5, chunk_length=9)
    check_random_chunks(run_in_chunks, 1, True, unbatched=True, length=3, chunk_length=5)
    check_random_chunks(run_in_chunks, 2, True, length=9, chunk_length=4, batch_size=1)
    check_random_chunks(run_in_chunks, 2, False, length=8, chunk_length=3, bias=False)
    check_random_chunks(run_in_chunks, 2, True, length=10, chunk_length=4, dtype=torch.float32)
    for _ in range(6):
        length = rng.randint(1, 12)
        check_random_chunks(run_in_chunks, rng.randint(1, 3), rng.random() < 0.5, unbatched=rng.random() < 0.3,
                            length=length, chunk_length=rng.randint(1, length + 2), batch_size=rng.randint(1, 4),
                            input_size=rng.randint(1, 4), hidden_size=rng.randint(1, 5), bias=rng.random() < 0.7)
    check_bidirectional_refused(run_in_chunks, 1, True)
    check_bidirectional_refused(run_in_chunks, 2, False)
    check_bidirectional_refused(run_in_chunks, 2, True)


# --- Exercise 6.5 · tbptt_epoch ------------------------------------------------------------------------------------

def reference_tbptt(model, series, chunk_length, optimizer, carry=True, zero_grad=True, shifted=True):
    """The right pass (and, with carry, zero_grad or shifted False, three known mistakes)."""
    inputs, targets = series[:, :-1], series[:, 1:] if shifted else series[:, :-1]
    h, losses = None, []
    for start in range(0, inputs.shape[1], chunk_length):
        x, y = inputs[:, start:start + chunk_length], targets[:, start:start + chunk_length]
        predicted, h = model(x, h.detach() if carry and h is not None else None)
        loss = ((predicted - y) ** 2).mean()
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


MISTAKES = {TBPTT_ZERO_STATE: {"carry": False}, TBPTT_NO_ZERO_GRAD: {"zero_grad": False},
            TBPTT_NOT_SHIFTED: {"shifted": False}}


def reference_pass(model, series, chunk_length, optimizer_for, **mistake):
    """(losses, {parameter name: value after the pass}) of the reference pass on a copy of `model`."""
    import copy

    reference = copy.deepcopy(model)
    losses = reference_tbptt(reference, series, chunk_length, optimizer_for(reference), **mistake)
    return losses, {name: p.detach().clone() for name, p in reference.named_parameters()}


def check_tbptt(tbptt_epoch, num_layers=1, length=12, chunk_length=4, batch_size=2, features=1, hidden_size=4,
                adam=False):
    config = (f"num_layers={num_layers}, T={length}, N={batch_size}, F={features}, H={hidden_size}, "
              f"{'Adam' if adam else 'SGD with momentum'}")
    model = SmallForecaster(features, hidden_size, num_layers)
    series = torch.randn(batch_size, length, features, dtype=torch.float64)

    def optimizer_for(module):
        return torch.optim.Adam(module.parameters(), lr=0.01) if adam else sgd_with_momentum(module)

    expected_losses, expected_parameters = reference_pass(model, series, chunk_length, optimizer_for)
    mistakes = {name: reference_pass(model, series, chunk_length, optimizer_for, **mistake)[0]
                for name, mistake in MISTAKES.items()}
    what = f"tbptt_epoch(model, series {tuple(series.shape)}, chunk_length={chunk_length}, optimizer) [{config}]"
    losses = tbptt_call(tbptt_epoch, model, series, chunk_length, optimizer_for(model), what)
    check_losses(losses, expected_losses, what, mistakes)
    check_parameters(model, expected_parameters, what)


@exercise("ex6_5_hidden", "tbptt_epoch")
@seeded(6501)
def exercise_6_5(tbptt_epoch):
    rng = random.Random(6501)
    for num_layers in (1, 2, 3):
        check_tbptt(tbptt_epoch, num_layers, length=10, chunk_length=3)
        check_tbptt(tbptt_epoch, num_layers, length=9, chunk_length=4, adam=True)
    check_tbptt(tbptt_epoch, 1, length=6, chunk_length=1)
    check_tbptt(tbptt_epoch, 2, length=8, chunk_length=7)  # one chunk: all 7 input steps
    check_tbptt(tbptt_epoch, 1, length=5, chunk_length=9)
    check_tbptt(tbptt_epoch, 2, length=11, chunk_length=5, batch_size=1)
    check_tbptt(tbptt_epoch, 1, length=9, chunk_length=2, features=2, adam=True)
    for _ in range(4):
        length = rng.randint(2, 14)
        check_tbptt(tbptt_epoch, rng.randint(1, 3), length=length, chunk_length=rng.randint(1, length),
                    batch_size=rng.randint(1, 3), features=rng.randint(1, 2), hidden_size=rng.randint(1, 5),
                    adam=rng.random() < 0.5)


# --- The literal values of the visible checks ----------------------------------------------------------------------

def visible_literals():
    """What lesson_checks writes out as literals, computed by the references here (tests/test_lesson_06.py compares
    the two): the rollouts of the visible example and the tbptt pass, with its known mistakes."""
    gru, head, batched, unbatched = rollout_example()
    rollouts = (reference_rollout(gru.module, head, batched, 4), reference_rollout(gru.module, head, unbatched, 3))
    model, series = tbptt_example()
    losses, parameters = reference_pass(model, series, 4, sgd_with_momentum)
    mistakes = {name: reference_pass(model, series, 4, sgd_with_momentum, **mistake)[0]
                for name, mistake in MISTAKES.items()}
    return {"rollouts": rollouts, "losses": losses, "parameters": parameters, "mistakes": mistakes}

