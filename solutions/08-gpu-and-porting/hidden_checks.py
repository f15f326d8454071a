"""Lesson 08's hidden checks: for instructors only, never released and never inside a grading kernel. Each hidden
check cell calls one function below (``hidden_checks.exercise_8_1(median_time)``).

They compute expected values here, in the grader's process: the median of a fake device's timed calls, a GRU's error
under torch.autocast, and a NumPy implementation of Keras' GRU equations."""

import math
import random
import statistics

import numpy as np
import torch
from course_checks import CheckFailed, CountCalls, check, check_tensor, exercise, while_checking
from lesson_checks import (
    AUTOCAST_DTYPES,
    H_N_INSTEAD,
    LAUNCH_ONLY,
    FakeClock,
    FakeRuntime,
    FakeWork,
    call_keras_gru_to_torch,
    check_autocast_dtype,
    check_autocast_result,
    check_bad_arguments,
    check_default_synchronize,
    check_gate_placement,
    check_learnable_initial_state,
    check_state_dict_layout,
    check_timer_result,
    describe_gru,
    dyadic_gru,
    run_autocast_max_error,
    time_on_fake_device,
)
from torch import nn

# --- Exercise 8.1 · median_time ------------------------------------------------------------------------------------


def median_choices(values):
    """Acceptable medians: the middle value, or for an even count either middle value or their mean."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return [ordered[middle]]
    return [ordered[middle - 1], ordered[middle], (ordered[middle - 1] + ordered[middle]) / 2]


def timed_without_synchronizing_first(durations, warmup, repeats):
    """What a timer that synchronizes only after each call measures on a fake GPU: the warm-up's queued work ends
    up in the first timed call."""
    runtime = FakeRuntime(durations, queued=True)
    for _ in range(warmup):
        runtime.run()
    times = []
    for _ in range(repeats):
        start = runtime.now
        runtime.run()
        runtime.synchronize()
        times.append(runtime.now - start)
    return times


def check_median_time(median_time, durations, repeats, warmup, queued, device):
    result, runtime, what = time_on_fake_device(median_time, durations, repeats, warmup, device, queued)
    timed = durations[warmup:warmup + repeats]
    choices = median_choices(timed)
    # With an even number of calls, any of the acceptable medians is the expected value.
    expected = next((c for c in choices if isinstance(result, float) and math.isclose(result, c, rel_tol=1e-9)),
                    choices[0])
    mistakes = []
    if queued:
        mistakes.append((runtime.launch, LAUNCH_ONLY))
        if warmup:
            for value in median_choices(timed_without_synchronizing_first(durations, warmup, repeats)):
                mistakes.append((value, "the warm-up's queued work landed in the first timed call: synchronize "
                                        "before starting the clock"))
    mistakes += [(c, "that is the median with the warm-up calls timed too") for c in median_choices(durations)]
    mistakes.append((statistics.mean(timed), "that is the mean, not the median"))
    mistakes += [(1000 * c, "that is in milliseconds: return the units of clock()") for c in choices]
    check_timer_result(result, runtime, expected, repeats, warmup, what, mistakes)


@exercise("ex8_1_hidden", "median_time")
def exercise_8_1(median_time):
    """Random durations, repeats 1 to 7 (odd and even), warm-up 0 to 3, fake CPUs and GPUs (CUDA and MPS), devices as
    strings and torch.device, outliers that separate median from mean, the default synchronize for CUDA and MPS on
    this machine, and ValueError for bad arguments."""
    # Slow warm-up calls, an outlier among the timed calls, and the fastest call first: a timer that lets the
    # warm-up's queued work leak in, times the warm-up, or averages gets another answer.
    check_median_time(median_time, [2.0, 0.001, 0.004, 0.002], 3, 1, True, "cuda")
    check_median_time(median_time, [2.0, 3.0, 0.001], 1, 2, True, torch.device("cuda:0"))
    check_median_time(median_time, [0.001, 0.002, 0.9], 3, 0, True, "cuda:0")
    check_median_time(median_time, [1.5, 0.003, 0.001, 0.002], 3, 1, True, torch.device("mps"))
    check_median_time(median_time, [0.7, 0.002, 0.001, 0.5, 0.003], 4, 1, False, torch.device("cpu"))
    check_median_time(median_time, [0.3, 0.004, 0.2, 0.001], 3, 1, False, "cpu")
    rng = random.Random(801)
    for _ in range(14):
        warmup, repeats = rng.randint(0, 3), rng.randint(1, 7)
        durations = [rng.uniform(1.0, 3.0) for _ in range(warmup)] + [rng.uniform(1e-4, 1e-2) for _ in range(repeats)]
        if repeats >= 3:
            durations[warmup + rng.randrange(repeats)] = rng.uniform(5.0, 9.0)  # an outlier among the timed calls
        queued = rng.random() < 0.6
        devices = (["cuda", "cuda:0", torch.device("cuda"), "mps", torch.device("mps")] if queued
                   else ["cpu", torch.device("cpu")])
        check_median_time(median_time, durations, repeats, warmup, queued, rng.choice(devices))
    check_default_synchronize(median_time, "cuda")
    check_default_synchronize(median_time, "mps")
    # synchronize=None on the CPU: nothing to wait for (torch.cuda.synchronize raises on a machine without CUDA).
    runtime = FakeRuntime([0.5, 0.002, 0.001, 0.003], queued=False)
    result, what = None, "median_time(fn, repeats=3, warmup=1, device='cpu') (synchronize=None) on a fake CPU"
    with while_checking(what):
        result = median_time(CountCalls(FakeWork(runtime)), repeats=3, warmup=1, device="cpu",
                             clock=CountCalls(FakeClock(runtime)))
    check_timer_result(result, runtime, 0.002, 3, 1, what)
    for repeats, warmup in [(0, 1), (-2, 0), (3, -1), (1, -3)]:
        check_bad_arguments(median_time, repeats, warmup)


# --- Exercise 8.2 · autocast_dtype and autocast_max_error ----------------------------------------------------------


def autocast_errors(model, x, low_dtype):
    """(largest |output difference|, largest |h_n difference|) between model(x) in float32 and under autocast."""
    with torch.no_grad():
        output, h_n = model(x)
        with torch.autocast(device_type=x.device.type, dtype=low_dtype):
            low_output, low_h_n = model(x)
    return ((low_output.float() - output).abs().max().item(), (low_h_n.float() - h_n).abs().max().item())


def check_autocast_max_error(autocast_max_error, model, x, low_dtype=None):
    dtype = low_dtype or AUTOCAST_DTYPES[x.device.type]
    error, h_n_error = autocast_errors(model, x, dtype)
    given = "" if low_dtype is None else f", low_dtype={low_dtype}"
    what = f"autocast_max_error({describe_gru(model, x)}{given})"
    result = run_autocast_max_error(autocast_max_error, model, x, low_dtype, what)
    mistakes = [(h_n_error, H_N_INSTEAD)] if not math.isclose(h_n_error, error, rel_tol=1e-3) else []
    if x.device.type == "cpu":  # the CPU's autocast takes both (a GPU before Ampere warns about bfloat16)
        other = torch.float16 if dtype == torch.bfloat16 else torch.bfloat16
        mistakes.append((autocast_errors(model, x, other)[0], f"that is the error with {other}"))
    hint = "" if low_dtype is None else ": use the low_dtype you are given"
    check_autocast_result(result, dtype, error, what, mistakes, dtype_hint=hint)


@exercise("ex8_2_hidden", "autocast_dtype", "autocast_max_error")
def exercise_8_2(autocast_dtype, autocast_max_error):
    """The dtype of each device; GRUs with 1 to 3 layers, bidirectional, batch_first, a batch of one, one time step,
    unbatched input and larger sizes, with the default dtype and with float16 and bfloat16 asked for; the model and
    x unchanged each time; on CUDA too where this machine has it."""
    for device_type, expected in AUTOCAST_DTYPES.items():
        check_autocast_dtype(autocast_dtype, device_type, expected)
    configurations = [dict(input_size=4, hidden_size=5, num_layers=2, bidirectional=True),
                      dict(input_size=3, hidden_size=3, seq_len=1, batch_size=1),
                      dict(input_size=5, hidden_size=6, num_layers=3, batch_first=True),
                      dict(input_size=20, hidden_size=32, seq_len=12, batch_size=4, batch_first=True),
                      dict(input_size=4, hidden_size=7, seq_len=5, batch_size=None)]
    rng = random.Random(8202)
    for _ in range(4):
        configurations.append(dict(input_size=rng.randint(1, 9), hidden_size=rng.randint(1, 12),
                                   num_layers=rng.randint(1, 2), bidirectional=rng.random() < 0.5,
                                   batch_first=rng.random() < 0.5, seq_len=rng.randint(1, 8),
                                   batch_size=rng.randint(1, 4)))
    for seed, configuration in enumerate(configurations):
        model, x = dyadic_gru(8200 + seed, **configuration)
        check_autocast_max_error(autocast_max_error, model, x, [None, torch.float16, torch.bfloat16][seed % 3])
    if torch.cuda.is_available():
        model, x = dyadic_gru(8290, 6, 8, num_layers=2)
        check_autocast_max_error(autocast_max_error, model.cuda(), x.cuda())


# --- Exercise 8.3 · LearnableInitialState --------------------------------------------------------------------------


@exercise("ex8_3_hidden", "LearnableInitialState")
def exercise_8_3(LearnableInitialState):
    """1 to 3 layers, bidirectional, batch sizes 1, 2 and 5 from one module, hidden size 1, float64 (the module
    converted with .to); the values, contiguity, gradient and state_dict each time."""
    check_learnable_initial_state(LearnableInitialState, 5, num_layers=1, bidirectional=True, batch_sizes=(2, 1, 5),
                                  seed=8301)
    check_learnable_initial_state(LearnableInitialState, 3, num_layers=3, batch_sizes=(4, 2), seed=8302)
    check_learnable_initial_state(LearnableInitialState, 2, num_layers=2, bidirectional=True, batch_sizes=(3, 6),
                                  dtype=torch.float64, seed=8303)
    check_learnable_initial_state(LearnableInitialState, 1, num_layers=1, batch_sizes=(1, 7), seed=8304)
    check_learnable_initial_state(LearnableInitialState, 6, num_layers=3, bidirectional=True, batch_sizes=(5,),
                                  seed=8305)


# --- Exercise 8.4 · keras_gru_to_torch -----------------------------------------------------------------------------


def keras_gru_numpy(x, h0, kernel, recurrent_kernel, bias):
    """Keras GRU(reset_after=True, activation='tanh', recurrent_activation='sigmoid') on x (N, L, H_in)."""
    H = recurrent_kernel.shape[0]
    input_bias, recurrent_bias = (bias[0], bias[1]) if bias is not None else (0.0, 0.0)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    h, outputs = h0, []
    for t in range(x.shape[1]):
        matrix_x = x[:, t] @ kernel + input_bias
        matrix_h = h @ recurrent_kernel + recurrent_bias
        z = sigmoid(matrix_x[:, :H] + matrix_h[:, :H])
        r = sigmoid(matrix_x[:, H:2 * H] + matrix_h[:, H:2 * H])
        candidate = np.tanh(matrix_x[:, 2 * H:] + r * matrix_h[:, 2 * H:])
        h = z * h + (1 - z) * candidate
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def check_against_keras(keras_gru_to_torch, input_size, hidden_size, seq_len, batch_size, with_bias=True,
                        dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    kernel = rng.uniform(-0.8, 0.8, (input_size, 3 * hidden_size)).astype(dtype)
    recurrent = rng.uniform(-0.8, 0.8, (hidden_size, 3 * hidden_size)).astype(dtype)
    bias = rng.uniform(-0.8, 0.8, (2, 3 * hidden_size)).astype(dtype) if with_bias else None
    x = rng.standard_normal((batch_size, seq_len, input_size)).astype(dtype)
    h0 = rng.standard_normal((batch_size, hidden_size)).astype(dtype)
    what = (f"keras_gru_to_torch for input_size={input_size}, units={hidden_size}, use_bias={with_bias}, "
            f"dtype={np.dtype(dtype).name}")
    state = call_keras_gru_to_torch(keras_gru_to_torch, kernel.copy(), recurrent.copy(),
                                    None if bias is None else bias.copy(), what)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    state = check_state_dict_layout(state, input_size, hidden_size, with_bias, torch_dtype, what)
    gru = nn.GRU(input_size, hidden_size, batch_first=True, bias=with_bias, dtype=torch.float64)
    try:
        gru.load_state_dict({key: value.double() for key, value in state.items()})
    except Exception as error:
        raise CheckFailed(f"{what}: nn.GRU.load_state_dict raised {type(error).__name__}: {error}") from error
    with torch.no_grad():
        output, h_n = gru(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(h0.astype(np.float64))[None])
    keras_output, keras_h = keras_gru_numpy(x.astype(np.float64), h0.astype(np.float64), kernel.astype(np.float64),
                                            recurrent.astype(np.float64),
                                            None if bias is None else bias.astype(np.float64))
    if dtype == np.float64:
        check_tensor(output, torch.from_numpy(keras_output), f"{what}: nn.GRU output vs the Keras equations")
        check_tensor(h_n[0], torch.from_numpy(keras_h), f"{what}: nn.GRU h_n vs the Keras equations")
    else:
        error = np.abs(output.numpy() - keras_output).max()
        check(error < 1e-5, f"{what}: nn.GRU output differs from the Keras equations by up to {error:.3g}")


@exercise("ex8_4_hidden", "keras_gru_to_torch")
def exercise_8_4(keras_gru_to_torch):
    """Gate placement for several sizes; then nn.GRU loaded with the state dict against a NumPy implementation of
    Keras' reset_after=True equations: random sizes, float32 and float64, use_bias=False, a square kernel (input
    size = 3H), a batch of one and one time step."""
    for input_size, hidden_size in [(3, 1), (6, 2), (2, 5)]:
        check_gate_placement(keras_gru_to_torch, input_size, hidden_size)
    check_gate_placement(keras_gru_to_torch, 4, 3, dtype=np.float64)
    for seed, (input_size, hidden_size, seq_len, batch_size) in enumerate(
            [(5, 4, 6, 3), (2, 3, 1, 1), (6, 2, 5, 2), (1, 1, 4, 2), (4, 6, 3, 1), (9, 3, 4, 2), (3, 5, 7, 4)]):
        check_against_keras(keras_gru_to_torch, input_size, hidden_size, seq_len, batch_size, seed=seed)
    check_against_keras(keras_gru_to_torch, 4, 3, 5, 2, with_bias=False, seed=10)
    check_against_keras(keras_gru_to_torch, 6, 2, 3, 3, with_bias=False, seed=11)
    check_against_keras(keras_gru_to_torch, 5, 4, 6, 3, dtype=np.float32, seed=12)
    check_against_keras(keras_gru_to_torch, 3, 2, 4, 2, with_bias=False, dtype=np.float32, seed=13)

