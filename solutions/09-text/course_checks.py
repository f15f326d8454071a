# Course check helpers (read-only cell). Every visible and hidden check in this notebook uses them, so a failed
# check says what it expected and what it got. Types are checked before values: an object whose == always
# answers True cannot pass.
import builtins as _builtins
import numbers
import operator

import torch

# The originals the checks rely on, kept as this cell runs (before any answer cell): an answer that shadows a
# built-in (isinstance, int, ...) or patches torch (torch.allclose, Tensor methods) cannot change what they do.
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
        raise CheckFailed(f"{what}: expected {names}, got {_type(value).__name__}: {_repr(value):.100}")


def check_int(value, expected, what):
    """`value` must be an integer (not a bool) equal to `expected`."""
    check(_is_int(value), f"{what}: expected an int, got {_type(value).__name__}: {_repr(value):.100}")
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


class forbidden_torch_functions(torch.overrides.TorchFunctionMode):
    """`with forbidden_torch_functions({"gru_cell": "nn.GRUCell / torch.gru_cell"}, "Exercise 1.2"):` makes any
    call of those torch functions raise CheckFailed, whatever name the learner's code reached them by (nn.GRUCell,
    torch.gru_cell, torch._VF.gru_cell, torch.ops.aten.gru_cell all end in the same function). The check fails
    at the end of the block even if the learner's code caught the error. Leaving the block restores everything."""

    def __init__(self, forbidden, exercise):
        super().__init__()
        self.forbidden, self.exercise, self.used = dict(forbidden), exercise, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = _getattr(func, "__name__", "").split(".")[0]
        if name in self.forbidden:
            self.used.append(self.forbidden[name])
            raise CheckFailed(f"{self.exercise} must not call {self.forbidden[name]}: write the computation yourself")
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc_info):
        result = super().__exit__(*exc_info)
        if self.used and exc_info[0] is None:
            raise CheckFailed(f"{self.exercise} must not call {self.used[0]}: write the computation yourself")
        return result


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


# ---------------------------------------------------------------------------------------------------------------
# LOCAL STAND-IN (Lesson 09 only), until the shared check library lands on main: `exercise`, `CountCalls`,
# `is_module`, `parameters_of` and `yours_or_working` as the new contract describes them, written minimally so that
# the lesson runs. The lead's tools/course_checks.py replaces this whole file (`make release` copies it here).
import functools as _functools  # noqa: E402
import importlib as _importlib  # noqa: E402

_registered = {}  # grade id -> the registered check (as `exercise` returns it)


def exercise(grade_id, *answer_names, forbidden=None):
    """Register a check for the check cell `grade_id`; it takes the learner's answers named `answer_names`, in
    order, raises CheckFailed when one is wrong, and (as called from a notebook) prints one line when they pass."""
    number = grade_id[2:].split("_")[0] + "." + grade_id[2:].split("_")[1]  # "ex9_1_visible" -> "9.1"
    kind = "hidden" if grade_id.endswith("_hidden") else "visible"

    def register(check):
        @_functools.wraps(check)
        def run(*answers):
            check(*answers)
            print(f"Exercise {number}: {kind} checks passed")

        run.grade_id, run.answer_names, run.forbidden, run.check = grade_id, answer_names, forbidden, check
        _registered[grade_id] = run
        return run

    return register


class CountCalls(torch.nn.Module):
    """Wraps a module; `.calls` counts its forward calls."""

    def __init__(self, module):
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.module(*args, **kwargs)


def is_module(obj):
    """Whether `obj` is a torch.nn.Module (by its real type)."""
    return _is_instance(obj, torch.nn.Module)


def parameters_of(obj):
    """{name: tensor} of a module's parameters."""
    return {name: parameter for name, parameter in obj.named_parameters()}


def yours_or_working(answer, name):
    """`answer` if it passes the visible checks of the exercise that asks for `name`; otherwise the course's working
    version (shipped only with self-paced copies of the course), with a line that says so."""
    checks = [run for run in _registered.values() if run.grade_id.endswith("_visible") and name in run.answer_names]
    if checks:
        try:
            checks[0].check(answer)
            return answer
        except Exception as error:  # any failure means: use the working version
            reason = f"{type(error).__name__}: {error}"
    else:
        reason = "no visible check found"
    for module_name in ("working_answers", "hidden_checks"):
        try:
            working = _importlib.import_module(module_name).WORKING[name]
        except (ImportError, AttributeError, KeyError):
            continue
        print(f"{name}: yours does not pass the visible checks yet, so the cells below use the course's working "
              f"version ({reason:.200})")
        return working
    raise CheckFailed(f"{name} does not pass the visible checks ({reason:.300}), and this copy of the course has no "
                      f"working version to use instead: fix your answer above, then run this cell again")
