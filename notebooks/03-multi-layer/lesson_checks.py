"""Lesson 03's visible checks (released with the lesson). The notebook's check cells call them with your answers;
the course's grader calls the same functions, with your answers run in your notebook's kernel. The hidden checks
(hidden_checks.py, instructors only) reuse the helpers below on more configurations.

Every expected value here comes from PyTorch itself: an nn.GRU with the same weights, run whole or one layer at a
time, never from code that computes an exercise's answer.
"""

import torch
from course_checks import (
    GRU_OPERATORS,
    CheckFailed,
    check,
    check_shape,
    check_tensor_or_variant,
    check_type,
    check_unchanged,
    exercise,
    gru_weight_mistakes,
    seeded,
    while_checking,
)
from torch import nn

# --- Exercise 3.1 ------------------------------------------------------------------------------------------------

def check_parameter_shapes(stacked_parameter_shapes, args, expected):
    """stacked_parameter_shapes(*args) must be {name: shape} equal to `expected`."""
    what = f"stacked_parameter_shapes{args}"
    with while_checking(what):
        result = stacked_parameter_shapes(*args)
    check_type(result, dict, what)
    names = list(dict.keys(result))
    check(all(isinstance(name, str) for name in names), f"{what}: expected str keys, got {names!r:.200}")
    missing = sorted(set(expected) - set(names))
    extra = sorted(set(names) - set(expected))
    check(not missing and not extra, f"{what}: expected the names {sorted(expected)}; missing {missing}, "
                                     f"unexpected {extra}")
    for name, shape in expected.items():
        value = dict.__getitem__(result, name)
        try:
            check_shape(value, shape, f"{what}[{name!r}]")
        except CheckFailed as failure:
            if name.startswith("weight_ih_l") and name != "weight_ih_l0" and tuple(value) == (shape[0], args[0]):
                raise CheckFailed(f"{failure}: layer k > 0 reads the layer below, hidden_size features, not "
                                  f"input_size") from None
            if isinstance(value, tuple) and tuple(value) == tuple(reversed(shape)) and len(shape) == 2:
                raise CheckFailed(f"{failure}: PyTorch stores weight_ih as (3 * hidden_size, in_features), one "
                                  f"row per gate unit") from None
            raise


@exercise("ex3_1_visible", "stacked_parameter_shapes")
def exercise_3_1(stacked_parameter_shapes):
    """The article's Example 2, nn.GRU(10, 20, num_layers=2) (the shapes section 3 prints)."""
    check_parameter_shapes(stacked_parameter_shapes, (10, 20, 2), {
        "weight_ih_l0": (60, 10), "weight_hh_l0": (60, 20), "bias_ih_l0": (60,), "bias_hh_l0": (60,),
        "weight_ih_l1": (60, 20), "weight_hh_l1": (60, 20), "bias_ih_l1": (60,), "bias_hh_l1": (60,),
    })


# --- Exercise 3.2 ------------------------------------------------------------------------------------------------

def layer_params_of(module):
    """The per-layer weights of a one-directional nn.GRU, bottom layer first, as stacked_gru_forward takes them
    (detached copies; the biases None for bias=False)."""
    def copy(k, name):
        tensor = getattr(module, f"{name}_l{k}", None)
        return None if tensor is None else tensor.detach().clone()
    return [{name: copy(k, name) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            for k in range(module.num_layers)]


def single_layer(module, k, input_size=None):
    """Layer k of the stack `module` as a one-layer nn.GRU with the same weights (reading `input_size` features:
    by default what layer k reads)."""
    if input_size is None:
        input_size = module.input_size if k == 0 else module.hidden_size
    single = nn.GRU(input_size, module.hidden_size, bias=module.bias, batch_first=module.batch_first,
                    dtype=module.weight_hh_l0.dtype)
    single.load_state_dict({name[:-len(f"_l{k}")] + "_l0": value for name, value in module.state_dict().items()
                            if name.endswith(f"_l{k}")})
    return single


def stacked_mistakes(module, x, h0):
    """{a known mistake in a stacked forward pass: a function returning the output it gives}, each computed with
    PyTorch's own modules."""
    first_state_everywhere = h0[:1].expand_as(h0).contiguous()
    mistakes = gru_weight_mistakes(module, lambda changed: changed(x, h0)[0]) | {
        "the bottom layer's output: output comes from the top layer": lambda: single_layer(module, 0)(x, h0[:1])[0],
        "every layer started from h0[0]: layer k starts from h0[k]": lambda: module(x, first_state_everywhere)[0],
    }
    if module.num_layers > 1 and module.input_size == module.hidden_size:
        def every_layer_reads_x():
            top = module.num_layers - 1
            return single_layer(module, top)(x, h0[top:top + 1])[0]
        mistakes["every layer reading x: layer k > 0 reads the states of layer k - 1"] = every_layer_reads_x
    if module.batch_first and x.dim() == 3:
        mistakes["the output left time-major: with batch_first=True output is (N, L, H)"] = (
            lambda: module(x, h0)[0].transpose(0, 1))
    return mistakes


def compare_stacked_with_nn_gru(stacked_gru_forward, module, x, h0, what, more_mistakes=None):
    """stacked_gru_forward(x, h0, weights of `module`, batch_first) must return what `module(x, h0)` returns.
    `more_mistakes`: {name: function of no arguments returning a wrong output} to name besides the usual ones."""
    params = layer_params_of(module)
    given_x, given_h0 = x.clone(), h0.clone()
    given_params = [{name: None if tensor is None else tensor.clone() for name, tensor in layer.items()}
                    for layer in params]
    with torch.no_grad():
        expected_output, expected_h_n = module(x, h0)
        with while_checking(what):
            result = stacked_gru_forward(given_x, given_h0, given_params, batch_first=module.batch_first)
        check_type(result, tuple, what)
        check(len(result) == 2, f"{what}: expected a pair (output, h_n), got {len(result)} items")
        check_unchanged(x, given_x, f"{what}: x")
        check_unchanged(h0, given_h0, f"{what}: h0")
        mistakes = stacked_mistakes(module, x, h0) | dict(more_mistakes or {})
        check_tensor_or_variant(result[0], expected_output, f"{what}: output", mistakes)
        check_tensor_or_variant(result[1], expected_h_n, f"{what}: h_n", {
            "h_n with the layers in reverse order: h_n[0] is the bottom layer": expected_h_n.flip(0)})


@exercise("ex3_2_visible", "stacked_gru_forward", forbidden={"stacked_gru_forward": GRU_OPERATORS})
def exercise_3_2(stacked_gru_forward):
    """Compared with nn.GRU on the article's Example 2 (batch first, two layers) and on a time-major stack of three
    layers, both with a random h0."""
    with seeded(302):
        compare_stacked_with_nn_gru(stacked_gru_forward, nn.GRU(10, 20, num_layers=2, batch_first=True),
                                    torch.randn(32, 5, 10), torch.randn(2, 32, 20),
                                    "Example 2: nn.GRU(10, 20, num_layers=2, batch_first=True)")
        compare_stacked_with_nn_gru(stacked_gru_forward, nn.GRU(4, 6, num_layers=3), torch.randn(7, 3, 4),
                                    torch.randn(3, 3, 6), "nn.GRU(4, 6, num_layers=3)")


# --- Exercise 3.3 ------------------------------------------------------------------------------------------------

def layer_by_layer_last_states(module, x, h0):
    """Each layer's last state, computed with one single-layer nn.GRU per layer (x time-major or unbatched)."""
    layer_input, last_states = x, []
    with torch.no_grad():
        for k in range(module.num_layers):
            layer_input, last = single_layer(module, k)(layer_input, h0[k:k + 1])
            last_states.append(last[0])
    return last_states


def check_h_n_rows(top_layer_last_state, layer_last_state, module, x, h0, what):
    """Both answers read the right row of the h_n that `module` returns on x, h0."""
    with torch.no_grad():
        _, h_n = module(x, h0)
    truth = layer_by_layer_last_states(module, x, h0)
    rows = {f"h_n[{j}], layer {j}'s last state (layer 0 is the bottom, the one that reads x)": truth[j]
            for j in range(module.num_layers)}
    given = h_n.clone()
    call = f"{what}: top_layer_last_state(h_n)"
    with while_checking(call):
        top = top_layer_last_state(given)
    check_unchanged(h_n, given, f"{call}: h_n")
    check_tensor_or_variant(top, truth[-1], call, rows)
    for k in range(module.num_layers):
        given = h_n.clone()
        call = f"{what}: layer_last_state(h_n, {k})"
        with while_checking(call):
            state = layer_last_state(given, k)
        check_unchanged(h_n, given, f"{call}: h_n")
        check_tensor_or_variant(state, truth[k], call, rows)


@exercise("ex3_3_visible", "top_layer_last_state", "layer_last_state")
def exercise_3_3(top_layer_last_state, layer_last_state):
    """A three-layer GRU. Each layer's true last state comes from running PyTorch one layer at a time (single-layer
    nn.GRUs holding the stack's weights), not from h_n."""
    with seeded(304):
        check_h_n_rows(top_layer_last_state, layer_last_state, nn.GRU(3, 5, num_layers=3), torch.randn(6, 2, 3),
                       torch.randn(3, 2, 5), "nn.GRU(3, 5, num_layers=3)")


# --- Exercise 3.4 ------------------------------------------------------------------------------------------------

def check_top_layer_state_at(top_layer_state_at, module, x, step, what):
    """top_layer_state_at(output, step, batch_first) must be the top row of h_n when `module` reads only the steps
    up to and including `step`."""
    batched = x.dim() == 3
    time_axis = 1 if (batched and module.batch_first) else 0
    seq_len = x.shape[time_axis]
    prefix = x.narrow(time_axis, 0, step % seq_len + 1)
    with torch.no_grad():
        output, _ = module(x)
        _, h_n_of_prefix = module(prefix)
    call = f"{what}: top_layer_state_at(output, {step}, batch_first={module.batch_first})"
    given = output.clone()
    with while_checking(call):
        state = top_layer_state_at(given, step, batch_first=module.batch_first)
    check_unchanged(output, given, f"{call}: output")
    mistakes = {}
    if batched and module.batch_first and -output.shape[0] <= step < output.shape[0]:
        mistakes["output[step], sequence `step` of the batch: with batch_first=True time is axis 1"] = output[step]
    if not batched and module.batch_first and -output.shape[1] <= step < output.shape[1]:
        mistakes["output[:, step], feature `step` of every step: unbatched output is (L, H), batch_first does "
                 "not apply"] = output[:, step]
    check_tensor_or_variant(state, h_n_of_prefix[-1], call, mistakes)


@exercise("ex3_4_visible", "top_layer_state_at")
def exercise_3_4(top_layer_state_at):
    """The article's Example 2 (batch first, two layers), the last step and a middle one."""
    with seeded(306):
        example = nn.GRU(10, 20, num_layers=2, batch_first=True)
        x = torch.randn(32, 5, 10)
    for step in (-1, 2):
        check_top_layer_state_at(top_layer_state_at, example, x, step, "Example 2: nn.GRU(10, 20, 2, batch_first=True)")

