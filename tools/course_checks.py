# Course check helpers (read-only cell). Every visible and hidden check in this notebook uses them, so a failed
# check says what it expected and what it got. Types are checked before values: an object whose == always
# answers True cannot pass.
import numbers

import torch


class CheckFailed(AssertionError):
    """A check did not pass; the message says what was expected and what came back."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_type(value, expected_type, what):
    """`value` must be an instance of `expected_type` (a type or a tuple of types)."""
    if not isinstance(value, expected_type):
        types = expected_type if isinstance(expected_type, tuple) else (expected_type,)
        names = " or ".join(t.__name__ for t in types)
        raise CheckFailed(f"{what}: expected {names}, got {type(value).__name__}: {value!r:.100}")


def check_int(value, expected, what):
    """`value` must be an integer (not a bool) equal to `expected`."""
    check(isinstance(value, numbers.Integral) and not isinstance(value, bool),
          f"{what}: expected an int, got {type(value).__name__}: {value!r:.100}")
    check(int(value) == expected, f"{what}: expected {expected}, got {int(value)}")


def check_shape(value, expected, what):
    """`value` must be a tuple of ints (a torch.Size is one) equal to `expected`."""
    check_type(value, tuple, what)
    check(all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in value),
          f"{what}: expected a tuple of ints, got {value!r:.100}")
    got = tuple(int(d) for d in value)
    check(got == tuple(expected), f"{what}: expected shape {tuple(expected)}, got {got}")


def tolerance(dtype):
    """(rtol, atol) for comparing with PyTorch: torch.testing's defaults for the dtype."""
    return {torch.float64: (1e-7, 1e-7), torch.float32: (1.3e-6, 1e-5)}.get(dtype, (1e-3, 1e-3))


def check_tensor(value, expected, what):
    """`value` must be a tensor with `expected`'s shape and dtype, and close to it (tolerance by dtype)."""
    check_type(value, torch.Tensor, what)
    check_shape(value.shape, expected.shape, f"{what}.shape")
    check(value.dtype == expected.dtype, f"{what}: expected dtype {expected.dtype}, got {value.dtype}")
    got, want = value.detach().cpu(), expected.detach().cpu()
    rtol, atol = tolerance(want.dtype)
    if not torch.allclose(got, want, rtol=rtol, atol=atol):
        error = (got.double() - want.double()).abs().nan_to_num(nan=float("inf")).max().item()
        raise CheckFailed(f"{what}: values differ from the expected ones (max abs error {error:.3g}, "
                          f"tolerance atol={atol:g} + rtol={rtol:g} * |expected|)")
