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


# Messages that name the mistake. A hidden check compares with PyTorch; when the values differ it also tries the
# known wrong conventions and says which one the answer matches. An exception raised inside the learner's code
# says which configuration was being checked, and an exercise that forbids an API gives 0 to an answer using it.

def matching_variant(value, variants):
    """The name of the first of `variants` ({name: tensor, or a function of no arguments returning one}) that
    `value` equals (same shape and dtype, close within the dtype's tolerance), or None."""
    if not isinstance(value, torch.Tensor):
        return None
    got = value.detach().cpu()
    for name, variant in variants.items():
        want = variant() if callable(variant) else variant
        if not isinstance(want, torch.Tensor) or got.shape != want.shape or got.dtype != want.dtype:
            continue
        rtol, atol = tolerance(want.dtype)
        if torch.allclose(got, want.detach().cpu(), rtol=rtol, atol=atol):
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
        if kind is None or not issubclass(kind, Exception) or issubclass(kind, CheckFailed):
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
        name = getattr(func, "__name__", "").split(".")[0]
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
