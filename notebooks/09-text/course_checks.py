"""The course's check library: the base of every lesson's visible checks (``lesson_checks.py``, shipped with the
lesson) and hidden checks (``hidden_checks.py``, instructors only). ``make release`` copies this file into every
lesson folder as ``course_checks.py``; never edit those copies.

A check is a function registered with ``@exercise(grade_id, *answer_names)``. In a notebook, the visible check cell
calls it with the learner's answers (``checks.exercise_0_1(gru_shapes)``) and it prints one line when they pass.
When the course's grader grades a submission, the same function runs in the grader's own process, outside the
learner's kernel: the answers it receives are stubs that call the learner's functions in the kernel and bring back
plain data (``grading/toolkit/remote.py``). So check code only calls answers, reads what they return, and uses the
helpers below; it never relies on living in the learner's kernel.

A failed check raises ``CheckFailed`` with a message that says what was expected and what came back. Types are
checked before values: an object whose == always answers True cannot pass.
"""
import builtins as _builtins
import contextlib
import importlib
import numbers
import operator
import os
import re
import sys

import torch

# The originals the checks rely on, kept as this module loads (before any answer cell runs): in a notebook, an answer
# that shadows a built-in (isinstance, int, ...) or patches torch (torch.allclose, Tensor methods) cannot change what
# they do. (When graded, the checks run in the grader's process, which learner code never reaches.)
_issubclass, _isinstance, _tuple, _type, _all = (_builtins.issubclass, _builtins.isinstance, _builtins.tuple,
                                                 _builtins.type, _builtins.all)
_Integral, _bool, _repr, _float = numbers.Integral, _builtins.bool, _builtins.repr, _builtins.float
_callable, _getattr = _builtins.callable, _builtins.getattr
_index = operator.index  # the exact int value, even of an int subclass that overrides __int__ or __index__
_Tensor, _allclose, _float32, _float64 = torch.Tensor, torch.allclose, torch.float32, torch.float64
_tensor_methods = {name: getattr(torch.Tensor, name) for name in ("detach", "cpu", "double", "abs", "nan_to_num",
                                                                   "max", "item", "__sub__", "__ne__")}
_tensor_attributes = {name: getattr(torch.Tensor, name) for name in ("shape", "dtype")}  # data descriptors


class CheckFailed(AssertionError):
    """A check did not pass; the message says what was expected and what came back."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def _is_instance(value, expected_type):
    """isinstance by the value's real type (an object cannot claim another class through ``__class__``)."""
    return _issubclass(_type(value), expected_type)


def _is_int(value):
    return _is_instance(value, _Integral) and not _is_instance(value, _bool)


def check_type(value, expected_type, what):
    """`value` must be an instance of `expected_type` (a type or a tuple of types)."""
    if not _is_instance(value, expected_type):
        types = expected_type if _isinstance(expected_type, _tuple) else (expected_type,)
        names = " or ".join(t.__name__ for t in types)
        raise CheckFailed(f"{what}: expected {names}, got {type_name(value)}: {_repr(value):.100}")


def check_int(value, expected, what):
    """`value` must be an integer (not a bool) equal to `expected`."""
    check(_is_int(value), f"{what}: expected an int, got {type_name(value)}: {_repr(value):.100}")
    check(_index(value) == expected, f"{what}: expected {expected}, got {_index(value)}")


def check_shape(value, expected, what):
    """`value` must be a tuple of ints (a torch.Size is one) equal to `expected`."""
    check_type(value, _tuple, what)
    dims = _tuple(_tuple.__iter__(value))  # the tuple's own items, whatever its class says
    check(_all(_is_int(d) for d in dims), f"{what}: expected a tuple of ints, got {_repr(value):.100}")
    got = _tuple(_index(d) for d in dims)
    check(got == _tuple(expected), f"{what}: expected shape {_tuple(expected)}, got {got}")


def tolerance(dtype):
    """(rtol, atol) for comparing with PyTorch: torch.testing's defaults for the dtype."""
    return {_float64: (1e-7, 1e-7), _float32: (1.3e-6, 1e-5)}.get(dtype, (1e-3, 1e-3))


def check_tensor(value, expected, what):
    """`value` must be a tensor with `expected`'s shape and dtype, and close to it (tolerance by dtype)."""
    check_type(value, _Tensor, what)
    shape, dtype = (_tensor_attributes[name].__get__(value) for name in ("shape", "dtype"))
    check_shape(shape, _tensor_attributes["shape"].__get__(expected), f"{what}.shape")
    want_dtype = _tensor_attributes["dtype"].__get__(expected)
    check(dtype == want_dtype, f"{what}: expected dtype {want_dtype}, got {dtype}")
    t = _tensor_methods
    got, want = t["cpu"](t["detach"](value)), t["cpu"](t["detach"](expected))
    rtol, atol = tolerance(want_dtype)
    if not _allclose(got, want, rtol=rtol, atol=atol):
        difference = t["nan_to_num"](t["abs"](t["__sub__"](t["double"](got), t["double"](want))), nan=_float("inf"))
        error = t["item"](t["max"](difference))
        raise CheckFailed(f"{what}: values differ from the expected ones (max abs error {error:.3g}, "
                          f"tolerance atol={atol:g} + rtol={rtol:g} * |expected|)")


@contextlib.contextmanager
def seeded(seed):
    """Random numbers from a fixed seed inside the block, without changing those of the notebook around it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def check_unchanged(before, after, what):
    """`after`, a tensor given to an answer, must still equal `before`, an untouched copy. (Only tensors passed
    directly as arguments: the grader brings those back after each call.)"""
    if _is_instance(before, _Tensor):
        same = (_is_instance(after, _Tensor) and after.shape == before.shape and after.dtype == before.dtype
                and torch.equal(after, before))
        check(same, f"{what} was changed in place; the exercise asks you to leave its inputs as they are")


# Messages that name the mistake. A hidden check compares with PyTorch; when the values differ it also tries the
# known wrong conventions and says which one the answer matches. An exception raised inside the learner's code
# says which configuration was being checked, and an exercise that forbids an API gives 0 to an answer using it.

def matching_variant(value, variants):
    """The name of the first of `variants` ({name: tensor, or a function of no arguments returning one}) that
    `value` equals (same shape and dtype, close within the dtype's tolerance), or None."""
    if not _is_instance(value, _Tensor):
        return None
    got = value.detach().cpu()
    for name, variant in variants.items():
        want = variant() if _callable(variant) else variant
        if not _is_instance(want, _Tensor) or got.shape != want.shape or got.dtype != want.dtype:
            continue
        rtol, atol = tolerance(want.dtype)
        if _allclose(got, want.detach().cpu(), rtol=rtol, atol=atol):
            return name
    return None


def check_tensor_or_variant(value, expected, what, variants):
    """check_tensor, and when the values differ, say which known wrong variant `value` equals (if one):
    `variants` is {"the paper-v3 form, W_hn (r * h) (see section 4)": tensor or function returning it, ...}."""
    try:
        check_tensor(value, expected, what)
    except CheckFailed as failure:
        names = [name for name in variants if matching_variant(value, {name: variants[name]}) is not None]
        if not names:
            raise
        same = " (for this configuration these are the same function)" if len(names) > 1 else ""
        raise CheckFailed(f"{failure}. Your result equals {' and '.join(names)}{same}") from None


class while_checking:
    """Run the learner's code inside `with while_checking("gru_cell with x (2, 4), bias=False"):`. An error it
    raises comes back as CheckFailed("while checking <configuration>: <error>"); failed checks pass through."""

    def __init__(self, configuration):
        self.configuration = configuration

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None or not _issubclass(kind, Exception) or _issubclass(kind, CheckFailed):
            return False
        raise CheckFailed(f"while checking {self.configuration}: {kind.__name__}: {error}") from error


def gru_weight_mistakes(module, run):
    """{a classic mistake: a function of no arguments returning run(changed)}, where `changed` is a copy of the
    nn.GRU or nn.GRUCell `module` whose weights make it compute that mistake (so no GRU equations are needed
    here): z and 1 - z swapped (sigmoid(-a) = 1 - sigmoid(a): the z blocks negated), the gate blocks read in the
    order z, r, n (the r and z blocks exchanged), and b_hn outside the reset product (b_hn moved into b_in)."""
    import copy

    H = module.hidden_size

    def changed(change):
        def result():
            clone = copy.deepcopy(module)
            with torch.no_grad():
                parameters = dict(clone.named_parameters())
                for name, parameter in parameters.items():
                    change(name, parameter, parameters)
            return run(clone)
        return result

    def negate_z(name, parameter, parameters):
        parameter[H:2 * H] *= -1

    def exchange_r_and_z(name, parameter, parameters):
        parameter.copy_(torch.cat([parameter[H:2 * H], parameter[:H], parameter[2 * H:]]))

    def b_hn_outside(name, parameter, parameters):
        if name.startswith("bias_hh"):
            parameters["bias_ih" + name[len("bias_hh"):]][2 * H:] += parameter[2 * H:]
            parameter[2 * H:] = 0

    mistakes = {
        "a GRU with z and 1 - z swapped, h' = z * n + (1 - z) * h (Lesson 01, section 4)": changed(negate_z),
        "a GRU that reads the gate blocks in the order z, r, n (Lesson 01, section 4)": changed(exchange_r_and_z),
    }
    if any(name.startswith("bias_hh") for name, _ in module.named_parameters()):
        mistakes["a GRU with b_hn added outside the reset product, r * (W_hn h) + b_hn (Lesson 01, section 4)"] = (
            changed(b_hn_outside))
    return mistakes


# --- Registering checks ------------------------------------------------------------------------------------------

CHECKS = {}  # grade id of a check cell -> its Check (the grader finds a cell's check here)
_GRADE_ID = re.compile(r"^ex(\d+)_(\d+)_(visible|hidden)$")


class Check:
    """A registered check: call it with the learner's answers, in the order of `answers`. It raises CheckFailed
    when an answer is wrong and prints one line when all is well."""

    def __init__(self, grade_id, function, answers, forbidden):
        self.grade_id, self.function, self.answers = grade_id, function, _tuple(answers)
        self.forbidden = dict(forbidden or {})  # answer name -> {operator: what the learner calls it}
        self.__doc__, self.__name__ = function.__doc__, function.__name__

    @property
    def passed_line(self):
        match = _GRADE_ID.match(self.grade_id)
        if not match:
            return f"{self.grade_id}: checks passed"
        lesson, number, kind = match.groups()
        return f"Exercise {int(lesson)}.{int(number)}: {kind} checks passed"

    @property
    def exercise_name(self):
        match = _GRADE_ID.match(self.grade_id)
        return f"Exercise {int(match.group(1))}.{int(match.group(2))}" if match else self.grade_id

    def run(self, *answers):
        """The check itself, on answers that are already what the check should call (no line printed)."""
        if len(answers) != len(self.answers):
            raise TypeError(f"{self.function.__name__} takes {len(self.answers)} answers "
                            f"({', '.join(self.answers)}), got {len(answers)}")
        self.function(*answers)

    def __call__(self, *answers):
        """In a notebook: check the learner's answers here, in this kernel, for instant feedback."""
        watched = [watch_operators(answer, name, self.forbidden[name], self.exercise_name)
                   if name in self.forbidden and _callable(answer) else answer
                   for name, answer in zip(self.answers, answers, strict=True)]
        self.run(*watched)
        print(self.passed_line)


def exercise(grade_id, *answers, forbidden=None):
    """Register the decorated function as the check of the check cell `grade_id`, taking the learner's answers
    named `answers`. `forbidden`: {answer name: {PyTorch operator: name a learner knows it by}}, e.g.
    ``{"gru_cell": GRU_OPERATORS}``: a call of that answer that reaches one of the operators fails the check."""
    def register(function):
        check = Check(grade_id, function, answers, forbidden)
        CHECKS[grade_id] = check
        return check
    return register


# --- Learner objects seen from the grader ------------------------------------------------------------------------
# When graded, an answer that returns something other than plain data (a module of the learner's own class, say)
# comes back as a remote object: it can be called, its methods called and its attributes read. These helpers work
# on real objects (in a notebook) and remote ones (in the grader) alike.

def _remote_query(value):
    return _getattr(_type(value), "_course_remote_query", None)


def type_name(value):
    """The name of `value`'s real type (for a remote object, of the object in the learner's kernel)."""
    query = _remote_query(value)
    return query(value, "type_name") if query else _type(value).__name__


def is_module(value):
    """True if `value` is a torch.nn.Module (by its real type)."""
    query = _remote_query(value)
    return query(value, "is_module") if query else _is_instance(value, torch.nn.Module)


def parameters_of(module):
    """{name: tensor} of the module's parameters (detached copies), like dict(module.named_parameters())."""
    query = _remote_query(module)
    if query:
        return query(module, "named_parameters")
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def gradients_of(module):
    """{name: gradient or None} of the module's parameters."""
    query = _remote_query(module)
    if query:
        return query(module, "named_gradients")
    return {name: None if p.grad is None else p.grad.detach().clone() for name, p in module.named_parameters()}


class CountCalls(torch.nn.Module):
    """A module wrapped so that its calls are counted (`.calls`): a rollout that should call a GRU once per step
    can be checked. Its attributes are the wrapped module's (`.batch_first`, `.hidden_size`, ...). When graded, the
    learner's code receives a stand-in whose every call runs here, in the grader: the count is the grader's own."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.module(*args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return _getattr(self._modules["module"], name)


# --- Forbidden operators, seen at PyTorch's dispatcher ----------------------------------------------------------
# An exercise that asks for a computation from scratch forbids PyTorch's own. Whatever route the learner's code
# takes (nn.GRUCell, torch.gru_cell, torch._VF, torch.ops.aten, a TorchScript string, DisableTorchFunction), the call
# passes PyTorch's dispatcher, where its profiler sees the operator; threads are watched too.

GRU_OPERATORS = {"aten::gru_cell": "nn.GRUCell or torch.gru_cell", "aten::gru": "nn.GRU or torch.gru",
                 "aten::_thnn_fused_gru_cell": "PyTorch's fused GRU cell"}


class OperatorsUnseen(RuntimeError):
    """The profiler that watches a call for forbidden operators was stopped or replaced during the call."""


@contextlib.contextmanager
def _quiet_stderr():
    """PyTorch's profiler writes a line to the process's stderr as it starts and stops: keep it out of the output."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def call_watching_operators(function, args, kwargs, marker="course-checks"):
    """(result, [operators the call reached]). Raises OperatorsUnseen if the profiler did not see the call from
    start to end (the learner's code stopped or restarted it), and what the call raised, if it raised."""
    from torch._C._profiler import _ExperimentalConfig
    from torch.autograd.profiler import profile, record_function

    profiler = profile(use_kineto=True, experimental_config=_ExperimentalConfig(profile_all_threads=True))
    with _quiet_stderr():
        profiler.__enter__()
    outcome = None
    try:
        with record_function(f"{marker}:begin"):
            pass
        try:
            result = function(*args, **kwargs)
        except BaseException as error:
            outcome = error
        with record_function(f"{marker}:end"):
            pass
    finally:
        try:
            with _quiet_stderr():
                profiler.__exit__(None, None, None)
            names = [event.name for event in profiler.function_events]
        except Exception as error:
            raise OperatorsUnseen(f"the profiler was stopped during the call ({type(error).__name__})") from None
    begin, end = f"{marker}:begin", f"{marker}:end"
    if begin not in names or end not in names or names.index(begin) > names.index(end):
        raise OperatorsUnseen("the profiler did not see the whole call (it was stopped or restarted)")
    if outcome is not None:
        raise outcome
    return result, names[names.index(begin) + 1:names.index(end)]


def forbidden_message(answer_name, exercise_name, operator_name, known_as):
    return (f"{answer_name} calls {known_as} ({operator_name}), which {exercise_name} forbids: write the computation "
            f"yourself")


def watch_operators(function, answer_name, forbidden, exercise_name):
    """`function` wrapped so that a call reaching one of `forbidden` ({operator: name}) raises CheckFailed."""
    def watched(*args, **kwargs):
        try:
            result, operators = call_watching_operators(function, args, kwargs)
        except OperatorsUnseen as unseen:
            raise CheckFailed(f"{answer_name}: {unseen}; {exercise_name} watches which PyTorch operators the "
                              f"answer calls, so it cannot be checked") from None
        for name in operators:
            if name in forbidden:
                raise CheckFailed(forbidden_message(answer_name, exercise_name, name, forbidden[name]))
        return result
    watched.__name__ = _getattr(function, "__name__", answer_name)
    return watched


# --- After an exercise: your answer, or the course's working version ---------------------------------------------

WORKING_VERSIONS = "working_versions"  # module next to a self-paced copy of the lesson (not in a class's release)


def yours_or_working(answer, name):
    """What the rest of the lesson should use for `name`: your `answer` if it passes its visible checks, else the
    course's working version from working_versions.py (self-paced copies of the course only), else your answer."""
    checks = [c for c in CHECKS.values() if c.answers == (name,) and c.grade_id.endswith("_visible")]
    problem = "it is not defined" if answer is None else None
    if problem is None:
        for check in checks:
            try:
                with contextlib.redirect_stdout(None):
                    check(answer)
            except Exception as failure:
                problem = f"{type(failure).__name__}: {failure}".splitlines()[0][:200]
                break
    if problem is None:
        print(f"Using your {name} (it passes its visible checks).")
        return answer
    try:
        module = importlib.import_module(WORKING_VERSIONS)
        working = _getattr(module, name)
    except (ImportError, AttributeError):
        print(f"Your {name} does not pass its visible checks yet ({problem}); the cells below use it anyway.")
        return answer
    # The working versions may use what the lesson's cells defined before (its imports, classes): lend them those.
    notebook = sys._getframe(1).f_globals
    for key, value in notebook.items():
        if not key.startswith("_") and key not in module.__dict__:
            module.__dict__[key] = value
    print(f"Using the course's working version of {name} from {WORKING_VERSIONS}.py: yours does not pass its "
          f"visible checks yet ({problem}).")
    return working
