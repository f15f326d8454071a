"""Lesson 02's visible checks: the checks that the notebook's visible check cells run (``checks.exercise_2_1(...)``).

They use the course's check library, ``course_checks.py``. The hidden checks, which run when a notebook is graded,
are in ``hidden_checks.py`` (instructors only). Nothing here computes an exercise's answer: expected values are
PyTorch's own (``nn.GRU``), and the classic mistakes are ``nn.GRU`` with its weights rearranged
(``gru_weight_mistakes``). Every answer gets copies of the check's tensors, so expectations come from untouched ones.
"""

import torch
from course_checks import (
    check,
    check_tensor,
    check_tensor_or_variant,
    check_type,
    exercise,
    gru_weight_mistakes,
    seeded,
    while_checking,
)
from torch import nn

PARAMS_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")



def weights_of(module):
    """{"weight_ih": ..., "bias_hh": ...}: detached copies of a one-layer nn.GRU's parameters (None without biases)."""
    return {key: (None if getattr(module, key + "_l0", None) is None else getattr(module, key + "_l0").detach().clone())
            for key in PARAMS_KEYS}


# --- Exercise 2.1 -------------------------------------------------------------------------------------------------

LAST_SEQUENCE = "output[-1:], the last sequence of the batch at every step: with batch_first the time axis is 1"


def check_h_n_from_output(h_n_from_output, output, batch_first, expected, what):
    """h_n_from_output(output, batch_first=...) must be `expected` (nn.GRU's own h_n). With batch_first, taking the
    last row of dimension 0 is named."""
    with while_checking(what):
        result = h_n_from_output(output.clone(), batch_first=batch_first)
    mistakes = {LAST_SEQUENCE: output[-1:]} if batch_first and output.dim() == 3 else {}
    check_tensor_or_variant(result, expected, what, mistakes)


@exercise("ex2_1_visible", "h_n_from_output")
def exercise_2_1(h_n_from_output):
    """The article's Example 1, time-major and batch-first."""
    with seeded(21):
        gru, gru_bf = nn.GRU(10, 20), nn.GRU(10, 20, batch_first=True)
        x = torch.randn(5, 32, 10)
    with torch.no_grad():
        output, h_n = gru(x)
        output_bf, h_n_bf = gru_bf(x.transpose(0, 1))
    check_h_n_from_output(h_n_from_output, output, False, h_n, "h_n_from_output(output) for Example 1")
    check_h_n_from_output(h_n_from_output, output_bf, True, h_n_bf,
                          "h_n_from_output(output, batch_first=True) for Example 1 with batch_first=True")


# --- Exercise 2.2 -------------------------------------------------------------------------------------------------

def check_params(result, expected, what):
    """`result` must be a params dictionary holding `expected`'s values ({key: tensor or None}) as plain tensors
    without requires_grad."""
    check_type(result, dict, what)
    check(set(result) == set(PARAMS_KEYS),
          f"{what}: expected the keys weight_ih, weight_hh, bias_ih, bias_hh, got {sorted(map(str, result))}")
    for key in PARAMS_KEYS:
        value = result[key]
        if expected[key] is None:
            check(value is None, f"{what}['{key}']: the GRU has no biases, expected None, got {type(value).__name__}")
            continue
        check_tensor(value, expected[key], f"{what}['{key}']")
        check(not isinstance(value, nn.Parameter) and not value.requires_grad,
              f"{what}['{key}'] should be a plain tensor without requires_grad (use .detach())")


@exercise("ex2_2_visible", "params_from_gru")
def exercise_2_2(params_from_gru):
    """nn.GRU(10, 20): the four keys, and plain tensors with the GRU's values."""
    with seeded(22):
        gru = nn.GRU(10, 20)
    what = "params_from_gru(nn.GRU(10, 20))"
    expected = weights_of(gru)
    with while_checking(what):
        result = params_from_gru(gru)
    check_params(result, expected, what)


# --- Exercise 2.3 -------------------------------------------------------------------------------------------------

class CheckedGRU(nn.GRU):
    """An nn.GRU that notices what is done to its Parameters, wherever the code that does it runs (in the notebook's
    kernel, or in the sandboxed kernel that the course's grader calls): a Parameter object replaced by another, one
    that no longer requires gradients, or one whose values share memory with a tensor of `watched` (the params
    handed over with it). Its buffer `course_changes` holds one code per parameter (CHANGES), refreshed whenever
    state_dict() is taken (the grader takes one after every call, and copies the buffer back) or changes() is
    called; a code, once seen, stays."""

    CHANGES = {1: "replaced gru.{name} by another Parameter: copy into the existing one (an optimizer built before "
                  "holds the old one)",
               2: "left gru.{name} without requires_grad",
               3: "made gru.{name} share memory with params: copy the values (under torch.no_grad())"}

    def __init__(self, *args, watched=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("course_changes", torch.zeros(len(self._flat_weights_names)))
        self._course_originals = {name: getattr(self, name) for name in self._flat_weights_names}
        self._course_watched = [tensor for tensor in watched if tensor is not None]

    def changes(self):
        """{parameter name: message} of what was done to the Parameters so far."""
        storages = {tensor.untyped_storage().data_ptr() for tensor in self._course_watched}
        with torch.no_grad():
            for index, name in enumerate(self._flat_weights_names):
                current = getattr(self, name, None)
                code = (1 if current is not self._course_originals[name] else 2 if not current.requires_grad
                        else 3 if current.untyped_storage().data_ptr() in storages else 0)
                self.course_changes[index] = max(self.course_changes[index].item(), code)
        return {name: self.CHANGES[int(code)].format(name=name)
                for name, code in zip(self._flat_weights_names, self.course_changes.tolist(), strict=True) if code}

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.changes()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if prefix + "course_changes" in missing_keys:  # a learner's load_state_dict of the GRU's own parameters
            missing_keys.remove(prefix + "course_changes")


def check_loaded(load_params_into_gru, source, what):
    """load_params_into_gru(params, target), with params copies of `source`'s weights, must copy the values into
    target's own Parameters (same objects, still requiring gradients, sharing no memory with params). Returns
    target."""
    params = weights_of(source)
    target = CheckedGRU(source.input_size, source.hidden_size, bias=source.bias, dtype=source.weight_hh_l0.dtype,
                        watched=params.values())
    with while_checking(what):
        load_params_into_gru(params, target)
    changes = list(target.changes().values())
    check(not changes, f"{what} {changes[0] if changes else ''}"
                       + (f" (and the same for {len(changes) - 1} more parameters)" if len(changes) > 1 else ""))
    for name, parameter in target.named_parameters():
        check_tensor(parameter.detach(), getattr(source, name).detach(), f"{what}: gru.{name}")
    return target


@exercise("ex2_3_visible", "load_params_into_gru")
def exercise_2_3(load_params_into_gru):
    """One nn.GRU(10, 20)'s weights loaded into another: the same Parameter objects, and the same output."""
    with seeded(23):
        source = nn.GRU(10, 20)
        x = torch.randn(5, 32, 10)
        target = check_loaded(load_params_into_gru, source, "load_params_into_gru(params, nn.GRU(10, 20))")
    with torch.no_grad():
        check_tensor(target(x)[0], source(x)[0],
                     "output of the GRU loaded with load_params_into_gru, compared with the GRU the params came from")


# --- Exercise 2.4 -------------------------------------------------------------------------------------------------

def check_gru_forward(gru_forward, module, x, h0, what, more_mistakes=None):
    """gru_forward(x, h0, params of `module`, batch_first=module.batch_first) must return module(x, h0); a wrong
    output that equals a classic mistake's is named."""
    with torch.no_grad():
        expected_output, expected_h_n = module(x, h0)
    with while_checking(what):
        result = gru_forward(x.clone(), None if h0 is None else h0.clone(), weights_of(module),
                             batch_first=module.batch_first)
    check_type(result, tuple, what)
    check(len(result) == 2, f"{what}: expected a pair (output, h_n), got {len(result)} items")
    with torch.no_grad():
        mistakes = gru_weight_mistakes(module, lambda changed: changed(x, h0)[0]) | (more_mistakes or {})
        check_tensor_or_variant(result[0], expected_output, f"{what}: output", mistakes)
    check_tensor(result[1], expected_h_n, f"{what}: h_n")


@exercise("ex2_4_visible", "gru_forward")
def exercise_2_4(gru_forward):
    """The article's Example 1, time-major and batch-first, compared with nn.GRU."""
    with seeded(24):
        gru, gru_bf = nn.GRU(10, 20), nn.GRU(10, 20, batch_first=True)
        x, h0 = torch.randn(5, 32, 10), torch.randn(1, 32, 20)
    check_gru_forward(gru_forward, gru, x, h0, "gru_forward on Example 1")
    check_gru_forward(gru_forward, gru_bf, x.transpose(0, 1), h0, "gru_forward on Example 1, batch_first=True")
