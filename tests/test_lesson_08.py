"""Lesson 08's checks grade fairly: plausible mistakes (a timer without warm-up or synchronize, autocast with the
wrong dtype or a converted model, a learnable h_0 that is expanded but not contiguous, Keras weights with the gate
order, the transposition or the biases wrong) lose points, correct answers written differently score full marks.

How the variants run, and what every lesson's module checks: tests/harness.py (LessonTests). No GPU is needed: the
checks fake one."""

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
    if torch.device(device).type == "cuda":
        wait = torch.cuda.synchronize if synchronize is None else synchronize
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
MEDIAN_TIME_RIGHT = {"WARMUP": "warmup", "BEFORE": "wait()", "AFTER": "wait()",
                     "RESULT": "float(statistics.median(times))"}


def median_time_with(**changes):
    source = MEDIAN_TIME_TEMPLATE
    for key, value in {**MEDIAN_TIME_RIGHT, **changes}.items():
        source = source.replace(key, value)
    return source


MEDIAN_TIME_MISTAKES = {
    "no warm-up": median_time_with(WARMUP="0"),
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
    wait = (synchronize or torch.cuda.synchronize) if torch.device(device).type == "cuda" else (lambda: None)
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
    wait = (synchronize or torch.cuda.synchronize) if torch.device(device).type == "cuda" else (lambda: None)
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
    on_cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if on_cuda:
            torch.cuda.synchronize()
        start = clock()
        fn()
        if on_cuda:
            torch.cuda.synchronize()
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
}

# Correct, written differently: one synchronize after the warm-up and one after each call; torch's median (the
# lower middle value for an even count); devices told apart by their names.
ALT_MEDIAN_TIME = '''
def median_time(fn, repeats=5, warmup=1, device="cpu", synchronize=None, clock=time.perf_counter):
    if not (repeats >= 1 and warmup >= 0):
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    sync = None
    if str(device).startswith("cuda"):
        sync = synchronize if synchronize is not None else torch.cuda.synchronize
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
    is_cuda = isinstance(device, torch.device) and device.type == "cuda" or str(device).split(":")[0] == "cuda"
    def barrier():
        if is_cuda:
            (synchronize or torch.cuda.synchronize)()
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

AUTOCAST_MISTAKES = {
    "float16 on the CPU": '''
def autocast_max_error(model, x):
    with torch.no_grad():
        reference = model(x)[0]
        with torch.autocast(device_type=x.device.type, dtype=torch.float16):
            low = model(x)[0]
    return torch.float16, (low.float() - reference).abs().max().item()
''',
    "the reference run inside autocast too": '''
def autocast_max_error(model, x):
    low_dtype = torch.float16 if x.device.type == "cuda" else torch.bfloat16
    with torch.no_grad(), torch.autocast(device_type=x.device.type, dtype=low_dtype):
        reference = model(x)[0]
        low = model(x)[0]
    return low_dtype, (low.float() - reference.float()).abs().max().item()
''',
    "the model converted in place": '''
def autocast_max_error(model, x):
    low_dtype = torch.float16 if x.device.type == "cuda" else torch.bfloat16
    with torch.no_grad():
        reference = model(x)[0]
        low = model.to(low_dtype)(x.to(low_dtype))[0]
    return low_dtype, (low.float() - reference).abs().max().item()
''',
    "a tensor instead of a float": '''
def autocast_max_error(model, x):
    low_dtype = torch.float16 if x.device.type == "cuda" else torch.bfloat16
    with torch.no_grad():
        reference = model(x)[0]
        with torch.autocast(device_type=x.device.type, dtype=low_dtype):
            low = model(x)[0]
    return low_dtype, (low.float() - reference).abs().max()
''',
    "h_n compared instead of output": '''
def autocast_max_error(model, x):
    low_dtype = torch.float16 if x.device.type == "cuda" else torch.bfloat16
    with torch.no_grad():
        reference = model(x)[1]
        with torch.autocast(device_type=x.device.type, dtype=low_dtype):
            low = model(x)[1]
    return low_dtype, (low.float() - reference).abs().max().item()
''',
    "bfloat16 on every device, but a model copy in bfloat16 instead of autocast": '''
import copy

def autocast_max_error(model, x):
    with torch.no_grad():
        reference = model(x)[0]
        low = copy.deepcopy(model).bfloat16()(x.bfloat16())[0]
    return torch.bfloat16, (low.float() - reference).abs().max().item()
''',
}

# Correct, written differently: torch.amp.autocast, inference_mode, the error computed in float64.
ALT_AUTOCAST = '''
def autocast_max_error(model, x):
    kind = x.device.type
    dtype = {"cuda": torch.float16, "cpu": torch.bfloat16}[kind]
    with torch.inference_mode():
        full, _ = model(x)
        with torch.amp.autocast(kind, dtype=dtype):
            mixed, _ = model(x)
    return dtype, float(torch.max(torch.abs(mixed.to(torch.float32) - full)))
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
              "ex8_2_autocast_max_error": AUTOCAST_MISTAKES["float16 on the CPU"],
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

def autocast_max_error(model, x):
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
AUTOGRADED = {"mistakes": SUBMISSIONS["mistakes"]}


class TestLesson(LessonTests):
    """The shared checks of tests/harness.py, on this lesson."""


ANSWER_CELLS = {answer_id[:5]: answer_id for answer_id in ALTERNATIVE}  # "ex8_1" -> "ex8_1_median_time"
EXERCISES = list(ANSWER_CELLS)


# ----------------------------------------------------------------------------------------------------------------
# Many more variants through the same check cells, in-process.

@pytest.mark.parametrize("student", ["mistakes", "hostile"])
def test_plausible_mistakes_fail_the_visible_and_hidden_checks(student):
    # The visible checks use a fake GPU with a slow warm-up, two GRUs, a 2-layer initial state for a batch of 3,
    # and gate-numbered Keras weights: every mistake of these students shows there already.
    results = run_check_cells(LESSON, SUBMISSIONS[student])
    for exercise in EXERCISES:
        for kind in ("visible", "hidden"):
            assert results[f"{exercise}_{kind}"] is not None, (student, exercise, kind)


def run_exercise(exercise, answer):
    """``{grade_id: passed}`` for the check cells of ``exercise`` (e.g. "ex8_1"), its answer cell replaced by
    ``answer``."""
    results = run_check_cells(LESSON, {ANSWER_CELLS[exercise]: answer})
    assert len(results) == 2, results
    return {grade_id: error is None for grade_id, error in results.items()}


ALL_MISTAKES = ([("ex8_1", name, source) for name, source in MEDIAN_TIME_MISTAKES.items()]
                + [("ex8_2", name, source) for name, source in AUTOCAST_MISTAKES.items()]
                + [("ex8_3", name, source) for name, source in INITIAL_STATE_MISTAKES.items()]
                + [("ex8_4", name, source) for name, source in KERAS_MISTAKES.items()])
ALL_CORRECT = [("ex8_1", "reference structure", median_time_with()), ("ex8_1", "upper middle", ALT_MEDIAN_TIME_UPPER),
               ("ex8_1", "lower middle, one sync after warm-up", ALT_MEDIAN_TIME),
               ("ex8_2", "torch.amp.autocast", ALT_AUTOCAST),
               ("ex8_3", "reference structure", initial_state_with()), ("ex8_3", "repeat", ALT_INITIAL_STATE),
               *[("ex8_3", name, source) for name, source in MORE_CORRECT_INITIAL_STATES.items()],
               ("ex8_4", "reference structure", keras_with()), ("ex8_4", "torch slicing", ALT_KERAS)]


@pytest.mark.parametrize("exercise, name, answer", ALL_CORRECT, ids=[f"{e}: {n}" for e, n, _ in ALL_CORRECT])
def test_correct_variants_pass_every_check(exercise, name, answer):
    assert all(run_exercise(exercise, answer).values()), f"{exercise}: the correct variant '{name}' failed a check"


@pytest.mark.parametrize("exercise, name, answer", ALL_MISTAKES, ids=[f"{e}: {n}" for e, n, _ in ALL_MISTAKES])
def test_every_plausible_mistake_fails_the_hidden_checks(exercise, name, answer):
    assert not run_exercise(exercise, answer)[f"{exercise}_hidden"], f"{exercise}: '{name}' passed the hidden checks"


def test_the_hidden_checks_restore_torch_cuda_synchronize():
    import torch

    original = torch.cuda.synchronize
    run_exercise("ex8_1", MEDIAN_TIME_MISTAKES["no warm-up"])
    run_exercise("ex8_1", median_time_with())
    assert torch.cuda.synchronize is original
