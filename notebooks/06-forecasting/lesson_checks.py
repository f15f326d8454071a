"""Lesson 06's visible checks (released with the lesson). Each visible check cell of the notebook calls one function
here; when a submission is graded, the course's grader calls the same function in its own process.

Nothing here computes an exercise's answer: the checks use fixed examples whose expected results are written out
below as literal values, properties every right answer has (a rollout feeds back its own forecasts, a chunked run
passes each call's h_n on), and PyTorch itself (a full nn.GRU call). The fixtures the hidden checks share (the
recording GRU wrapper, the small forecaster model) live here too, so that the learner's code can receive them.
"""
import functools
import importlib
import math
import numbers
import sys

import torch
from course_checks import (
    CHECKS,
    WORKING_VERSIONS,
    CheckFailed,
    CountCalls,
    check,
    check_shape,
    check_tensor,
    check_type,
    exercise,
    parameters_of,
    tolerance,
)
from torch import nn

# --- Shared helpers -----------------------------------------------------------------------------------------------


def answer_of(what, function, *args):
    """Call the learner's function; if it raises, the failure names the call that was being checked."""
    try:
        return function(*args)
    except CheckFailed:
        raise
    except Exception as error:
        raise CheckFailed(f"{what} raised {type(error).__name__}: {error}") from error


def is_tensor(value):
    return issubclass(type(value), torch.Tensor)


def as_float(value, what):
    """A Python float, or a one-element floating tensor, as a float (of its real value, whatever its class)."""
    if is_tensor(value):
        check(value.numel() == 1 and value.is_floating_point(),
              f"{what}: expected a float, got a {value.dtype} tensor of shape {tuple(value.shape)}")
        return float(torch.Tensor.item(value))
    check(issubclass(type(value), numbers.Real) and not issubclass(type(value), bool),
          f"{what}: expected a float, got {type(value).__name__}: {value!r:.60}")
    return float.__float__(value) if issubclass(type(value), float) else float(value)


def pair_of(result, what, names):
    """`result` must be a tuple of len(names) items; returns them as a plain tuple."""
    check_type(result, tuple, what)
    items = tuple(tuple.__iter__(result))
    check(len(items) == len(names), f"{what}: expected {len(names)} items ({', '.join(names)}), got {len(items)}")
    return items


def same_values(a, b):
    """a and b are tensors with the same dtype and the same values in the same order, within the dtype's tolerance
    (a size-1 dimension more or less does not matter: a step fed as (1, 1, F) and a forecast of shape (1, F))."""
    if not (is_tensor(a) and is_tensor(b)) or a.numel() != b.numel() or a.dtype != b.dtype:
        return False
    rtol, atol = tolerance(b.dtype)
    return torch.allclose(a.detach().cpu().reshape(-1), b.detach().cpu().reshape(-1), rtol=rtol, atol=atol)


def seeded(seed):
    """Run the decorated check with torch's random generator seeded, then give the caller's generator its state back:
    a check that builds modules (whose initialisation draws random numbers) leaves the notebook's random numbers as
    they were, whether it ran or not."""
    def decorate(function):
        @functools.wraps(function)
        def run(*args):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return function(*args)
        return run
    return decorate


def fixed_parameters_(module, phase=0.0, scale=0.5):
    """Give every parameter of `module` fixed values (a sine of its position), so that an example's expected
    results can be written out as literals, whatever the random generator does."""
    with torch.no_grad():
        for k, (_, parameter) in enumerate(module.named_parameters()):
            position = torch.arange(parameter.numel(), dtype=torch.float64)
            values = scale * torch.sin(1.7 * position + 0.9 * k + phase)
            parameter.copy_(values.reshape(parameter.shape).to(parameter.dtype))
    return module


def unchanged(before, after, what):
    """An argument the statement says is not changed in place must still hold its values after the call."""
    if is_tensor(after) and after.shape == before.shape and not torch.equal(after.detach().cpu(), before):
        raise CheckFailed(f"{what} was changed in place by the call; the statement asks you to leave it as it is "
                          f"(return new tensors)")


def yours_or_working_together(answers):
    """Like course_checks.yours_or_working, for answers that one check takes together ({name: answer}, such as
    scale_splits and unscale): yours if they pass their visible checks, else the course's working versions from
    working_versions.py (self-paced copies only), else yours. Returns them in the order given."""
    names = tuple(answers)
    checks = [c for c in CHECKS.values() if c.grade_id.endswith("_visible") and set(c.answers) <= set(names)
              and c.answers]
    problem = None
    if any(answer is None for answer in answers.values()):
        problem = "not all of them are defined"
    for found in checks:
        if problem is not None:
            break
        try:
            found.run(*(answers[name] for name in found.answers))
        except Exception as failure:
            problem = f"{type(failure).__name__}: {failure}".splitlines()[0][:200]
    together = " and ".join(names)
    if problem is None:
        print(f"Using your {together} (they pass their visible checks).")
        return tuple(answers.values())
    try:
        module = importlib.import_module(WORKING_VERSIONS)
        working = tuple(getattr(module, name) for name in names)
    except (ImportError, AttributeError):
        print(f"Your {together} do not pass their visible checks yet ({problem}); the cells below use them anyway.")
        return tuple(answers.values())
    # As yours_or_working does: the working versions may use what the lesson's cells defined before.
    notebook = sys._getframe(1).f_globals
    for key, value in notebook.items():
        if not key.startswith("_") and key not in module.__dict__:
            module.__dict__[key] = value
    print(f"Using the course's working versions of {together} from {WORKING_VERSIONS}.py: yours do not pass "
          f"their visible checks yet ({problem}).")
    return working


class CountSteps(CountCalls):
    """A GRU wrapped so that its calls are counted and recorded: for each call, the number of time steps its input
    has (`lengths`), the input itself (`inputs`), the initial state it got (`states_in`, None for none) and the
    final state it returned (`states_out`). Its attributes are the GRU's (`.batch_first`, `.num_layers`, ...)."""

    def __init__(self, module):
        super().__init__(module)
        self.lengths, self.inputs, self.states_in, self.states_out = [], [], [], []

    def forward(self, *args, **kwargs):
        x = args[0] if args else kwargs.get("input")
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        batch_first = self.module.batch_first
        self.lengths.append(int(x.shape[1 if batch_first and x.dim() == 3 else 0]))
        self.inputs.append(x.detach().clone())
        self.states_in.append(None if hx is None else hx.detach().clone())
        result = super().forward(*args, **kwargs)
        self.states_out.append(result[1].detach().clone())
        return result


def time_dim_of(gru, x):
    return 1 if gru.batch_first and x.dim() == 3 else 0


# --- Exercise 6.1 · make_windows -----------------------------------------------------------------------------------


def check_window_pair(result, series, input_length, horizon, what, expected_inputs=None, expected_targets=None):
    """The shared part of the visible and hidden checks: types, the number of windows, the classic off-by-one of the
    targets, then the values (when expected ones are given)."""
    inputs, targets = pair_of(result, what, ("inputs", "targets"))
    check_type(inputs, torch.Tensor, f"{what}: inputs")
    check_type(targets, torch.Tensor, f"{what}: targets")
    count = len(series) - input_length - horizon + 1
    for name, got in [("inputs", inputs), ("targets", targets)]:
        if got.dim() == 2 and got.shape[0] in (count - 1, count + 1):
            raise CheckFailed(f"{what}: {name} has {got.shape[0]} windows, expected N = T - input_length - horizon"
                              f" + 1 = {count}: one window {'too few' if got.shape[0] < count else 'too many'}")
    check_shape(inputs.shape, (count, input_length), f"{what}: inputs.shape")
    check_shape(targets.shape, (count, horizon), f"{what}: targets.shape")
    check(inputs.dtype == series.dtype, f"{what}: inputs: expected dtype {series.dtype} (the series'), got "
                                        f"{inputs.dtype}")
    check(targets.dtype == series.dtype, f"{what}: targets: expected dtype {series.dtype} (the series'), got "
                                         f"{targets.dtype}")
    early = series[input_length - 1: input_length - 1 + horizon]
    right = series[input_length: input_length + horizon]
    if torch.equal(targets[0].detach().cpu(), early) and not torch.equal(early, right):
        raise CheckFailed(f"{what}: targets[0] is {early.tolist()}, which starts with the last input value; the "
                          f"targets are the {horizon} values right AFTER the input window: {right.tolist()}")
    if expected_inputs is not None:
        check_tensor(inputs, expected_inputs, f"{what}: inputs")
        check_tensor(targets, expected_targets, f"{what}: targets")


def check_too_short(make_windows, length, input_length, horizon):
    what = f"make_windows(series of {length} values, input_length={input_length}, horizon={horizon})"
    try:
        make_windows(torch.arange(float(length)), input_length, horizon)
    except CheckFailed:
        raise
    except ValueError:  # when graded too: the learner's error reaches the check as a ValueError
        return
    except Exception as error:
        raise CheckFailed(f"{what}: the series is too short for one window; expected a ValueError, got "
                          f"{type(error).__name__}: {error}") from error
    raise CheckFailed(f"{what}: the series is too short for one window; expected a ValueError, nothing was raised")


def windows_call(make_windows, series, input_length, horizon):
    what = f"make_windows(series of {len(series)} {series.dtype}, input_length={input_length}, horizon={horizon})"
    untouched = series.clone()
    result = answer_of(what, make_windows, series, input_length, horizon)
    unchanged(untouched, series, f"{what}: series")
    return result, untouched, what


@exercise("ex6_1_visible", "make_windows")
@seeded(61)
def exercise_6_1(make_windows):
    """The table's example (the series 0..9, input_length 3, horizon 2), a series of 30 values with input_length 24
    and horizon 1 (the lesson's case), and a series one value too short."""
    series = torch.arange(10, dtype=torch.float64)
    result, series, what = windows_call(make_windows, series, 3, 2)
    table_inputs = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 6], [5, 6, 7]],
                                dtype=torch.float64)
    table_targets = torch.tensor([[3, 4], [4, 5], [5, 6], [6, 7], [7, 8], [8, 9]], dtype=torch.float64)
    check_window_pair(result, series, 3, 2, what, table_inputs, table_targets)

    # series[t] = sin(t): window i holds sin(i), sin(i + 1), ..., written out from the positions (i + j).
    series = torch.sin(torch.arange(30, dtype=torch.float64))
    result, series, what = windows_call(make_windows, series, 24, 1)
    positions = torch.arange(6, dtype=torch.float64)[:, None]
    check_window_pair(result, series, 24, 1, what, torch.sin(positions + torch.arange(24.0, dtype=torch.float64)),
                      torch.sin(positions + 24))
    check_too_short(make_windows, 4, input_length=3, horizon=2)


# --- Exercise 6.2 · scale_splits and unscale -----------------------------------------------------------------------

# A fixed example: train = 1, 2, 4, 5, 8 has mean 4, deviations -3, -2, 0, 1, 4 and a sum of squares of 30, so its
# standard deviation is sqrt(30 / 4) (torch.std's default) or sqrt(30 / 5) (numpy's).
EXAMPLE_PARTS = ([1.0, 2.0, 4.0, 5.0, 8.0], [9.0, 11.0], [12.0, 15.0, 16.0])
EXAMPLE_MEAN, EXAMPLE_STDS = 4.0, (math.sqrt(30 / 4), math.sqrt(30 / 5))
EXAMPLE_DEVIATIONS = ([-3.0, -2.0, 0.0, 1.0, 4.0], [5.0, 7.0], [8.0, 11.0, 12.0])  # part - 4
EXAMPLE_ALL_MEAN = 8.3  # the mean of all ten values: a leak


def scaling_call(scale_splits, parts):
    """Call scale_splits on copies it may not change; returns (train_scaled, val_scaled, test_scaled), (mean, std),
    what, and the untouched copies of the parts."""
    what = f"scale_splits(train {len(parts[0])}, val {len(parts[1])}, test {len(parts[2])} values, {parts[0].dtype})"
    untouched = [part.clone() for part in parts]
    result = answer_of(what, scale_splits, *parts)
    for name, before, after in zip(("train", "val", "test"), untouched, parts, strict=True):
        unchanged(before, after, f"{what}: {name}")
    *scaled, stats = pair_of(result, what, ("train_scaled", "val_scaled", "test_scaled", "stats"))
    stats = pair_of(stats, f"{what}: stats", ("mean", "std"))
    mean, std = as_float(stats[0], f"{what}: stats mean"), as_float(stats[1], f"{what}: stats std")
    for name, part, got in zip(("train_scaled", "val_scaled", "test_scaled"), untouched, scaled, strict=True):
        check_type(got, torch.Tensor, f"{what}: {name}")
        check_shape(got.shape, part.shape, f"{what}: {name}.shape")
        check(got.dtype == part.dtype, f"{what}: {name}: expected dtype {part.dtype} (the part's), got {got.dtype}")
    return scaled, (mean, std), what, untouched


def own_statistics(got, part):
    """The part scaled with its own mean and standard deviation (the mistake), to within float32 rounding."""
    if len(part) < 2:
        return False
    for correction in (1, 0):
        own = (part.double() - part.double().mean()) / part.double().std(correction=correction)
        if torch.allclose(got.detach().cpu().double(), own, atol=1e-4):
            return True
    return False


def unscale_call(unscale, values, stats):
    what = f"unscale(values of shape {tuple(values.shape)}, stats={stats})"
    untouched = values.clone()
    result = answer_of(what, unscale, values, stats)
    unchanged(untouched, values, f"{what}: values")
    check_type(result, torch.Tensor, what)
    return result, untouched, what


@exercise("ex6_2_visible", "scale_splits", "unscale")
@seeded(62)
def exercise_6_2(scale_splits, unscale):
    """A rising series split in three (float64), written out: the expected values are the deviations from the
    training mean, 4, divided by the training standard deviation; unscale on values of shape (2, 3, 1)."""
    parts = [torch.tensor(values, dtype=torch.float64) for values in EXAMPLE_PARTS]
    scaled, (mean, std), what, parts = scaling_call(scale_splits, parts)
    if not math.isclose(mean, EXAMPLE_MEAN, rel_tol=1e-9, abs_tol=1e-9):
        leak = math.isclose(mean, EXAMPLE_ALL_MEAN, rel_tol=1e-9)
        raise CheckFailed(f"{what}: mean: expected the training part's mean {EXAMPLE_MEAN:g}, got {mean:.6g}"
                          + (": that is the mean of all three parts, so the validation and test parts leak into "
                             "the scaling" if leak else ""))
    if not any(math.isclose(std, s, rel_tol=1e-9) for s in EXAMPLE_STDS):
        everything = torch.cat(parts)
        leak = any(math.isclose(std, everything.std(correction=c).item(), rel_tol=1e-9) for c in (1, 0))
        raise CheckFailed(f"{what}: std: expected the training part's standard deviation {EXAMPLE_STDS[0]:.6g} "
                          f"(or {EXAMPLE_STDS[1]:.6g} dividing by n), got {std:.6g}"
                          + (": that is the std of all three parts, so the validation and test parts leak into "
                             "the scaling" if leak else ""))
    for name, part, got, deviations in zip(("train_scaled", "val_scaled", "test_scaled"), parts, scaled,
                                           EXAMPLE_DEVIATIONS, strict=True):
        if name != "train_scaled" and own_statistics(got, part):
            raise CheckFailed(f"{what}: {name} is scaled with its own part's mean and std; every part must use "
                              f"the training part's (the others would leak future information)")
        check_tensor(got, torch.tensor(deviations, dtype=torch.float64) / std, f"{what}: {name}")

    values = torch.tensor([[[-1.0], [0.0], [2.0]], [[0.5], [-3.0], [1.25]]], dtype=torch.float64)
    result, values, what = unscale_call(unscale, values, (0.5, 2.0))
    expected = torch.tensor([[[-1.5], [0.5], [4.5]], [[1.5], [-5.5], [3.0]]], dtype=torch.float64)  # 2 v + 0.5
    rescaled = torch.tensor([[[-0.75], [-0.25], [0.75]], [[0.0], [-1.75], [0.375]]], dtype=torch.float64)
    if same_values(result, rescaled):
        raise CheckFailed(f"{what}: got (values - mean) / std, the scaling itself; unscale must undo it: "
                          f"values * std + mean")
    check_tensor(result, expected, what)


# --- Exercise 6.3 · rollout ----------------------------------------------------------------------------------------


def rollout_gru(num_layers=1, batch_first=True, features=1, hidden_size=5, bias=True, dtype=torch.float64):
    """An nn.GRU wrapped in CountSteps, the way the rollout checks pass it."""
    return CountSteps(nn.GRU(features, hidden_size, num_layers, bias=bias, batch_first=batch_first, dtype=dtype))


def check_rollout_calls(gru, history, result, steps, what):
    """What every right rollout does, read from the calls `gru` (a CountSteps) recorded: one call on the whole
    history, then one call per forecast fed back (steps calls; steps + 1 when the last forecast is fed back too),
    each on one time step, with the previous call's h_n as h_0 and the previous forecast as input."""
    time_dim = time_dim_of(gru, history)
    length, calls = history.shape[time_dim], gru.calls
    check(calls > 0, f"{what}: gru was never called (the checks count the calls of the gru they pass in)")
    if calls == length + steps - 1 and gru.lengths[0] == 1 and length > 1:
        raise CheckFailed(f"{what}: gru was called {calls} times, starting with one call per history step; call it "
                          f"once on the whole history, then once per forecast fed back")
    if gru.lengths[0] != length:
        raise CheckFailed(f"{what}: the first call of gru got {gru.lengths[0]} time steps; it should read the whole "
                          f"history ({length} steps) in one call")
    later = gru.lengths[1:]
    if later and all(n == length + i + 1 for i, n in enumerate(later)):
        raise CheckFailed(f"{what}: the rollout reruns the whole history each step (the calls got "
                          f"{gru.lengths} time steps): that gives the right numbers at a cost that grows with the "
                          f"square of the length; feed only the newest forecast, with the previous call's h_n as h_0")
    check(calls in (steps, steps + 1),
          f"{what}: gru was called {calls} times (time steps per call: {gru.lengths}); expected {steps} calls (one "
          f"on the history, then one per forecast fed back; {steps + 1} if the last forecast is fed back too)")
    check(all(n == 1 for n in later), f"{what}: after the history, each call should get one time step (the newest "
                                      f"forecast); the calls got {gru.lengths}")
    for i in range(1, calls):
        if gru.states_in[i] is None:
            raise CheckFailed(f"{what}: call {i + 1} of gru started from a zero state (no h_0): pass each call's "
                              f"h_n on as the next call's h_0")
        if not same_values(gru.states_in[i], gru.states_out[i - 1]):
            raise CheckFailed(f"{what}: call {i + 1} of gru got an h_0 that is not the h_n of call {i}: pass each "
                              f"call's h_n on as the next call's h_0")
    if is_tensor(result) and result.dim() == history.dim() and result.shape[time_dim] == steps:
        last_input = history.narrow(time_dim, length - 1, 1)
        for i in range(1, calls):
            fed, forecast = gru.inputs[i], result.narrow(time_dim, i - 1, 1)
            if same_values(fed, forecast):
                continue
            if same_values(fed, last_input):
                raise CheckFailed(f"{what}: call {i + 1} of gru was fed the last history value again (the input) "
                                  f"instead of the rollout's own forecast {i}: feed each forecast back in")
            raise CheckFailed(f"{what}: call {i + 1} of gru was not fed forecast {i} (the one your rollout "
                              f"returns at that step): feed each forecast back in")


def rollout_call(rollout, gru, head, history, steps, config):
    what = f"rollout(gru, head, history {tuple(history.shape)}, steps={steps}) [{config}]"
    untouched = history.clone()
    result = answer_of(what, rollout, gru, head, history, steps)
    unchanged(untouched, history, f"{what}: history")
    check_type(result, torch.Tensor, what)
    time_dim = time_dim_of(gru, untouched)
    shape = list(untouched.shape)
    shape[time_dim] = steps
    check_shape(result.shape, tuple(shape), f"{what}: shape")
    check(result.dtype == untouched.dtype, f"{what}: expected dtype {untouched.dtype}, got {result.dtype}")
    check_rollout_calls(gru, untouched, result, steps, what)
    return result, what


# Forecasts of the visible checks' example (gru and head with fixed_parameters_, phases 0 and 1), from
# the hidden checks (visible_literals); tests/test_lesson_06.py recomputes them.
ROLLOUT_BATCHED = [[[1.2656199372], [0.7453707395], [0.7664541988], [0.7706485122]],
                   [[1.3056164995], [0.7483407691], [0.7707010092], [0.7741216009]]]  # (2, 4, 1)
ROLLOUT_UNBATCHED = [[0.7876784412], [0.7562822816], [0.7619499996]]  # (3, 1)


def rollout_example():
    """The visible checks' fixtures: a one-layer batch_first GRU (F=1, H=5) with a linear head, fixed parameters,
    and histories of 6 steps (batched, 2 sequences, and unbatched), written out from sines."""
    gru = rollout_gru()
    fixed_parameters_(gru.module, phase=0.0)
    head = fixed_parameters_(nn.Linear(5, 1, dtype=torch.float64), phase=1.0)
    t = torch.arange(6, dtype=torch.float64)
    batched = torch.stack([torch.sin(0.8 * t), torch.cos(0.5 * t)])[:, :, None]  # (2, 6, 1)
    unbatched = torch.sin(0.3 * t + 1.0)[:, None]  # (6, 1)
    return gru, head, batched, unbatched


@exercise("ex6_3_visible", "rollout")
@seeded(63)
def exercise_6_3(rollout):
    """A one-layer batch_first GRU with a linear head (like section 6's forecaster), fixed weights, a batched and an
    unbatched history of 6 steps, float64; the calls are counted and what each call got is checked."""
    config = "num_layers=1, batch_first=True, F=1, H=5, float64"
    gru, head, batched, unbatched = rollout_example()
    result, what = rollout_call(rollout, gru, head, batched, 4, config + ", batched history")
    check_tensor(result, torch.tensor(ROLLOUT_BATCHED, dtype=torch.float64), what)
    gru, head, batched, unbatched = rollout_example()
    result, what = rollout_call(rollout, gru, head, unbatched, 3, config + ", unbatched history")
    check_tensor(result, torch.tensor(ROLLOUT_UNBATCHED, dtype=torch.float64), what)


# --- Exercise 6.4 · run_in_chunks ----------------------------------------------------------------------------------


def chunks_input(gru, unbatched, length, batch_size, generator):
    shape = ((length,) if unbatched else (batch_size, length) if gru.batch_first else (length, batch_size))
    return torch.randn(*shape, gru.input_size, dtype=gru.weight_ih_l0.dtype, generator=generator)


def check_chunks(run_in_chunks, gru, x, chunk_length, config):
    """run_in_chunks(gru, x, chunk_length) against one call of PyTorch's GRU on the whole of x; the calls are
    recorded (gru is wrapped in CountSteps) to check the chunks and the state passed on."""
    module = gru.module
    length = x.shape[time_dim_of(module, x)]
    with torch.no_grad():
        expected_output, expected_h_n = module(x)
    what = f"run_in_chunks(gru, x {tuple(x.shape)}, chunk_length={chunk_length}) [{config}]"
    untouched = x.clone()
    result = answer_of(what, run_in_chunks, gru, x, chunk_length)
    unchanged(untouched, x, f"{what}: x")
    output, h_n = pair_of(result, what, ("output", "h_n"))
    check_type(output, torch.Tensor, f"{what}: output")
    check_type(h_n, torch.Tensor, f"{what}: h_n")
    check(gru.calls > 0, f"{what}: gru was never called (the checks count the calls of the gru they pass in)")
    check(max(gru.lengths) <= chunk_length,
          f"{what}: a call got {max(gru.lengths)} time steps, more than chunk_length={chunk_length} (steps per "
          f"call: {gru.lengths}); are the chunks cut along the time dimension?")
    check(sum(gru.lengths) == length, f"{what}: the calls got {sum(gru.lengths)} time steps in all (per call: "
                                      f"{gru.lengths}), expected all {length}; is the last, shorter chunk left out?")
    for i in range(1, gru.calls):
        if gru.states_in[i] is None:
            raise CheckFailed(f"{what}: chunk {i + 1} started from a zero state (no h_0): pass each call's h_n on as "
                              f"the next call's h_0")
        check(same_values(gru.states_in[i], gru.states_out[i - 1]),
              f"{what}: the call on chunk {i + 1} got an h_0 that is not the h_n of the call on chunk {i}")
    check_tensor(output, expected_output, f"{what}: output")
    check_tensor(h_n, expected_h_n, f"{what}: h_n")


def check_bidirectional_refused(run_in_chunks, num_layers=1, batch_first=False):
    gru = nn.GRU(3, 4, num_layers, bidirectional=True, batch_first=batch_first, dtype=torch.float64)
    x = torch.zeros(2, 6, 3, dtype=torch.float64)
    what = f"run_in_chunks(bidirectional GRU with num_layers={num_layers}, x (2, 6, 3), chunk_length=2)"
    try:
        run_in_chunks(gru, x, 2)
    except CheckFailed:
        raise
    except ValueError as error:
        check("bidirectional" in str(error).lower(), f"{what}: raised ValueError({str(error)!r:.100}); its "
                                                     f"message must contain the word 'bidirectional'")
        return
    except Exception as error:
        raise CheckFailed(f"{what}: expected a ValueError, got {type(error).__name__}: {error}") from error
    raise CheckFailed(f"{what}: a bidirectional GRU cannot run in chunks; expected a ValueError, nothing was raised")


@exercise("ex6_4_visible", "run_in_chunks")
@seeded(64)
def exercise_6_4(run_in_chunks):
    """A 2-layer time-major GRU, 10 steps in chunks of 4 (the last has 2), compared with one call of the same GRU on
    the whole sequence; and a bidirectional GRU, which must raise a ValueError."""
    generator = torch.Generator().manual_seed(64)
    gru = CountSteps(fixed_parameters_(nn.GRU(3, 4, 2, dtype=torch.float64)))
    x = chunks_input(gru.module, False, 10, 3, generator)
    check_chunks(run_in_chunks, gru, x, 4, "num_layers=2, batch_first=False, batched, L=10, N=3, H_in=3, H=4, "
                                           "float64")
    check_bidirectional_refused(run_in_chunks)


# --- Exercise 6.5 · tbptt_epoch ------------------------------------------------------------------------------------


class SmallForecaster(nn.Module):
    """The model the tbptt_epoch checks train: a batch_first GRU and a linear head, called as model(x, h), returning
    (predictions, h_n) like section 6's Forecaster."""

    def __init__(self, features=1, hidden_size=4, num_layers=1, dtype=torch.float64):
        super().__init__()
        self.gru = nn.GRU(features, hidden_size, num_layers, batch_first=True, dtype=dtype)
        self.head = nn.Linear(hidden_size, features, dtype=dtype)

    def forward(self, x, h=None):
        output, h_n = self.gru(x, h)
        return self.head(output), h_n


def sgd_with_momentum(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)


def tbptt_call(tbptt_epoch, model, series, chunk_length, optimizer, what):
    """Call tbptt_epoch; returns its losses as floats. The state carried with its graph is named."""
    untouched = series.clone()
    try:
        losses = tbptt_epoch(model, series, chunk_length, optimizer)
    except CheckFailed:
        raise
    except Exception as error:
        hint = (": the state must be detached between chunks (h = h.detach())"
                if "second time" in str(error) or "inplace operation" in str(error) else "")
        raise CheckFailed(f"{what} raised {type(error).__name__}: {error}{hint}") from error
    unchanged(untouched, series, f"{what}: series")
    check_type(losses, list, f"{what}: the losses")
    losses = list(list.__iter__(losses))
    return [as_float(loss, f"{what}: loss {i}") for i, loss in enumerate(losses)]


def close_floats(these, those):
    return len(these) == len(those) and all(math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-9)
                                            for a, b in zip(these, those, strict=True))


def check_losses(losses, expected, what, mistakes):
    """The losses, one per chunk, against the expected ones; `mistakes` maps a known mistake's description to the
    losses it gives, to name it."""
    check(len(losses) == len(expected), f"{what}: expected {len(expected)} losses (one per chunk), got {len(losses)}")
    if not close_floats(losses, expected):
        for mistake, theirs in mistakes.items():
            if close_floats(losses, theirs):
                raise CheckFailed(f"{what}: {mistake}")
    for i, (got, want) in enumerate(zip(losses, expected, strict=True)):
        check(math.isclose(got, want, rel_tol=1e-7, abs_tol=1e-9),
              f"{what}: loss of chunk {i}: expected {want:.10g}, got {got:.10g}")


def check_parameters(model, expected, what):
    got = parameters_of(model)
    for name, want in expected.items():
        check(name in got, f"{what}: the model has no parameter {name} after the pass")
        check_tensor(got[name], want, f"{what}: parameter {name} after the pass")


TBPTT_ZERO_STATE = ("every chunk started from a zero state: pass the (detached) h_n of each chunk on to the next")
TBPTT_NO_ZERO_GRAD = ("the gradients were not zeroed before each backward, so they add up from chunk to chunk: "
                      "optimizer.zero_grad() before loss.backward()")
TBPTT_NOT_SHIFTED = "the targets are the inputs themselves: the targets are the next steps, series[:, 1:]"

# The visible example: SmallForecaster(1, 2) with fixed_parameters_, the series below, chunks of 4 (4, 4, 3 input
# steps), SGD(lr=0.1, momentum=0.5). Computed by the hidden checks; tests/test_lesson_06.py recomputes them.
TBPTT_LOSSES = [0.9506380074756, 0.3066475402778, 0.1758074570274]
TBPTT_MISTAKE_LOSSES = {
    TBPTT_ZERO_STATE: [0.9506380074756, 0.3285452589357, 0.1324020872508],
    TBPTT_NO_ZERO_GRAD: [0.9506380074756, 0.3066475402778, 0.3173793129397],
    TBPTT_NOT_SHIFTED: [0.9369593640821, 0.3404338075496, 0.3675496091017],
}
TBPTT_PARAMETERS = {
    "gru.weight_ih_l0": [[0.1477595489], [0.4587108804], [-0.2614308074], [-0.3904479002], [0.3195790314],
                         [0.2637026922]],
    "gru.weight_hh_l0": [[0.4661817962, 0.1193988585], [-0.4962995066, 0.0074797805], [0.496895665, -0.139113687],
                         [-0.4597068545, 0.2544957799], [0.3923294117, -0.3514893345], [-0.3041082403, 0.4364260394]],
    "gru.bias_ih_l0": [0.4333881854, -0.3010660073, -0.3412919891, 0.3887511683, 0.1894093896, -0.4988928823],
    "gru.bias_hh_l0": [0.0723435061, -0.4950986907, 0.0697527762, 0.4768621418, -0.2229002108, -0.4517231255],
    "head.weight": [[-0.2523064058, -0.3696131653]],
    "head.bias": [-0.2462661399],
}


def tbptt_example():
    """The visible checks' fixture: SmallForecaster(features=1, hidden_size=2) with fixed parameters and a batch of
    two sequences of 12 steps written out from sines, (2, 12, 1)."""
    model = fixed_parameters_(SmallForecaster(1, 2), phase=0.3)
    t = torch.arange(12, dtype=torch.float64)
    series = torch.stack([torch.sin(0.6 * t), 0.5 * torch.cos(0.9 * t + 0.2)])[:, :, None]
    return model, series


@exercise("ex6_5_visible", "tbptt_epoch")
@seeded(65)
def exercise_6_5(tbptt_epoch):
    """A one-layer GRU forecaster with fixed weights, 12 steps in chunks of 4 (11 input steps: 4, 4, 3), SGD with
    momentum: the losses and every parameter after the pass, written out."""
    model, series = tbptt_example()
    what = "tbptt_epoch(model, series (2, 12, 1), chunk_length=4, optimizer) [1 layer, H=2, SGD with momentum]"
    losses = tbptt_call(tbptt_epoch, model, series, 4, sgd_with_momentum(model), what)
    check_losses(losses, TBPTT_LOSSES, what, TBPTT_MISTAKE_LOSSES)
    expected = {name: torch.tensor(values, dtype=torch.float64) for name, values in TBPTT_PARAMETERS.items()}
    check_parameters(model, expected, what)
