"""Lesson 05's visible checks: the checks a learner runs in the notebook, released with the lesson.

Each function checks one exercise (`checks.exercise_5_1(collate)` in the notebook); the course's grader runs the same
functions in its own process, where the answers are stubs that call the learner's code. Nothing here computes an
exercise's answer: the checks use PyTorch itself, properties of a right answer (a sequence's logits do not depend on
the padding after it; the loss does not change when padded steps change) and the expected output of fixed examples,
given as literal values (the hidden checks, for instructors only, compute them with a reference; the course's tests
keep the two in step). `StepFixture` is the small model that Exercise 5.4's checks train: a fixture, not an answer.
"""
import copy
import math

import torch
import torch.nn.functional as F
from course_checks import (
    CheckFailed,
    check,
    check_shape,
    check_tensor,
    check_type,
    exercise,
    is_module,
    parameters_of,
    type_name,
    while_checking,
)
from torch import nn

# The checks' device: a GPU when there is one (the answers must work on any device), else the CPU.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
CPU = torch.device("cpu")


def on_device(on):
    """", on cuda" for a configuration on a GPU, "" on the CPU (for messages)."""
    return f", on {on.type}" if on.type != "cpu" else ""


def real_steps(lengths, steps):
    """(N, steps) bool: True at the real steps, t < lengths[n]."""
    return torch.arange(steps) < torch.as_tensor(lengths)[:, None]


def fixed_values(shape, offset, scale=0.6, dtype=torch.float32):
    """Fixed, not random, values (the same on every machine and PyTorch version): scale * sin(0.7 i + offset)."""
    count = math.prod(shape)
    angles = torch.arange(count, dtype=torch.float64) * 0.7 + offset
    return (scale * torch.sin(angles)).reshape(shape).to(dtype)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.1 · collate

def collate_example(lengths, num_features, dtype, generator):
    """A batch for collate: sequences of the given lengths and labels from 0 to 8."""
    sequences = [torch.randn(length, num_features, dtype=dtype, generator=generator) for length in lengths]
    labels = torch.randint(0, 9, (len(lengths),), generator=generator).tolist()
    return sequences, labels


def check_collate(collate, lengths, num_features=12, dtype=torch.float32, generator=None):
    """collate on one batch, checked by properties: row n of padded is sequence n, then zeros; lengths and labels
    are int64 tensors holding the batch's lengths and labels, in the batch's order."""
    sequences, labels = collate_example(lengths, num_features, dtype, generator)
    count, longest = len(lengths), max(lengths)
    what = f"collate(batch of {count} with lengths {lengths}, {num_features} features, {dtype})"
    batch = [(sequence.clone(), label) for sequence, label in zip(sequences, labels, strict=True)]
    with while_checking(what):
        result = collate(batch)
    check_type(result, (tuple, list), what)
    items = list(tuple.__iter__(result) if isinstance(result, tuple) else list.__iter__(result))
    check(len(items) == 3, f"{what}: expected three items (padded, lengths, labels), got {len(items)}")
    padded, got_lengths, got_labels = items

    check_type(padded, torch.Tensor, f"{what}: padded")
    shape = tuple(padded.shape)
    if longest != count and shape == (longest, count, num_features):
        raise CheckFailed(f"{what}: padded has shape {shape}, time-major (L, N, F); expected batch first "
                          f"{(count, longest, num_features)}: pad with batch_first=True")
    check_shape(padded.shape, (count, longest, num_features), f"{what}: padded.shape")
    check(padded.dtype == dtype, f"{what}: padded: expected the sequences' dtype {dtype}, got {padded.dtype}")
    rows = padded.detach().cpu()
    order = sorted(range(count), key=lambda n: -lengths[n])
    if order != list(range(count)) and all(
            torch.equal(rows[row, : lengths[n]], sequences[n]) for row, n in enumerate(order)):
        raise CheckFailed(f"{what}: padded holds the sequences sorted by length; keep the batch order (row n must "
                          f"be item n, or the labels no longer match their sequences)")
    for n, sequence in enumerate(sequences):
        check_tensor(rows[n, : lengths[n]], sequence, f"{what}: padded[{n}, :{lengths[n]}] (sequence {n})")
        check(bool((rows[n, lengths[n]:] == 0).all()),
              f"{what}: padded[{n}, {lengths[n]}:]: the steps after sequence {n}'s end must be zeros")

    check_type(got_lengths, torch.Tensor, f"{what}: lengths")
    check(got_lengths.device.type == "cpu", f"{what}: lengths is on {got_lengths.device}; pack_padded_sequence "
                                            f"wants the lengths on the CPU (even when the data is on a GPU)")
    check(got_lengths.dtype == torch.int64, f"{what}: lengths: expected dtype torch.int64, got {got_lengths.dtype} "
                                            f"(pack_padded_sequence wants a 1-D int64 CPU tensor; a float one is "
                                            f"silently truncated)")
    check_tensor(got_lengths, torch.tensor(lengths), f"{what}: lengths")
    check_type(got_labels, torch.Tensor, f"{what}: labels")
    check(got_labels.dtype == torch.int64, f"{what}: labels: expected dtype torch.int64 (what F.cross_entropy "
                                           f"wants as class indices), got {got_labels.dtype}")
    check_tensor(got_labels, torch.tensor(labels), f"{what}: labels")
    for n, (sequence, _) in enumerate(batch):
        check(torch.equal(sequence, sequences[n]), f"{what}: collate changed sequence {n} of the batch it was given "
                                                   f"(in place); leave the items unchanged")


@exercise("ex5_1_visible", "collate")
def exercise_5_1(collate):
    """Three sequences of lengths 4, 6 and 2 (12 features), a batch of one, and two float64 sequences."""
    generator = torch.Generator().manual_seed(51)
    check_collate(collate, [4, 6, 2], generator=generator)
    check_collate(collate, [5], generator=generator)
    check_collate(collate, [3, 1], num_features=2, dtype=torch.float64, generator=generator)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.2 · SequenceClassifier

def fixed_state(input_size, hidden_size, num_classes, num_layers=1, bidirectional=False):
    """The state_dict the checks load into a SequenceClassifier: fixed values, named and shaped as those of
    nn.GRU(..., batch_first=True) as `gru` and nn.Linear(D * hidden_size, num_classes) as `head`."""
    with torch.device("meta"):  # only the names and shapes (no initialisation, no random numbers drawn)
        gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
        head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_classes)
    shapes = {**{f"gru.{name}": p.shape for name, p in gru.named_parameters()},
              **{f"head.{name}": p.shape for name, p in head.named_parameters()}}
    return {name: fixed_values(tuple(shape), offset=3 * index) for index, (name, shape) in enumerate(shapes.items())}


def fixed_batch(lengths, input_size, extra_padding=0, dtype=torch.float32):
    """A padded batch (N, max(lengths) + extra_padding, input_size) of fixed values, zeros after each end."""
    steps = max(lengths) + extra_padding
    values = fixed_values((len(lengths), steps, input_size), offset=50, scale=1.0, dtype=dtype)
    return values * real_steps(lengths, steps)[..., None].to(dtype)


# Expected logits of two fixed examples (fixed_state, fixed_batch), and those of plausible mistakes; the hidden
# checks compute them with a reference (tests/test_lesson_05.py checks that these literals are what it gives).
CLASSIFIER_EXAMPLES = {
    "one layer": dict(sizes=(3, 4, 3), num_layers=1, bidirectional=False, lengths=[4, 6, 2]),
    "two layers, bidirectional": dict(sizes=(3, 4, 3), num_layers=2, bidirectional=True, lengths=[3, 5, 5, 1]),
}
BOTTOM_LAYER = "the bottom layer's rows h_n[0], h_n[1]: the top layer's are h_n[-2], h_n[-1]"
BACKWARD_FIRST = "[backward | forward]: concatenate h_n[-2] (forward) first, then h_n[-1] (backward)"
MIXED_ROWS = "h_n reshaped without moving the batch dimension first: rows of different sequences mixed"
NOT_PACKED = ("a GRU run over the padding (not packed): the logits of a sequence change with the padding after it; "
              "pack the batch so each sequence stops at its length")
OUTPUT_LAST = ("output[:, -1]: for sequences shorter than the batch that is padding (the logits are head.bias), and "
               "a backward half would not be final")
EXPECTED_LOGITS = {
    "one layer": [
        [0.4368057, 0.00621447, -0.4322041],
        [0.5680391, -0.1136481, -0.337563],
        [0.5297766, -0.128195, -0.271888],
    ],
    "two layers, bidirectional": [
        [0.308497, 0.5579073, 0.5441417],
        [0.3555352, 0.5652844, 0.5085462],
        [0.2858817, 0.5344649, 0.5303946],
        [0.3643086, 0.5605757, 0.4924691],
    ],
}
MISTAKE_LOGITS = {
    "two layers, bidirectional": {
        BOTTOM_LAYER: [
            [0.2799695, 0.4455489, 0.3983865],
            [0.391766, 0.5931444, 0.51553],
            [0.3403078, 0.5751411, 0.5390627],
            [0.3476962, 0.5472451, 0.488404],
        ],
        BACKWARD_FIRST: [
            [0.4743993, 0.7490618, 0.6747451],
            [0.3976557, 0.739826, 0.7371626],
            [0.4712794, 0.7755935, 0.7190192],
            [0.4386908, 0.7157656, 0.6588068],
        ],
        MIXED_ROWS: [
            [0.3184041, 0.5891333, 0.5826701],
            [0.5346428, 0.79366, 0.6836794],
            [0.352377, 0.5871121, 0.545562],
            [0.5635328, 0.830128, 0.7113558],
        ],
    },
}
CLASSIFIER_TOLERANCE = dict(rtol=1e-4, atol=1e-5)  # float32 GRUs on different machines agree to about 1e-6


def classifier_what(sizes, num_layers, bidirectional, lengths, extra_padding=0, on=CPU):
    input_size, hidden_size, num_classes = sizes
    return (f"SequenceClassifier({input_size}, {hidden_size}, {num_classes}, num_layers={num_layers}, "
            f"bidirectional={bidirectional}) with the checks' state_dict, on lengths {lengths}"
            + (f", padded {extra_padding} steps further" if extra_padding else "") + on_device(on))


def built_classifier(SequenceClassifier, sizes, num_layers, bidirectional, state, what):
    """A new SequenceClassifier with `state` loaded (checked: a module, parameter names, values loaded)."""
    input_size, hidden_size, num_classes = sizes
    with while_checking(what):
        model = SequenceClassifier(input_size, hidden_size, num_classes, num_layers=num_layers,
                                   bidirectional=bidirectional)
    check(is_module(model), f"{what}: SequenceClassifier(...) should be an nn.Module, got a {type_name(model)}")
    with while_checking(f"{what}: its parameters"):
        names = sorted(parameters_of(model))
    check(names == sorted(state), f"{what}: the model's parameters are named {names}; expected {sorted(state)} "
                                  f"(self.gru = nn.GRU(...) and self.head = nn.Linear(...))")
    with while_checking(f"{what}: load_state_dict"):
        model.load_state_dict(state)
    loaded = parameters_of(model)
    for name, value in state.items():
        check_tensor(loaded[name], value, f"{what}: {name} after load_state_dict")
    return model


def logits_of(model, x, lengths, what):
    """The model's logits for (x, lengths) (given copies), checked to be a tensor."""
    with while_checking(what):
        logits = model(x.clone(), lengths.clone())
    check_type(logits, torch.Tensor, f"{what}: logits")
    return logits


def check_logits_shape(logits, count, num_classes, what):
    if count == 1 and tuple(logits.shape) == (num_classes,):
        raise CheckFailed(f"{what}: logits have shape {tuple(logits.shape)} for a batch of one; expected "
                          f"{(1, num_classes)} (did squeeze() remove the batch dimension?)")
    check_shape(logits.shape, (count, num_classes), f"{what}: logits.shape")


def close(got, want):
    return got.shape == want.shape and bool(torch.allclose(got.double(), want.double(), **CLASSIFIER_TOLERANCE))


def check_alone(model, x, lengths, expected, what, on):
    """Each sequence alone, a batch of one without padding, gives its row of `expected`."""
    for n, length in enumerate(lengths.tolist()):
        alone_what = f"{what}: sequence {n} alone (a batch of one, without padding)"
        logits = logits_of(model, x[n:n + 1, :length].to(on), lengths[n:n + 1], alone_what)
        check_logits_shape(logits, 1, expected.shape[1], alone_what)
        got = logits.detach().cpu()
        if not close(got, expected[n:n + 1]):
            raise CheckFailed(f"{alone_what}: logits {[round(v, 6) for v in got[0].tolist()]}, expected "
                              f"{[round(v, 6) for v in expected[n].tolist()]}, the sequence's logits in the batch")


def diagnose_classifier(model, x, lengths, got, expected, mistakes, bias, on):
    """The known mistake that explains `got` (the logits of the batch), or None."""
    count = len(lengths)
    order = torch.sort(lengths, descending=True, stable=True).indices
    if count > 1 and not torch.equal(order, torch.arange(count)) and close(got, expected[order]):
        return ("those of the batch sorted by length, longest first: return them in the batch's order (sort back, "
                "or use enforce_sorted=False)")
    for mistake, wrong in mistakes.items():
        if close(got, wrong):
            return mistake
    shorter = [n for n in range(count) if lengths[n] < x.shape[1]]
    if shorter and all(close(got[n], bias) for n in shorter):
        return OUTPUT_LAST
    for n, length in enumerate(lengths.tolist()):
        if length < x.shape[1]:
            try:
                with while_checking("a sequence alone"):
                    alone = model(x[n:n + 1, :length].to(on), lengths[n:n + 1].clone())
            except CheckFailed:
                continue
            if isinstance(alone, torch.Tensor) and alone.numel() == got.shape[1] and not close(
                    alone.detach().cpu().reshape(got[n:n + 1].shape), got[n:n + 1]):
                return NOT_PACKED
    return None


def check_classifier_against(SequenceClassifier, sizes, num_layers, bidirectional, lengths, state, x, expected,
                             mistakes=None, extra_padding=0, on=CPU):
    """The model with `state` loaded, on (x, lengths): logits equal to `expected` (N, C), each sequence's equal
    to its logits alone; when they differ, the message names the known mistake that explains them."""
    what = classifier_what(sizes, num_layers, bidirectional, lengths, extra_padding, on)
    model = built_classifier(SequenceClassifier, sizes, num_layers, bidirectional, state, what)
    if on.type != "cpu":
        with while_checking(f"{what}: .to({on.type})"):
            model.to(on)
    length_tensor = torch.tensor(lengths)
    logits = logits_of(model, x.to(on), length_tensor, f"{what}: forward")
    check_logits_shape(logits, len(lengths), sizes[2], f"{what}: forward")
    check(logits.dtype == torch.float32, f"{what}: logits: expected dtype torch.float32, got {logits.dtype}")
    got = logits.detach().cpu()
    if not close(got, expected):
        mistake = diagnose_classifier(model, x, length_tensor, got, expected, mistakes or {},
                                      state["head.bias"], on)
        if mistake:
            raise CheckFailed(f"{what}: the logits match {mistake}")
        check_tensor(got, expected, f"{what}: logits")
    check_alone(model, x, length_tensor, expected, what, on)


@exercise("ex5_2_visible", "SequenceClassifier")
def exercise_5_2(SequenceClassifier):
    """The checks' fixed state_dict loaded into your model; its logits on a fixed batch compared with the expected
    ones (one layer, one direction; two layers, bidirectional), and each sequence run alone, a batch of one."""
    for name, example in CLASSIFIER_EXAMPLES.items():
        sizes, lengths = example["sizes"], example["lengths"]
        state = fixed_state(*sizes, num_layers=example["num_layers"], bidirectional=example["bidirectional"])
        mistakes = {mistake: torch.tensor(values) for mistake, values in MISTAKE_LOGITS.get(name, {}).items()}
        check_classifier_against(SequenceClassifier, sizes, example["num_layers"], example["bidirectional"], lengths,
                                 state, fixed_batch(lengths, sizes[0]), torch.tensor(EXPECTED_LOGITS[name]),
                                 mistakes)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.3 · masked_cross_entropy

# The known mistakes, named in the messages (the hidden checks compute their values; the visible ones show them).
PADDING_INCLUDED = "the mean over all N * L steps, padded steps included: mask the padded steps out"
MEAN_OF_MEANS = ("the mean of each sequence's mean loss (an average per sequence): every real step must count the "
                 "same, so divide the real steps' total by the number of real steps, lengths.sum()")
PER_BATCH = ("the real steps' total divided by N, the number of sequences (an average per sequence of the batch, "
             "not per real step): divide by the number of real steps, lengths.sum()")
SUM_OF_MEANS = ("the sum of each sequence's mean loss, N times the mean of the means (a sum where a mean is "
                "asked): average over the real steps")
TOTAL = ("the total over the real steps, not their mean (a sum where a mean is asked): divide it by the number of "
         "real steps, lengths.sum()")
OVER_ALL_STEPS = ("the real steps' total divided by N * L, as if the padded steps counted: divide by the number of "
                  "real steps, lengths.sum()")
MASK_ONE_LONG = ("an off-by-one mask, t <= lengths[n]: one padded step counted in every sequence shorter than L "
                 "(the real steps are t < lengths[n])")
MASK_ONE_SHORT = ("an off-by-one mask, t < lengths[n] - 1: each sequence's last real step left out (a length-1 "
                  "sequence loses its only step)")
MASK_AT_START = ("a mask over each sequence's last lengths[n] steps, as if the padding came first: collate pads "
                 "after each sequence's end")

MASKED_EXAMPLES = {
    # A sequence of length L next to one of length 1: an off-by-one mask shows on one of them.
    "lengths [4, 1]": dict(lengths=[4, 1], steps=4, classes=3, dtype=torch.float64),
    "lengths [2, 5, 1], L = 6": dict(lengths=[2, 5, 1], steps=6, classes=4, dtype=torch.float32),
}
EXPECTED_MASKED_LOSS = {
    "lengths [4, 1]": 0.823483237095,
    "lengths [2, 5, 1], L = 6": 1.791097,
}
MISTAKE_MASKED_LOSS = {
    "lengths [4, 1]": {
        PADDING_INCLUDED: 0.79365801919,
        MEAN_OF_MEANS: 0.746817266313,
        PER_BATCH: 2.05870809274,
        SUM_OF_MEANS: 1.49363453263,
        TOTAL: 4.11741618547,
        OVER_ALL_STEPS: 0.514677023184,
        MASK_ONE_LONG: 0.721270176889,
        MASK_ONE_SHORT: 0.713349038791,
        MASK_AT_START: 0.828172877808,
    },
    "lengths [2, 5, 1], L = 6": {
        PADDING_INCLUDED: 2.020665,
        MEAN_OF_MEANS: 2.008816,
        PER_BATCH: 4.776259,
        SUM_OF_MEANS: 6.026447,
        TOTAL: 14.32878,
        OVER_ALL_STEPS: 0.7960432,
        MASK_ONE_LONG: 1.805012,
        MASK_ONE_SHORT: 1.867848,
        MASK_AT_START: 1.814123,
    },
}


def masked_example(lengths, steps, classes, dtype):
    """(logits (N, L, C), targets (N, L)) of fixed values; at padded steps too (any class, large logits)."""
    count = len(lengths)
    logits = fixed_values((count, steps, classes), offset=8, scale=3.0, dtype=dtype)
    targets = ((torch.arange(count * steps) * 5 + 1) % classes).reshape(count, steps)
    return logits, targets


def loss_tolerance(dtype):
    return 1e-9 if dtype == torch.float64 else 2e-6


def masked_loss_of(masked_cross_entropy, logits, targets, lengths, what):
    """The answer's loss for (logits, targets, lengths), checked: a 0-d tensor of the logits' dtype that requires
    grad; the arguments are left unchanged."""
    arguments = (logits.clone().requires_grad_(), targets.clone(), lengths.clone())
    with while_checking(what):
        loss = masked_cross_entropy(*arguments)
    check_type(loss, torch.Tensor, f"{what} (keep the loss a tensor: training calls .backward() on it)")
    check_shape(loss.shape, (), f"{what}: the loss's shape (a 0-d tensor, one number)")
    check(loss.dtype == logits.dtype, f"{what}: expected dtype {logits.dtype}, got {loss.dtype}")
    check(loss.requires_grad, f"{what}: the loss does not require grad: compute it from logits with torch "
                              f"operations (no .item(), .detach(), torch.no_grad() or new tensors from its values)")
    for name, given, original in zip(("logits", "targets", "lengths"), arguments, (logits, targets, lengths),
                                     strict=True):
        check(torch.equal(given.detach().cpu(), original.cpu()), f"{what}: masked_cross_entropy changed its "
                                                                 f"argument {name} in place; leave it unchanged")
    return loss.detach().cpu()


def named_masked_mistake(value, expected, mistakes, tolerance):
    """The mistakes of `mistakes` ({name: value}) that `value` equals and `expected` does not, named; or None."""
    names = [name for name, wrong in mistakes.items()
             if abs(wrong - expected) > tolerance * max(1.0, abs(expected))
             and abs(value - wrong) <= tolerance * max(1.0, abs(wrong))]
    if not names:
        return None
    return " and ".join(names) + (" (for this batch these give the same value)" if len(names) > 1 else "")


def check_masked_example(masked_cross_entropy, name, on=CPU):
    example = MASKED_EXAMPLES[name]
    lengths, dtype = torch.tensor(example["lengths"]), example["dtype"]
    logits, targets = masked_example(example["lengths"], example["steps"], example["classes"], dtype)
    what = (f"masked_cross_entropy(logits {tuple(logits.shape)} {dtype}, lengths {example['lengths']}"
            f"{on_device(on)})")
    loss = masked_loss_of(masked_cross_entropy, logits.to(on), targets.to(on), lengths, what)
    value, expected, tolerance = loss.item(), EXPECTED_MASKED_LOSS[name], loss_tolerance(dtype)
    if abs(value - expected) > tolerance * max(1.0, abs(expected)):
        mistake = named_masked_mistake(value, expected, MISTAKE_MASKED_LOSS[name], tolerance)
        raise CheckFailed(f"{what}: expected {expected:.7g}, got {value:.7g}"
                          + (f": that is {mistake}" if mistake else ""))
    # Padded steps must not count: other logits and targets there leave the loss as it was.
    padded = ~real_steps(lengths, example["steps"])
    other_logits = logits.masked_fill(padded[..., None], -30.0)
    other_targets = targets.masked_fill(padded, example["classes"] - 1)
    other_what = f"{what} with other values at the padded steps"
    other = masked_loss_of(masked_cross_entropy, other_logits.to(on), other_targets.to(on), lengths, other_what)
    check(abs(other.item() - value) <= tolerance * max(1.0, abs(value)),
          f"{other_what}: the loss changed from {value:.7g} to {other.item():.7g}: the padded steps count")


@exercise("ex5_3_visible", "masked_cross_entropy")
def exercise_5_3(masked_cross_entropy):
    """Two fixed batches whose losses are known (a sequence of length L next to one of length 1; a batch padded
    beyond every length), the same loss with other values at the padded steps, and the notebook's device."""
    for name in MASKED_EXAMPLES:
        check_masked_example(masked_cross_entropy, name)
    if DEVICE.type != "cpu":
        check_masked_example(masked_cross_entropy, "lengths [4, 1]", on=DEVICE)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.4 · train_step

class StepFixture(nn.Module):
    """The small classifier that Exercise 5.4's checks train (a test fixture, not an answer to any exercise): a GRU
    run over the whole padded batch, the mean of its outputs over all steps, and a linear layer. It wants the
    lengths on the CPU, as a packing model does, and counts the calls it receives in training mode (a buffer,
    so the count travels with the model's state). Pickled or copied (as the grader sends it to the learner's
    kernel), it keeps its parameters' gradients, as a model in a training loop keeps them between two steps."""

    def __init__(self, input_size=3, hidden_size=4, num_classes=5, num_layers=1, bidirectional=False):
        super().__init__()
        directions = 2 if bidirectional else 1
        self.gru = nn.GRU(input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(directions * hidden_size, num_classes)
        self.register_buffer("training_calls", torch.zeros((), dtype=torch.int64))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_course_gradients"] = {name: None if p.grad is None else p.grad.detach().clone()
                                      for name, p in self.named_parameters()}
        return state

    def __setstate__(self, state):
        gradients = state.pop("_course_gradients", {})
        super().__setstate__(state)
        for name, parameter in self.named_parameters():
            if gradients.get(name) is not None:
                parameter.grad = gradients[name]

    def forward(self, x, lengths):
        if lengths.device.type != "cpu":
            raise ValueError(f"lengths must stay on the CPU (pack_padded_sequence wants them there), got them on "
                             f"{lengths.device}")
        if self.training:
            self.training_calls += 1
        output, _ = self.gru(x)
        return self.head(output.mean(dim=1))


def step_fixture(seed, dtype=torch.float64, **sizes):
    """A StepFixture initialised from `seed`, in eval mode (train_step must switch it to training mode); the
    notebook's random numbers are left as they were."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return StepFixture(**sizes).to(dtype).eval()


def step_batch(lengths, input_size=3, num_classes=5, dtype=torch.float64, generator=None):
    """(x, lengths, labels) as collate returns them (the fixture does not read x's padded steps)."""
    x = torch.randn(len(lengths), max(lengths), input_size, dtype=dtype, generator=generator)
    labels = torch.randint(0, num_classes, (len(lengths),), generator=generator)
    return x, torch.tensor(lengths), labels


def copy_of(batch):
    return tuple(t.clone() for t in batch)


def step_what(model, optimizer_name, max_norm, lengths, step, steps, on=CPU):
    return (f"train_step(StepFixture(num_layers={model.gru.num_layers}, bidirectional={model.gru.bidirectional}), "
            f"{optimizer_name}, max_norm={max_norm:g}{on_device(on)}), step {step} of {steps} (batch lengths "
            f"{lengths})")


def step_of(train_step, model, batch, optimizer, max_norm, what):
    """Call train_step; check the returned loss is a float and that the model ran in training mode."""
    calls = int(model.training_calls)
    with while_checking(what):
        loss = train_step(model, copy_of(batch), optimizer, max_norm)
    check_type(loss, float, f"{what}: the returned loss (a Python float: loss.item())")
    check(int(model.training_calls) > calls, f"{what}: the model ran in eval mode: call model.train() before the "
                                             f"forward pass")
    return float.__float__(loss)


def flat(tensors):
    return torch.cat([t.detach().reshape(-1).cpu() for t in tensors])


def loss_and_gradient(model, batch):
    """The batch's cross-entropy at the model's current parameters, and its gradient (flattened), from a copy."""
    twin = copy.deepcopy(model).train()
    x, lengths, labels = batch
    where = next(twin.parameters()).device
    loss = F.cross_entropy(twin(x.to(where), lengths), labels.to(where))
    return loss.item(), flat(torch.autograd.grad(loss, list(twin.parameters())))


def sgd_change(gradient, lr, max_norm):
    """How one SGD step (lr, no momentum) changes the parameters when the gradient's norm is clipped to max_norm."""
    return -lr * gradient * min(1.0, max_norm / (gradient.norm().item() + 1e-6))


NOT_CLIPPED = ("those of a step with the gradient not clipped: clip_grad_norm_ must act between loss.backward() and "
               "optimizer.step()")
UNCHANGED = ("unchanged: optimizer.step() must come after loss.backward() and clipping, with the gradients still "
             "there (no zero_grad in between)")
NO_ZERO_GRAD = ("those of a step with the sum of this batch's gradient and the previous step's: call "
                "optimizer.zero_grad() before loss.backward() (PyTorch adds new gradients to the old ones)")


def check_sgd_steps(train_step, seed, batches, max_norms, lr=0.1):
    """Steps of plain SGD on a StepFixture: the returned loss is the batch's before the update, and the parameters
    move by -lr times this batch's gradient, with its norm clipped to max_norm."""
    generator = torch.Generator().manual_seed(seed)
    model = step_fixture(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    previous_gradient = None  # what a right step leaves in the parameters' .grad: the clipped gradient
    for step, (lengths, max_norm) in enumerate(zip(batches, max_norms, strict=True), 1):
        batch = step_batch(lengths, generator=generator)
        what = step_what(model, f"SGD(lr={lr})", max_norm, lengths, step, len(batches))
        before = flat(model.parameters())
        expected_loss, gradient = loss_and_gradient(model, batch)
        loss = step_of(train_step, model, batch, optimizer, max_norm, what)
        check(abs(loss - expected_loss) <= 1e-9 * max(1.0, abs(expected_loss)),
              f"{what}: returned loss {loss:.9g}, expected the batch's loss before the update, {expected_loss:.9g}")
        change = flat(model.parameters()) - before
        right = sgd_change(gradient, lr, max_norm)
        if not torch.allclose(change, right, rtol=1e-6, atol=1e-10):
            candidates = {NOT_CLIPPED: -lr * gradient, UNCHANGED: torch.zeros_like(right)}
            if previous_gradient is not None:
                candidates[NO_ZERO_GRAD] = sgd_change(gradient + previous_gradient, lr, max_norm)
            mistake = next((name for name, wrong in candidates.items()
                            if torch.allclose(change, wrong, rtol=1e-6, atol=1e-10)
                            and not torch.allclose(right, wrong, rtol=1e-6, atol=1e-10)), None)
            raise CheckFailed(f"{what}: the parameters after the step are not those of one SGD step with this "
                              f"batch's gradient clipped to norm {max_norm:g} (largest difference "
                              f"{(change - right).abs().max().item():.3g})"
                              + (f"; they are {mistake}" if mistake else ""))
        previous_gradient = right / -lr


@exercise("ex5_4_visible", "train_step")
def exercise_5_4(train_step):
    """Two plain SGD steps in a row on a small GRU classifier (StepFixture), one with clipping acting and one
    without; the returned loss; training mode."""
    check_sgd_steps(train_step, 54, [[4, 2, 5], [3, 6]], [0.01, 1e9])  # the first step is clipped, the second not
    check_sgd_steps(train_step, 55, [[1], [2, 2, 1]], [1e9, 0.01])  # a batch of one first
