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
