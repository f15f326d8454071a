"""Lesson 08's checks grade fairly: plausible mistakes (a timer without warm-up or synchronize, or that forgets
Apple's GPUs; autocast with the wrong dtype for a device, or a converted model; a learnable h_0 that is expanded but
not contiguous; Keras weights with the gate order, the transposition or the biases wrong) lose points, and the
visible checks name them; correct answers written differently score full marks.

How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests). No GPU is needed: the
checks fake one, and on a machine without CUDA or MPS, torch.cuda.synchronize and torch.mps.synchronize raise."""

import pytest

from tests.check_cells import run_check_cells
from tests.harness import LessonTests

LESSON = "08-gpu-and-porting"

# ----------------------------------------------------------------------------------------------------------------
# Exercise 8.1 · median_time

MEDIAN_TIME_TEMPLATE = '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if repeats < 1 or warmup < 0:
        raise ValueError("bad arguments")
    kind = torch.device(device).type
    if kind in GPUS:
        wait = DEFAULT[kind] if synchronize is None else synchronize
    else:
        def wait():
            pass
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(repeats):
        BEFORE
        start = clock()
        fn()
        AFTER
        times.append(clock() - start)
    return RESULT
'''
MEDIAN_TIME_RIGHT = {"GPUS": '("cuda", "mps")',
                     "DEFAULT": '{"cuda": torch.cuda.synchronize, "mps": torch.mps.synchronize}',
                     "WARMUP": "warmup", "BEFORE": "wait()", "AFTER": "wait()",
                     "RESULT": "float(statistics.median(times))"}


def median_time_with(**changes):
    source = MEDIAN_TIME_TEMPLATE
    for key, value in {**MEDIAN_TIME_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


MEDIAN_TIME_MISTAKES = {
    "no warm-up": median_time_with(WARMUP="0"),
    "MPS not synchronized (CUDA only)": median_time_with(GPUS='("cuda",)'),
    "no synchronize": median_time_with(BEFORE="pass", AFTER="pass"),
    "no synchronize before starting the clock": median_time_with(BEFORE="pass"),
    "no synchronize before stopping the clock": median_time_with(AFTER="pass"),
    "mean instead of median": median_time_with(RESULT="float(statistics.mean(times))"),
    "milliseconds": median_time_with(RESULT="1000 * float(statistics.median(times))"),
    "a tensor instead of a float": median_time_with(RESULT="torch.tensor(times).median()"),
    "warm-up timed too": '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if repeats < 1 or warmup < 0:
        raise ValueError("bad arguments")
    kind = torch.device(device).type
    wait = (synchronize or getattr(torch, kind).synchronize) if kind in ("cuda", "mps") else (lambda: None)
    times = []
    for _ in range(warmup + repeats):
        wait()
        start = clock()
        fn()
        wait()
        times.append(clock() - start)
    return float(statistics.median(times))
''',
    "one block of calls divided by repeats": '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if repeats < 1 or warmup < 0:
        raise ValueError("bad arguments")
    kind = torch.device(device).type
    wait = (synchronize or getattr(torch, kind).synchronize) if kind in ("cuda", "mps") else (lambda: None)
    for _ in range(warmup):
        fn()
    wait()
    start = clock()
    for _ in range(repeats):
        fn()
    wait()
    return (clock() - start) / repeats
''',
    "torch.cuda.synchronize always, on every device": '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if repeats < 1 or warmup < 0:
        raise ValueError("bad arguments")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = clock()
        fn()
        torch.cuda.synchronize()
        times.append(clock() - start)
    return float(statistics.median(times))
''',
    "the synchronize argument ignored": '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if repeats < 1 or warmup < 0:
        raise ValueError("bad arguments")
    kind = torch.device(device).type
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if kind in ("cuda", "mps"):
            getattr(torch, kind).synchronize()
        start = clock()
        fn()
        if kind in ("cuda", "mps"):
            getattr(torch, kind).synchronize()
        times.append(clock() - start)
    return float(statistics.median(times))
''',
    "synchronize=None never falls back to torch.cuda.synchronize": '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if repeats < 1 or warmup < 0:
        raise ValueError("bad arguments")
    wait = synchronize or (lambda: None)
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
''',
    "no ValueError for bad arguments": median_time_with().replace('raise ValueError("bad arguments")', "pass"),
    "the default synchronize skipped where there is no CUDA": median_time_with(
        DEFAULT='{"cuda": torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None), '
                '"mps": torch.mps.synchronize}'),
}
# What the visible checks say about each mistake (a piece of the message).
MEDIAN_TIME_VISIBLE_MESSAGES = {
    "no warm-up": "the warm-up calls are missing",
    "MPS not synchronized (CUDA only)": "an Apple GPU (MPS) queues its work too",
    "no synchronize": "that is the launch time only",
    "no synchronize before starting the clock": "synchronize before starting the clock",
    "no synchronize before stopping the clock": "that is the launch time only",
    "mean instead of median": "not their median",
    "milliseconds": "that is in milliseconds",
    "a tensor instead of a float": "expected float, got Tensor",
    "warm-up timed too": "with the warm-up call timed too",
    "one block of calls divided by repeats": "not their median",
    "torch.cuda.synchronize always, on every device": "never synchronize there",
    "the synchronize argument ignored": "use the synchronize you are given",
    "synchronize=None never falls back to torch.cuda.synchronize": "yours never called it",
    "no ValueError for bad arguments": "expected ValueError",
    "the default synchronize skipped where there is no CUDA": "yours never called it",
}

# Correct, written differently: one synchronize after the warm-up and one after each call; torch's median (the
# lower middle value for an even count); devices told apart by their names.
ALT_MEDIAN_TIME = '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if not (repeats >= 1 and warmup >= 0):
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    sync = None
    name = str(device).split(":")[0]
    if name in ("cuda", "mps"):
        sync = synchronize if synchronize is not None else getattr(torch, name).synchronize
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    samples = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        if sync:
            sync()
        samples.append(clock() - t0)
    return torch.tensor(samples, dtype=torch.float64).median().item()
'''
# Correct too: the upper middle value for an even count.
ALT_MEDIAN_TIME_UPPER = '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats < 1 or warmup < 0")
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    def barrier():
        if kind == "cuda":
            (synchronize or torch.cuda.synchronize)()
        elif kind == "mps":
            (synchronize or torch.mps.synchronize)()
    [fn() for _ in range(warmup)]
    durations = []
    while len(durations) < repeats:
        barrier()
        begin = clock()
        fn()
        barrier()
        durations.append(clock() - begin)
    return float(sorted(durations)[len(durations) // 2])
'''

# ----------------------------------------------------------------------------------------------------------------
# Exercise 8.2 · autocast_max_error

RIGHT_AUTOCAST_DTYPE = '''
def autocast_dtype(device_type):
    return torch.bfloat16 if device_type == "cpu" else torch.float16
'''
AUTOCAST_TEMPLATE = RIGHT_AUTOCAST_DTYPE + '''

def autocast_max_error(model, x, low_dtype=None):
    if low_dtype is None:
        low_dtype = autocast_dtype(x.device.type)
    with torch.no_grad():
        reference = model(x)[0]
        with torch.autocast(device_type=x.device.type, dtype=low_dtype):
            low = model(x)[0]
    return low_dtype, (low.float() - reference.float()).abs().max().item()
'''


def autocast_with(old, new):
    assert old in AUTOCAST_TEMPLATE, old
    return AUTOCAST_TEMPLATE.replace(old, new)


DTYPE_CHOICE = 'torch.bfloat16 if device_type == "cpu" else torch.float16'
AUTOCAST_MISTAKES = {
    "bfloat16 on every device": autocast_with(DTYPE_CHOICE, "torch.bfloat16"),
    "float16 on every device": autocast_with(DTYPE_CHOICE, "torch.float16"),
    "bfloat16 on MPS": autocast_with(DTYPE_CHOICE, 'torch.float16 if device_type == "cuda" else torch.bfloat16'),
    "the dtype's name instead of the dtype": autocast_with(DTYPE_CHOICE, '"bfloat16" if device_type == "cpu" else '
                                                                         '"float16"'),
    "low_dtype ignored": autocast_with("    if low_dtype is None:\n        low_dtype = autocast_dtype(x.device.type)",
                                       "    low_dtype = autocast_dtype(x.device.type)"),
    "the reference run inside autocast too": RIGHT_AUTOCAST_DTYPE + '''
def autocast_max_error(model, x, low_dtype=None):
    low_dtype = low_dtype or autocast_dtype(x.device.type)
    with torch.no_grad(), torch.autocast(device_type=x.device.type, dtype=low_dtype):
        reference = model(x)[0]
        low = model(x)[0]
    return low_dtype, (low.float() - reference.float()).abs().max().item()
''',
    "the model converted in place": RIGHT_AUTOCAST_DTYPE + '''
def autocast_max_error(model, x, low_dtype=None):
    low_dtype = low_dtype or autocast_dtype(x.device.type)
    with torch.no_grad():
        reference = model(x)[0]
        low = model.to(low_dtype)(x.to(low_dtype))[0]
    return low_dtype, (low.float() - reference).abs().max().item()
''',
    "a tensor instead of a float": autocast_with(".abs().max().item()", ".abs().max()"),
    "h_n compared instead of output": autocast_with("model(x)[0]", "model(x)[1]"),
    "a model copy in low precision instead of autocast": RIGHT_AUTOCAST_DTYPE + '''
import copy

def autocast_max_error(model, x, low_dtype=None):
    low_dtype = low_dtype or autocast_dtype(x.device.type)
    with torch.no_grad():
        reference = model(x)[0]
        low = copy.deepcopy(model).to(low_dtype)(x.to(low_dtype))[0]
    return low_dtype, (low.float() - reference).abs().max().item()
''',
    "gradients computed": autocast_with("    with torch.no_grad():\n        reference = model(x)[0]\n",
                                        "    if True:\n        reference = model(x)[0]\n"
                                        "        reference.sum().backward()\n"),
}
# What the visible checks say about each mistake (a piece of the message).
AUTOCAST_VISIBLE_MESSAGES = {
    "bfloat16 on every device": "bfloat16 is the CPU's",
    "float16 on every device": "float16 is the GPUs'",
    "bfloat16 on MPS": "Apple GPUs (MPS) use float16",
    "the dtype's name instead of the dtype": "expected dtype, got str",
    "low_dtype ignored": "use the low_dtype you are given",
    "the reference run inside autocast too": "were both runs inside torch.autocast",
    "the model converted in place": "convert the model in place",
    "a tensor instead of a float": "error: expected float, got Tensor",
    "h_n compared instead of output": "that is the largest difference in h_n",
    "a model copy in low precision instead of autocast": "the whole model converted to bfloat16",
    "gradients computed": "run under torch.no_grad()",
}

# Correct, written differently: PyTorch's own default dtypes, torch.amp.autocast, inference_mode, a float64 error.
ALT_AUTOCAST = '''
def autocast_dtype(device_type):
    return torch.get_autocast_dtype(device_type)


def autocast_max_error(model, x, low_dtype=None):
    kind = x.device.type
    dtype = autocast_dtype(kind) if low_dtype is None else low_dtype
    with torch.inference_mode():
        full, _ = model(x)
        with torch.amp.autocast(kind, dtype=dtype):
            mixed, _ = model(x)
    return dtype, float((mixed.to(torch.float64) - full.to(torch.float64)).abs().max().to(torch.float32))
'''
# Correct too: a table, the two runs in separate blocks, a tuple in parentheses.
ALT_AUTOCAST_TABLE = '''
LOW = {"cuda": torch.float16, "mps": torch.float16, "cpu": torch.bfloat16}


def autocast_dtype(device_type):
    return LOW[device_type]


def autocast_max_error(model, x, low_dtype=None):
    low_dtype = low_dtype or LOW[x.device.type]
    with torch.no_grad():
        plain = model(x)[0].float()
    with torch.no_grad(), torch.autocast(x.device.type, dtype=low_dtype):
        cast = model(x)[0]
    return (low_dtype, (cast.float() - plain).abs().max().item())
'''

# ----------------------------------------------------------------------------------------------------------------
# Exercise 8.3 · LearnableInitialState

INITIAL_STATE_TEMPLATE = '''
class LearnableInitialState(nn.Module):
    def __init__(self, hidden_size, num_layers=1, bidirectional=False):
        super().__init__()
        rows = num_layers * DIRECTIONS
        MAKE

    def forward(self, batch_size):
        return RETURN
'''
INITIAL_STATE_RIGHT = {"DIRECTIONS": "(2 if bidirectional else 1)",
                       "MAKE": "self.h0 = nn.Parameter(torch.zeros(rows, 1, hidden_size))",
                       "RETURN": "self.h0.expand(-1, batch_size, -1).contiguous()"}


def initial_state_with(**changes):
    source = INITIAL_STATE_TEMPLATE
    for key, value in {**INITIAL_STATE_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


INITIAL_STATE_MISTAKES = {
    "expand without a contiguous copy": initial_state_with(RETURN="self.h0.expand(-1, batch_size, -1)"),
    "detached from the parameter": initial_state_with(RETURN="self.h0.data.repeat(1, batch_size, 1)"),
    "a buffer, not a parameter": initial_state_with(
        MAKE='self.register_buffer("h0", torch.zeros(rows, 1, hidden_size))'),
    "parameter without the batch dimension": initial_state_with(
        MAKE="self.h0 = nn.Parameter(torch.zeros(rows, hidden_size))",
        RETURN="self.h0.unsqueeze(1).expand(-1, batch_size, -1).contiguous()"),
    "bidirectional ignored": initial_state_with(DIRECTIONS="1"),
    "not expanded to the batch": initial_state_with(RETURN="self.h0"),
    "random start instead of zeros": initial_state_with(
        MAKE="self.h0 = nn.Parameter(0.1 * torch.randn(rows, 1, hidden_size))"),
    "the parameter under another name": initial_state_with(
        MAKE="self.initial = nn.Parameter(torch.zeros(rows, 1, hidden_size))",
        RETURN="self.initial.expand(-1, batch_size, -1).contiguous()"),
}

INITIAL_STATE_VISIBLE_MESSAGES = {
    "expand without a contiguous copy": "not contiguous",
    "detached from the parameter": "does not require grad",
    "a buffer, not a parameter": "make h0 an nn.Parameter",
    "parameter without the batch dimension": "keep the batch dimension",
    "bidirectional ignored": "a bidirectional GRU has num_layers * 2 rows",
    "not expanded to the batch": "repeat h0 for every sequence of the batch",
    "random start instead of zeros": "h0 should start as zeros",
    "the parameter under another name": "expected exactly one parameter named 'h0'",
}

# Correct, written differently: register_parameter and repeat.
ALT_INITIAL_STATE = '''
class LearnableInitialState(nn.Module):
    def __init__(self, hidden_size, num_layers=1, bidirectional=False):
        super().__init__()
        self.register_parameter("h0", nn.Parameter(torch.zeros(num_layers * (1 + int(bidirectional)), 1,
                                                               hidden_size)))

    def forward(self, batch_size):
        return self.h0.repeat(1, batch_size, 1)
'''
MORE_CORRECT_INITIAL_STATES = {
    "concatenated copies": initial_state_with(RETURN="torch.cat([self.h0] * batch_size, dim=1)"),
    "expand then clone": initial_state_with(RETURN="self.h0.expand(-1, batch_size, -1).clone()"),
}

# ----------------------------------------------------------------------------------------------------------------
# Exercise 8.4 · keras_gru_to_torch

KERAS_TEMPLATE = '''
def keras_gru_to_torch(kernel, recurrent_kernel, bias=None):
    def blocks(a):
        z, r, h = np.split(np.asarray(a), 3, axis=-1)
        return ORDER

    def weight(a):
        return torch.from_numpy(np.ascontiguousarray(TRANSPOSE))

    state = {"weight_ih_l0": weight(kernel), "weight_hh_l0": weight(recurrent_kernel)}
    if BIAS_GUARD:
        bias = np.asarray(bias)
        state["bias_ih_l0"] = torch.from_numpy(np.ascontiguousarray(BIAS_IH))
        state["bias_hh_l0"] = torch.from_numpy(np.ascontiguousarray(BIAS_HH))
    return state
'''
KERAS_RIGHT = {"ORDER": "np.concatenate([r, z, h], axis=-1)", "TRANSPOSE": "blocks(a).T",
               "BIAS_GUARD": "bias is not None", "BIAS_IH": "blocks(bias[0])", "BIAS_HH": "blocks(bias[1])"}


def keras_with(**changes):
    source = KERAS_TEMPLATE
    for key, value in {**KERAS_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


KERAS_MISTAKES = {
    "gate order left as z, r, h": keras_with(ORDER="np.concatenate([z, r, h], axis=-1)"),
    "reshaped instead of transposed": keras_with(TRANSPOSE="blocks(a).reshape(a.shape[1], a.shape[0])"),
    "not transposed at all": keras_with(TRANSPOSE="blocks(a)"),
    "the two biases summed into one": keras_with(BIAS_IH="blocks(bias[0] + bias[1])",
                                                 BIAS_HH="np.zeros_like(bias[1])"),
    "the two biases swapped": keras_with(BIAS_IH="blocks(bias[1])", BIAS_HH="blocks(bias[0])"),
    "biases not reordered": keras_with(BIAS_IH="bias[0]", BIAS_HH="bias[1]"),
    "always float32": keras_with(TRANSPOSE="blocks(a).T.astype(np.float32)"),
    "bias=None not handled": keras_with(BIAS_GUARD="True"),
}

KERAS_VISIBLE_MESSAGES = {
    "gate order left as z, r, h": "the gate order is still Keras' z, r, h",
    "reshaped instead of transposed": "a reshape instead of a transpose",
    "not transposed at all": "is the Keras layout",
    "the two biases summed into one": "the two Keras biases were added together",
    "the two biases swapped": "bias_ih_l0 holds the recurrent bias",
    "biases not reordered": "the gate order is still Keras' z, r, h",
    "always float32": "(the arrays' dtype)",
    "bias=None not handled": "bias=None), float64 arrays",
}
# Correct, written differently: torch slicing and cat, non-contiguous transposed views, an OrderedDict.
ALT_KERAS = '''
from collections import OrderedDict

def keras_gru_to_torch(kernel, recurrent_kernel, bias=None):
    def to_torch(array):
        t = torch.as_tensor(array)
        n = t.shape[-1] // 3
        return torch.cat([t[..., n:2 * n], t[..., :n], t[..., 2 * n:]], dim=-1)

    out = OrderedDict()
    out["weight_ih_l0"] = to_torch(kernel).t()
    out["weight_hh_l0"] = to_torch(recurrent_kernel).t()
    if bias is not None:
        b = to_torch(bias)
        out["bias_ih_l0"], out["bias_hh_l0"] = b[0].clone(), b[1].clone()
    return out
'''

# ----------------------------------------------------------------------------------------------------------------
# The graded students.

ALTERNATIVE = {"ex8_1_median_time": ALT_MEDIAN_TIME, "ex8_2_autocast_max_error": ALT_AUTOCAST,
               "ex8_3_learnable_initial_state": ALT_INITIAL_STATE, "ex8_4_keras_gru_to_torch": ALT_KERAS}
# One classic mistake per exercise, graded end to end.
MISTAKES = {"ex8_1_median_time": MEDIAN_TIME_MISTAKES["no warm-up"],
            "ex8_2_autocast_max_error": AUTOCAST_MISTAKES["bfloat16 on every device"],
            "ex8_3_learnable_initial_state": INITIAL_STATE_MISTAKES["expand without a contiguous copy"],
            "ex8_4_keras_gru_to_torch": KERAS_MISTAKES["gate order left as z, r, h"]}
HOSTILE = {
    # Objects that claim to equal anything.
    "ex8_1_median_time": '''
class Anything(float):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    return Anything(0.0)
''',
    "ex8_2_autocast_max_error": '''
class Anything(tuple):
    def __eq__(self, other):
        return True

def autocast_dtype(device_type):
    return Anything()

def autocast_max_error(model, x, low_dtype=None):
    return Anything((Anything(), Anything()))
''',
    "ex8_3_learnable_initial_state": '''
class Anything:
    def __eq__(self, other):
        return True
    shape = property(lambda self: Anything())

class LearnableInitialState(nn.Module):
    def __init__(self, hidden_size, num_layers=1, bidirectional=False):
        super().__init__()
        self.h0 = nn.Parameter(torch.zeros(num_layers * (2 if bidirectional else 1), 1, hidden_size))

    def forward(self, batch_size):
        return Anything()
''',
    "ex8_4_keras_gru_to_torch": '''
class Anything(dict):
    def __eq__(self, other):
        return True
    def __getitem__(self, key):
        return self

def keras_gru_to_torch(kernel, recurrent_kernel, bias=None):
    return Anything()
''',
}

SUBMISSIONS = {"alternative": ALTERNATIVE, "mistakes": MISTAKES, "hostile": HOSTILE}
# Graded end to end by the course's grader too: the alternative answers reach it through the kernel's agent (an
# OrderedDict read item by item, errors reported by name, the fake devices' calls served by the grader).
AUTOGRADED = {"mistakes": SUBMISSIONS["mistakes"], "alternative": SUBMISSIONS["alternative"]}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


ANSWER_CELLS = {answer_id[:5]: answer_id for answer_id in ALTERNATIVE}  # "ex8_1" -> "ex8_1_median_time"
EXERCISES = list(ANSWER_CELLS)


# ----------------------------------------------------------------------------------------------------------------
# Many more variants through the same check cells, in-process.

@pytest.mark.parametrize("student", ["mistakes", "hostile"])
def test_plausible_mistakes_fail_the_visible_and_hidden_checks(student):
    # The visible checks use fake GPUs with a slow warm-up, every device's autocast dtype, two GRUs, initial states
    # for two layers and a bidirectional layer, and gate-numbered Keras weights: these students' mistakes show there.
    results = run_check_cells(LESSON, SUBMISSIONS[student])
    for exercise in EXERCISES:
        for kind in ("visible", "hidden"):
            assert results[f"{exercise}_{kind}"] is not None, (student, exercise, kind)


def check_results(exercise, answer):
    """``{grade_id: None or the error message}`` for the check cells of ``exercise`` (e.g. "ex8_1"), its answer
    cell replaced by ``answer``."""
    results = run_check_cells(LESSON, {ANSWER_CELLS[exercise]: answer})
    assert len(results) == 2, results
    return results


def run_exercise(exercise, answer):
    """``{grade_id: passed}`` for the check cells of ``exercise``."""
    return {grade_id: error is None for grade_id, error in check_results(exercise, answer).items()}


ALL_MISTAKES = ([("ex8_1", name, source) for name, source in MEDIAN_TIME_MISTAKES.items()]
                + [("ex8_2", name, source) for name, source in AUTOCAST_MISTAKES.items()]
                + [("ex8_3", name, source) for name, source in INITIAL_STATE_MISTAKES.items()]
                + [("ex8_4", name, source) for name, source in KERAS_MISTAKES.items()])
VISIBLE_MESSAGES = {"ex8_1": MEDIAN_TIME_VISIBLE_MESSAGES, "ex8_2": AUTOCAST_VISIBLE_MESSAGES,
                    "ex8_3": INITIAL_STATE_VISIBLE_MESSAGES, "ex8_4": KERAS_VISIBLE_MESSAGES}
ALL_CORRECT = [("ex8_1", "reference structure", median_time_with()), ("ex8_1", "upper middle", ALT_MEDIAN_TIME_UPPER),
               ("ex8_1", "lower middle, one sync after warm-up", ALT_MEDIAN_TIME),
               ("ex8_2", "reference structure", AUTOCAST_TEMPLATE),
               ("ex8_2", "torch.get_autocast_dtype, torch.amp.autocast", ALT_AUTOCAST),
               ("ex8_2", "a table", ALT_AUTOCAST_TABLE),
               ("ex8_3", "reference structure", initial_state_with()), ("ex8_3", "repeat", ALT_INITIAL_STATE),
               *[("ex8_3", name, source) for name, source in MORE_CORRECT_INITIAL_STATES.items()],
               ("ex8_4", "reference structure", keras_with()), ("ex8_4", "torch slicing", ALT_KERAS)]


@pytest.mark.parametrize("exercise, name, answer", ALL_CORRECT, ids=[f"{e}: {n}" for e, n, _ in ALL_CORRECT])
def test_correct_variants_pass_every_check(exercise, name, answer):
    results = check_results(exercise, answer)
    assert not any(results.values()), f"{exercise}: the correct variant '{name}' failed: {results}"


@pytest.mark.parametrize("exercise, name, answer", ALL_MISTAKES, ids=[f"{e}: {n}" for e, n, _ in ALL_MISTAKES])
def test_every_plausible_mistake_fails_the_hidden_checks(exercise, name, answer):
    assert not run_exercise(exercise, answer)[f"{exercise}_hidden"], f"{exercise}: '{name}' passed the hidden checks"


@pytest.mark.parametrize("exercise, name, answer", ALL_MISTAKES, ids=[f"{e}: {n}" for e, n, _ in ALL_MISTAKES])
def test_the_visible_checks_name_every_plausible_mistake(exercise, name, answer):
    """Each known mistake already fails the visible checks, with a message that says what is wrong."""
    error = check_results(exercise, answer)[f"{exercise}_visible"]
    assert error is not None, f"{exercise}: '{name}' passed the visible checks"
    assert VISIBLE_MESSAGES[exercise][name] in error, f"{exercise}: '{name}': the visible checks said {error!r}"


def test_every_known_mistake_has_its_visible_message():
    assert {(e, n) for e, n, _ in ALL_MISTAKES} == {(e, n) for e, names in VISIBLE_MESSAGES.items() for n in names}


def test_the_checks_leave_torch_cuda_synchronize_alone():
    import torch

    original = torch.cuda.synchronize
    run_exercise("ex8_1", MEDIAN_TIME_MISTAKES["no warm-up"])
    run_exercise("ex8_1", median_time_with())
    assert torch.cuda.synchronize is original
