"""Lesson 08's visible checks, released with the lesson. Each check cell of the notebook calls one of the functions
below (``checks.exercise_8_1(median_time)``); the course's grader calls the same functions in its own process.

They use PyTorch itself, literal expected values of fixed examples, and properties; they never compute an
exercise's answer. The hidden checks (hidden_checks.py, for instructors) try many more configurations.

The classes here are fixtures that the checks hand to the learner's code: a fake device for Exercise 8.1 (a fake
clock, and a function whose work is queued as a GPU queues it) and a real GRU call to time."""

import math

import numpy as np
import torch
from course_checks import (
    CheckFailed,
    CountCalls,
    check,
    check_shape,
    check_tensor,
    check_type,
    exercise,
    gradients_of,
    is_module,
    parameters_of,
    type_name,
    while_checking,
)
from torch import nn

# --- Helpers for what comes back from the learner's code -------------------------------------------------------------


def is_remote(value):
    """True for an object that stays in the learner's process when graded (what is not plain data)."""
    return getattr(type(value), "_course_remote_query", None) is not None


def as_dict(value, what, limit=64):
    """`value`'s items as a dict, if it is a dict. A dict subclass other than OrderedDict (a defaultdict, say) reaches
    the grader as a remote object: its items are then read one by one with popitem(), which leaves the learner's
    object empty."""
    if isinstance(value, dict) and not is_remote(value):
        return dict(value)
    check(is_remote(value), f"{what}: expected a dict, got {type_name(value)}: {value!r:.100}")
    items = []
    while len(items) <= limit:
        try:
            items.append(value.popitem())
        except KeyError:  # empty (when graded too: the learner's error reaches the check as a KeyError)
            break
        except Exception:
            raise CheckFailed(f"{what}: expected a dict, got {type_name(value)}") from None
    check(len(items) <= limit and all(type(item) is tuple and len(item) == 2 for item in items),
          f"{what}: expected a dict, got {type_name(value)}")
    return dict(reversed(items))  # popitem() takes the last item first


# --- Exercise 8.1 · median_time ------------------------------------------------------------------------------------


class FakeRuntime:
    """A fake device: a clock (`now`, in seconds) and the work of a function whose i-th call takes durations[i]
    seconds. On a fake GPU (queued=True) a call returns after `launch` seconds and its work runs on in the background,
    after the work queued before it; synchronize() waits until all of it is done. On a fake CPU a call takes its
    whole duration before it returns, and there is nothing to wait for."""

    def __init__(self, durations, queued, launch=1e-6):
        self.durations, self.queued, self.launch = [float(d) for d in durations], bool(queued), launch
        self.now = self.busy_until = 0.0
        self.calls = self.synchronizations = 0

    def run(self):
        duration = self.durations[self.calls] if self.calls < len(self.durations) else 0.0
        self.calls += 1
        if self.queued:
            self.busy_until = max(self.busy_until, self.now) + duration
            self.now += self.launch
        else:
            self.now += duration
        return "fn's result (the timer ignores it)"

    def synchronize(self):
        self.synchronizations += 1
        self.now = max(self.now, self.busy_until)


class FakeWork(nn.Module):
    """fn() of a fake device: one call of the work being timed."""

    def __init__(self, runtime):
        super().__init__()
        self.runtime = runtime

    def forward(self):
        return self.runtime.run()


class FakeClock(nn.Module):
    """clock() of a fake device: its time in seconds."""

    def __init__(self, runtime):
        super().__init__()
        self.runtime = runtime

    def forward(self):
        return self.runtime.now


class FakeSynchronize(nn.Module):
    """synchronize() of a fake device: waits until the queued work is done."""

    def __init__(self, runtime):
        super().__init__()
        self.runtime = runtime

    def forward(self):
        self.runtime.synchronize()


class GRUCall(nn.Module):
    """fn() that runs a small nn.GRU once: real work to time."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8)
        self.register_buffer("x", torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(81)))

    def forward(self):
        return self.gru(self.x)[0]


class CudaSleep(nn.Module):
    """fn() that queues a GPU kernel spinning for `cycles` clock cycles (tens of milliseconds) and returns at once."""

    def __init__(self, cycles=10 ** 8):
        super().__init__()
        self.cycles = cycles

    def forward(self):
        torch.cuda._sleep(self.cycles)


def describe_device(device):
    return repr(device) if isinstance(device, str) else f"torch.device({str(device)!r})"


def call_median_time(median_time, what, *args, **kwargs):
    """median_time(*args, **kwargs); an error it raises becomes a CheckFailed that says what was being checked."""
    try:
        return median_time(*args, **kwargs)
    except CheckFailed:
        raise
    except Exception as error:
        text = f"{type(error).__name__}: {error}"
        hint = ""
        if "cuda" in text.lower() or "mps" in text.lower():
            if torch.device(kwargs.get("device", "cpu")).type == "cpu":
                hint = "; on the CPU there is nothing to wait for: never synchronize there"
            elif kwargs.get("synchronize") is not None:
                hint = ("; use the synchronize you are given (the device's own applies only when synchronize is "
                        "None)")
        raise CheckFailed(f"{what} raised {text}{hint}") from error


def time_on_fake_device(median_time, durations, repeats, warmup, device, queued):
    """(result, runtime, what): median_time run on a fake device whose calls take `durations`."""
    runtime = FakeRuntime(durations, queued)
    what = (f"median_time(fn, repeats={repeats}, warmup={warmup}, device={describe_device(device)}, synchronize=..., "
            f"clock=...) on a fake {'GPU' if queued else 'CPU'} whose calls take {durations} s")
    result = call_median_time(median_time, what, CountCalls(FakeWork(runtime)), repeats=repeats, warmup=warmup,
                              device=device, synchronize=CountCalls(FakeSynchronize(runtime)),
                              clock=CountCalls(FakeClock(runtime)))
    return result, runtime, what


def check_timer_result(result, runtime, expected, repeats, warmup, what, mistakes=()):
    """`result` must be the float `expected` (within rounding), after exactly warmup + repeats calls of fn;
    `mistakes` is [(value, what a result equal to it means)]."""
    check_type(result, float, what)
    if runtime.calls != warmup + repeats:
        hint = ": the warm-up calls are missing" if runtime.calls == repeats and warmup else ""
        raise CheckFailed(f"{what}: fn() was called {runtime.calls} times, expected warmup + repeats = "
                          f"{warmup + repeats}{hint}")
    if math.isclose(result, expected, rel_tol=1e-9, abs_tol=1e-12):
        return
    hints = [meaning for value, meaning in mistakes if math.isclose(result, value, rel_tol=1e-9, abs_tol=1e-12)]
    raise CheckFailed(f"{what}: expected {expected:.6g} (the median of the timed calls), got {result:.6g}"
                      + "".join(f"; {hint}" for hint in hints))


LAUNCH_ONLY = "that is the launch time only: synchronize before reading the clock at the end of each timed call"


def check_default_synchronize(median_time, device_type):
    """synchronize=None means the device's own: on a machine without that device it raises (and so must
    median_time); with CUDA present, median_time must wait for real queued GPU work."""
    available = torch.cuda.is_available() if device_type == "cuda" else torch.backends.mps.is_available()
    own, name = f"torch.{device_type}.synchronize", {"cuda": "CUDA", "mps": "MPS (an Apple GPU)"}[device_type]
    what = f"median_time(fn, repeats=3, warmup=1, device={device_type!r}) (synchronize=None)"
    if not available:
        runtime = FakeRuntime([0.5, 0.004, 0.001, 0.01], queued=True)
        try:
            result = median_time(CountCalls(FakeWork(runtime)), repeats=3, warmup=1, device=device_type,
                                 clock=CountCalls(FakeClock(runtime)))
        except CheckFailed:
            raise
        except Exception:
            return  # the device's own synchronize raised: this machine has no such device
        raise CheckFailed(f"{what} returned {result!r} on a machine without {name}: with synchronize=None it "
                          f"should call {own}(), which raises here; yours never called it (look it up when "
                          f"median_time runs, and do not skip it)")
    if device_type == "cuda":  # real work on the GPU: a timer that does not wait for it measures microseconds
        result = call_median_time(median_time, what, CudaSleep(), repeats=3, warmup=1, device="cuda")
        check_type(result, float, what)
        check(result > 0.005, f"{what}: got {result:.3g} s for a GPU kernel that runs for tens of milliseconds: "
                              f"{LAUNCH_ONLY} ({own})")


def check_bad_arguments(median_time, repeats, warmup):
    """median_time must raise ValueError for repeats < 1 or warmup < 0."""
    what = f"median_time(fn, repeats={repeats}, warmup={warmup})"
    runtime = FakeRuntime([0.001] * 10, queued=False)
    try:
        median_time(CountCalls(FakeWork(runtime)), repeats=repeats, warmup=warmup, device="cpu",
                    clock=CountCalls(FakeClock(runtime)))
    except ValueError:  # when graded too: the learner's error reaches the check as a ValueError
        return
    except Exception as error:
        raise CheckFailed(f"{what}: expected ValueError, got {type(error).__name__}: {error}") from error
    raise CheckFailed(f"{what}: expected ValueError (repeats must be >= 1 and warmup >= 0), got no error")


@exercise("ex8_1_visible", "median_time")
def exercise_8_1(median_time):
    """A fake CPU, a fake CUDA GPU and a fake Apple GPU, on a fake clock; synchronize=None on this machine; bad
    arguments; one real GRU call."""
    durations, repeats, warmup = [0.5, 0.004, 0.001, 0.01], 3, 1
    timed_warmup = (0.007, "that is the median with the warm-up call timed too: do not time the warm-up")
    mean = (0.005, "that is the mean of the timed calls, not their median")
    milliseconds = (4.0, "that is in milliseconds: return the units of clock()")
    result, runtime, what = time_on_fake_device(median_time, durations, repeats, warmup, "cpu", queued=False)
    check_timer_result(result, runtime, 0.004, repeats, warmup, what, [timed_warmup, mean, milliseconds])
    result, runtime, what = time_on_fake_device(median_time, durations, repeats, warmup, "cuda", queued=True)
    leaked = (0.01, "the warm-up's queued work landed in the first timed call: synchronize before starting the clock")
    check_timer_result(result, runtime, 0.004, repeats, warmup, what,
                       [(1e-6, LAUNCH_ONLY), leaked, timed_warmup, mean, milliseconds])
    result, runtime, what = time_on_fake_device(median_time, durations, repeats, warmup, "mps", queued=True)
    check_timer_result(result, runtime, 0.004, repeats, warmup, what,
                       [(1e-6, f"{LAUNCH_ONLY}: an Apple GPU (MPS) queues its work too (torch.mps.synchronize)"),
                        leaked])
    check_default_synchronize(median_time, "cuda")
    for repeats, warmup in [(0, 1), (3, -1)]:
        check_bad_arguments(median_time, repeats, warmup)
    seconds = call_median_time(median_time, "median_time(a small GRU call, repeats=3, warmup=1, device='cpu')",
                               GRUCall(), repeats=3, warmup=1, device="cpu")
    check_type(seconds, float, "median_time of a small GRU call")
    check(0 < seconds < 10, f"median_time of a small GRU call: expected a fraction of a second, got {seconds} s")


# --- Exercise 8.2 · autocast_dtype and autocast_max_error ----------------------------------------------------------

AUTOCAST_DTYPES = {"cuda": torch.float16, "mps": torch.float16, "cpu": torch.bfloat16}


def dyadic_gru(seed, input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=False, seq_len=7,
               batch_size=3):
    """(nn.GRU, x) whose weights are multiples of 1/16 and inputs multiples of 1/8: exact in bfloat16 and float16,
    so the error autocast adds is the same on every CPU and thread count."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.GRU(input_size, hidden_size, num_layers, bidirectional=bidirectional, batch_first=batch_first)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randint(-8, 9, parameter.shape, generator=generator) / 16)
    if batch_size is None:
        shape = (seq_len, input_size)
    else:
        shape = (batch_size, seq_len, input_size) if batch_first else (seq_len, batch_size, input_size)
    return model, torch.randint(-8, 9, shape, generator=generator) / 8


def describe_gru(model, x):
    return (f"nn.GRU({model.input_size}, {model.hidden_size}, num_layers={model.num_layers}, "
            f"bidirectional={model.bidirectional}, batch_first={model.batch_first}), x of shape {tuple(x.shape)} "
            f"on {x.device.type}")


def check_autocast_dtype(autocast_dtype, device_type, expected):
    what = f"autocast_dtype({device_type!r})"
    with while_checking(what):
        result = autocast_dtype(device_type)
    check_type(result, torch.dtype, what)
    if result != expected:
        hint = ""
        if device_type == "cuda" and result == torch.bfloat16:
            hint = ": bfloat16 is the CPU's; CUDA's autocast uses float16, fast on its tensor cores"
        elif device_type == "mps" and result == torch.bfloat16:
            hint = ": Apple GPUs (MPS) use float16 under autocast, as CUDA does"
        elif device_type == "cpu" and result == torch.float16:
            hint = ": float16 is the GPUs'; the CPU's autocast uses bfloat16"
        raise CheckFailed(f"{what}: expected {expected}, got {result}{hint}")


def run_autocast_max_error(autocast_max_error, model, x, low_dtype, what):
    """Call the answer, then check that it left the model and x as they were; returns its result."""
    before = parameters_of(model)
    x_before = x.clone()
    args = (model, x) if low_dtype is None else (model, x, low_dtype)
    with while_checking(what):
        result = autocast_max_error(*args)
    for name, parameter in parameters_of(model).items():
        check(parameter.dtype == before[name].dtype,
              f"{what} changed the model: {name} is now {parameter.dtype} (model.to, .half and .bfloat16 convert "
              f"the model in place; torch.autocast leaves it alone)")
        check(torch.equal(parameter, before[name]), f"{what} changed the values of the model's {name}")
    for name, gradient in gradients_of(model).items():
        check(gradient is None, f"{what} computed gradients ({name}.grad is set): run under torch.no_grad()")
    check(torch.equal(x, x_before), f"{what} changed x")
    return result


def check_autocast_result(result, low_dtype, error, what, mistakes=(), dtype_hint=""):
    """`result` must be (low_dtype, error): a torch.dtype and a float within 0.1 % of `error`. `mistakes` is
    [(value, meaning)] for errors that known mistakes return; `dtype_hint` explains a wrong dtype."""
    check_type(result, tuple, what)
    check(len(result) == 2, f"{what}: expected a pair (low_dtype, error), got {len(result)} items")
    got_dtype, got_error = result
    check_type(got_dtype, torch.dtype, f"{what}: low_dtype")
    check(got_dtype == low_dtype, f"{what}: expected low_dtype {low_dtype}, got {got_dtype}{dtype_hint}")
    check_type(got_error, float, f"{what}: error")
    check(got_error > 0, f"{what}: error 0.0: were both runs inside torch.autocast, or neither?")
    if math.isclose(got_error, error, rel_tol=1e-3):
        return
    hints = [meaning for value, meaning in mistakes if math.isclose(got_error, value, rel_tol=1e-3)]
    raise CheckFailed(f"{what}: expected error {error:.6g} (the largest |difference| between the two outputs), got "
                      f"{got_error:.6g}" + "".join(f"; {hint}" for hint in hints))


H_N_INSTEAD = "that is the largest difference in h_n: compare output, the first item model(x) returns"


@exercise("ex8_2_visible", "autocast_dtype", "autocast_max_error")
def exercise_8_2(autocast_dtype, autocast_max_error):
    """The dtype for CUDA, MPS and the CPU; then two GRUs with weights exact in low precision on the CPU, whose
    errors under autocast are known: the default dtype, float16 asked for, and the model and x left unchanged."""
    for device_type, expected in AUTOCAST_DTYPES.items():
        check_autocast_dtype(autocast_dtype, device_type, expected)
    model, x = dyadic_gru(82, 5, 6)
    what = f"autocast_max_error({describe_gru(model, x)})"
    result = run_autocast_max_error(autocast_max_error, model, x, None, what)
    check_autocast_result(result, torch.bfloat16, 2.457857e-03, what,
                          [(3.318310e-03, "that is the error of the whole model converted to bfloat16: use "
                                          "torch.autocast, which casts only some operations and keeps the weights")])
    what = f"autocast_max_error({describe_gru(model, x)}, low_dtype=torch.float16)"
    result = run_autocast_max_error(autocast_max_error, model, x, torch.float16, what)
    check_autocast_result(result, torch.float16, 2.596974e-04, what,
                          [(1.620650e-04, H_N_INSTEAD), (2.457857e-03, "that is the error with bfloat16")],
                          dtype_hint=": use the low_dtype you are given (None means autocast_dtype(x.device.type))")
    model, x = dyadic_gru(83, 5, 6, num_layers=2, batch_first=True)
    what = f"autocast_max_error({describe_gru(model, x)})"
    result = run_autocast_max_error(autocast_max_error, model, x, None, what)
    check_autocast_result(result, torch.bfloat16, 2.467334e-03, what, [(2.479732e-03, H_N_INSTEAD)])


# --- Exercise 8.3 · LearnableInitialState --------------------------------------------------------------------------


class StateProbe:
    """A forward hook that the checks put on a LearnableInitialState. It runs where the module runs (when graded, in
    the learner's process, where the grader sees only a copy of the state) and looks at the state itself: it must be
    contiguous, as cuDNN requires, and a gradient must flow from it back to h0."""

    def __call__(self, module, args, state):
        if not isinstance(state, torch.Tensor) or not state.requires_grad:
            return  # the checks say so from the copy
        if not state.is_contiguous():
            raise RuntimeError(f"the state is not contiguous (strides {tuple(state.stride())}): cuDNN raises 'rnn: "
                               f"hx is not contiguous' for an expand()-ed state; use .repeat or .contiguous()")
        h0 = dict(module.named_parameters()).get("h0")
        if h0 is None:
            return
        weights = torch.linspace(0.5, 1.5, state.numel(), dtype=state.dtype, device=state.device).reshape(state.shape)
        (gradient,) = torch.autograd.grad(state, h0, grad_outputs=weights, retain_graph=True, allow_unused=True)
        if gradient is None:
            raise RuntimeError("no gradient flows from the state back to h0 (detached? .data?)")
        expected = weights.sum(dim=1, keepdim=True)
        if gradient.shape != expected.shape or not torch.allclose(gradient, expected, rtol=1e-5, atol=1e-6):
            raise RuntimeError("the gradient that reaches h0 is not the sum over the batch of the state's gradient: "
                               "each sequence should get h0 itself")


def check_learnable_initial_state(LearnableInitialState, hidden_size, num_layers=1, bidirectional=False,
                                  batch_sizes=(3,), dtype=None, seed=83):
    what = (f"LearnableInitialState(hidden_size={hidden_size}, num_layers={num_layers}, "
            f"bidirectional={bidirectional})")
    rows = num_layers * (2 if bidirectional else 1)
    with while_checking(what):
        module = LearnableInitialState(hidden_size, num_layers, bidirectional)
    check(is_module(module), f"{what}: expected an nn.Module, got {type_name(module)}")
    parameters = parameters_of(module)
    if list(parameters) != ["h0"]:
        hint = (" (a buffer or a plain tensor attribute is not trained: make h0 an nn.Parameter)" if not parameters
                else "")
        raise CheckFailed(f"{what}: expected exactly one parameter named 'h0', got {list(parameters)}{hint}")
    h0 = parameters["h0"]
    shape = tuple(h0.shape)
    if shape != (rows, 1, hidden_size):
        hint = ""
        if shape == (rows, hidden_size):
            hint = ": keep the batch dimension, of size 1, in the middle: (num_layers * D, 1, H)"
        elif bidirectional and shape == (num_layers, 1, hidden_size):
            hint = ": a bidirectional GRU has num_layers * 2 rows in h_0 (D = 2)"
        raise CheckFailed(f"{what}.h0: expected shape {(rows, 1, hidden_size)}, got {shape}{hint}")
    check(bool((h0 == 0).all()), f"{what}: h0 should start as zeros (training starts from the usual zero state)")
    if dtype is not None:
        with while_checking(f"{what}.to({dtype})"):
            module = module.to(dtype)
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(rows, 1, hidden_size, generator=generator, dtype=dtype or torch.float32)
    with while_checking(f"{what}.load_state_dict({{'h0': ...}})"):
        module.load_state_dict({"h0": values})
        module.register_forward_hook(StateProbe())
    for batch_size in batch_sizes:
        call = f"{what}({batch_size})"
        with while_checking(call):
            state = module(batch_size)
        check_type(state, torch.Tensor, call)
        if tuple(state.shape) == (rows, 1, hidden_size) and batch_size != 1:
            raise CheckFailed(f"{call}: expected shape {(rows, batch_size, hidden_size)}, got {tuple(state.shape)}: "
                              f"repeat h0 for every sequence of the batch")
        check_tensor(state, values.expand(rows, batch_size, hidden_size), call)
        check(state.requires_grad, f"{call}: the state does not require grad, so no gradient can reach h0 "
                                   f"(detached? .data? a buffer?)")
    with while_checking(f"{what}.state_dict()"):
        state_dict = module.state_dict()
        saved_h0 = state_dict.get("h0")
    check_tensor(saved_h0, values, f"{what}.state_dict()['h0']")
    with while_checking(f"a new {what} loading that state_dict"):
        restored = LearnableInitialState(hidden_size, num_layers, bidirectional)
        if dtype is not None:
            restored = restored.to(dtype)
        restored.load_state_dict(state_dict)
        restored.register_forward_hook(StateProbe())
        state = restored(2)
    check_tensor(state, values.expand(rows, 2, hidden_size), f"{what}: after a state_dict round trip, forward(2)")


@exercise("ex8_3_visible", "LearnableInitialState")
def exercise_8_3(LearnableInitialState):
    """The parameter, the shape and contiguity of the state, its gradient, the state_dict: two layers, then one
    bidirectional layer."""
    check_learnable_initial_state(LearnableInitialState, hidden_size=4, num_layers=2)
    check_learnable_initial_state(LearnableInitialState, hidden_size=3, num_layers=1, bidirectional=True,
                                  batch_sizes=(2,))


# --- Exercise 8.4 · keras_gru_to_torch -----------------------------------------------------------------------------


def call_keras_gru_to_torch(keras_gru_to_torch, kernel, recurrent_kernel, bias, what):
    with while_checking(what):
        return keras_gru_to_torch(kernel, recurrent_kernel, bias)


def check_state_dict_layout(state, input_size, hidden_size, with_bias, dtype, what):
    """The keys, types, shapes and dtype of `state` (a dict); returns it as a plain dict."""
    state = as_dict(state, what)
    expected = {"weight_ih_l0": (3 * hidden_size, input_size), "weight_hh_l0": (3 * hidden_size, hidden_size)}
    if with_bias:
        expected.update({"bias_ih_l0": (3 * hidden_size,), "bias_hh_l0": (3 * hidden_size,)})
    if sorted(state) != sorted(expected):
        hint = ""
        if not with_bias and "bias_ih_l0" in state:
            hint = ": with bias=None (use_bias=False) there are no bias entries"
        raise CheckFailed(f"{what}: expected the keys {sorted(expected)}, got {sorted(state)}{hint}")
    for key, shape in expected.items():
        name = f"{what}: state[{key!r}]"
        check_type(state[key], torch.Tensor, name)
        if tuple(state[key].shape) == shape[::-1] and shape[0] != shape[-1]:
            raise CheckFailed(f"{name}: shape {tuple(state[key].shape)} is the Keras layout: PyTorch wants {shape} "
                              f"(transpose the kernel)")
        check_shape(state[key].shape, shape, f"{name}.shape")
        check(state[key].dtype == dtype, f"{name}: expected dtype {dtype} (the arrays' dtype), got {state[key].dtype}")
    return state


def gate_blocks(rows, hidden_size, offset=0.0, dtype=np.float32):
    """A Keras-layout array (rows, 3H) whose z, r, h column blocks hold 1, 2, 3 (+ offset)."""
    return np.concatenate([np.full((rows, hidden_size), gate + offset) for gate in (1, 2, 3)], axis=-1).astype(dtype)


def check_gate_placement(keras_gru_to_torch, input_size, hidden_size, dtype=np.float32):
    """Weights whose gate blocks hold their gate's number (z = 1, r = 2, h = 3; the recurrent bias + 10): each
    block must land in PyTorch's place for it."""
    what = f"keras_gru_to_torch(kernel ({input_size}, {3 * hidden_size}), ...) with gate-numbered blocks"
    bias = np.stack([gate_blocks(1, hidden_size, 0.0, dtype)[0], gate_blocks(1, hidden_size, 10.0, dtype)[0]])
    state = call_keras_gru_to_torch(keras_gru_to_torch, gate_blocks(input_size, hidden_size, 0.0, dtype),
                                    gate_blocks(hidden_size, hidden_size, 0.0, dtype), bias, what)
    state = check_state_dict_layout(state, input_size, hidden_size, True, torch.from_numpy(bias).dtype, what)
    H = hidden_size
    for key, offset in [("weight_ih_l0", 0), ("weight_hh_l0", 0), ("bias_ih_l0", 0), ("bias_hh_l0", 10)]:
        blocks = state[key].double().split(H, dim=0)
        got = [sorted({round(v, 6) for v in block.flatten().tolist()}) for block in blocks]
        want = [[2.0 + offset], [1.0 + offset], [3.0 + offset]]
        if got == want:
            continue
        hint = ""
        if got == [[1.0 + offset], [2.0 + offset], [3.0 + offset]]:
            hint = ": the gate order is still Keras' z, r, h; PyTorch's is r, z, n"
        elif key == "bias_ih_l0" and got in ([[14.0], [12.0], [16.0]], [[12.0], [14.0], [16.0]]):
            hint = ": the two Keras biases were added together; bias[0] is the input bias, bias[1] the recurrent one"
        elif key == "bias_ih_l0" and got in ([[12.0], [11.0], [13.0]], [[11.0], [12.0], [13.0]]):
            hint = ": bias_ih_l0 holds the recurrent bias bias[1]; the input bias is bias[0]"
        elif key == "bias_hh_l0" and got == [[0.0], [0.0], [0.0]]:
            hint = ": the recurrent bias is missing (it sits inside the reset gate's product, so it cannot be merged)"
        elif any(len(block) > 1 for block in got):
            hint = ": blocks mix several gates (a reshape instead of a transpose?)"
        raise CheckFailed(f"{what}: {key}'s three row blocks should hold the r, z, n values {want}, got {got}{hint}")


@exercise("ex8_4_visible", "keras_gru_to_torch")
def exercise_8_4(keras_gru_to_torch):
    """Keys, types, shapes and dtype for random weights, with and without a bias; then gate-numbered weights."""
    rng = np.random.default_rng(84)
    kernel, recurrent, bias = (rng.standard_normal(s).astype(np.float32) for s in [(5, 12), (4, 12), (2, 12)])
    what = "keras_gru_to_torch(kernel (5, 12), recurrent_kernel (4, 12), bias (2, 12))"
    state = call_keras_gru_to_torch(keras_gru_to_torch, kernel, recurrent, bias, what)
    check_state_dict_layout(state, 5, 4, True, torch.float32, what)
    what = "keras_gru_to_torch(kernel (5, 12), recurrent_kernel (4, 12), bias=None), float64 arrays"
    state = call_keras_gru_to_torch(keras_gru_to_torch, kernel.astype(np.float64), recurrent.astype(np.float64), None,
                                    what)
    check_state_dict_layout(state, 5, 4, False, torch.float64, what)
    check_gate_placement(keras_gru_to_torch, input_size=5, hidden_size=4)
