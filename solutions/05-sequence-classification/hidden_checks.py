"""Lesson 05's hidden checks: for instructors only, never released, never inside a grading kernel.

They run the visible checks' property checks (lesson_checks.py) on many random configurations and edge cases, and
compare with references computed here: a classifier's logits from each sequence run alone through nn.GRU, the masked
loss as a loop over the sequences, a training step run on a copy of the same model and optimizer. When an answer
differs, the message names the known mistake that explains it. `python hidden_checks.py` prints the literal expected
values of lesson_checks.py's fixed examples, computed by these references.
"""
import copy

import lesson_checks as visible
import torch
import torch.nn.functional as F
from course_checks import CheckFailed, check, check_tensor, exercise
from lesson_checks import CPU, DEVICE
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.1 · collate

# The lengths of the first 16 utterances of the notebook's training part.
REAL_LENGTHS = [20, 26, 20, 21, 23, 18, 24, 15, 23, 17, 14, 14, 15, 21, 16, 15]


@exercise("ex5_1_hidden", "collate")
def exercise_5_1(collate):
    """Random batches (1 to 9 sequences, lengths 1 to 12, 1 to 5 features), equal lengths, float64 sequences, a
    batch of one, length 1, and the lengths of a batch of the real data."""
    generator = torch.Generator().manual_seed(5104)
    visible.check_collate(collate, [1], num_features=1, generator=generator)
    visible.check_collate(collate, [3, 3, 3], num_features=2, generator=generator)
    visible.check_collate(collate, [2, 7, 1, 5], num_features=3, dtype=torch.float64, generator=generator)
    visible.check_collate(collate, [1, 9], num_features=4, generator=generator)
    visible.check_collate(collate, REAL_LENGTHS, generator=generator)
    for _ in range(8):
        count = int(torch.randint(1, 10, (), generator=generator))
        lengths = torch.randint(1, 13, (count,), generator=generator).tolist()
        num_features = int(torch.randint(1, 6, (), generator=generator))
        dtype = torch.float64 if bool(torch.rand((), generator=generator) < 0.3) else torch.float32
        visible.check_collate(collate, lengths, num_features=num_features, dtype=dtype, generator=generator)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.2 · SequenceClassifier

BOTTOM_LAYER_ONE_DIRECTION = "the bottom layer's row h_n[0]: the top layer's is h_n[-1]"


def reference_modules(state, sizes, num_layers, bidirectional):
    """nn.GRU and nn.Linear holding `state` (a SequenceClassifier's state_dict), on the CPU."""
    input_size, hidden_size, num_classes = sizes
    with torch.random.fork_rng(devices=[]):
        gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
        head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_classes)
    gru.load_state_dict({name[len("gru."):]: value for name, value in state.items() if name.startswith("gru.")})
    head.load_state_dict({name[len("head."):]: value for name, value in state.items() if name.startswith("head.")})
    return gru, head


def reference_logits(state, sizes, num_layers, bidirectional, x, lengths):
    """Each sequence alone through the GRU (no padding): the top layer's forward state after its last step and
    backward state after step 0, then the head."""
    gru, head = reference_modules(state, sizes, num_layers, bidirectional)
    hidden_size = sizes[1]
    finals = []
    with torch.no_grad():
        for n, length in enumerate(lengths):
            output, _ = gru(x[n:n + 1, :length])
            final = output[0, -1, :hidden_size]
            finals.append(torch.cat([final, output[0, 0, hidden_size:]]) if bidirectional else final)
        return head(torch.stack(finals))


def classifier_mistakes(state, sizes, num_layers, bidirectional, x, lengths):
    """{known mistake: the logits it gives} for this configuration (those of the right shape)."""
    gru, head = reference_modules(state, sizes, num_layers, bidirectional)
    directions, count = (2 if bidirectional else 1), len(lengths)
    with torch.no_grad():
        _, unpacked_h_n = gru(x)
        packed_output, h_n = gru(pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                                      enforce_sorted=False))
        output, _ = pad_packed_sequence(packed_output, batch_first=True, total_length=x.shape[1])
        readings = {visible.NOT_PACKED: unpacked_h_n[-directions:].permute(1, 0, 2).reshape(count, -1)}
        if bidirectional:
            readings[visible.BOTTOM_LAYER] = torch.cat([h_n[0], h_n[1]], dim=-1)
            readings[visible.BACKWARD_FIRST] = torch.cat([h_n[-1], h_n[-2]], dim=-1)
            readings[visible.MIXED_ROWS] = h_n[-directions:].reshape(count, -1)
        else:
            readings[BOTTOM_LAYER_ONE_DIRECTION] = h_n[0]
        readings[visible.OUTPUT_LAST] = output[:, -1]
        right = reference_logits(state, sizes, num_layers, bidirectional, x, lengths)
        mistakes = {}
        for name, final in readings.items():
            logits = head(final)
            if not visible.close(logits, right):
                mistakes[name] = logits
        return mistakes


def random_state(sizes, num_layers, bidirectional, seed):
    """A SequenceClassifier's state_dict as nn.GRU and nn.Linear initialise it, from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gru = nn.GRU(sizes[0], sizes[1], num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
        head = nn.Linear((2 if bidirectional else 1) * sizes[1], sizes[2])
    return {**{f"gru.{k}": v for k, v in gru.state_dict().items()},
            **{f"head.{k}": v for k, v in head.state_dict().items()}}


def check_classifier(SequenceClassifier, lengths, num_layers=1, bidirectional=False, sizes=(3, 4, 5),
                     extra_padding=0, padding_value=0.0, on=CPU, seed=0):
    state = random_state(sizes, num_layers, bidirectional, seed)
    generator = torch.Generator().manual_seed(seed)
    steps = max(lengths) + extra_padding
    x = torch.randn(len(lengths), steps, sizes[0], generator=generator)
    x = x.masked_fill(~visible.real_steps(lengths, steps)[..., None], padding_value)
    expected = reference_logits(state, sizes, num_layers, bidirectional, x, lengths)
    mistakes = classifier_mistakes(state, sizes, num_layers, bidirectional, x, lengths)
    visible.check_classifier_against(SequenceClassifier, sizes, num_layers, bidirectional, lengths, state, x, expected,
                                     mistakes, extra_padding=extra_padding, on=on)


@exercise("ex5_2_hidden", "SequenceClassifier")
def exercise_5_2(SequenceClassifier):
    """1 to 3 layers, one direction and two, unsorted lengths, a batch of one, length 1, a batch padded beyond its
    longest sequence, padded steps that hold other values than zeros, a one-unit GRU, the real data's sizes, and the
    notebook's device; logits compared with each sequence run alone through nn.GRU."""
    for bidirectional in (False, True):
        check_classifier(SequenceClassifier, [2, 7, 1, 5], bidirectional=bidirectional, seed=1)
        check_classifier(SequenceClassifier, [3], bidirectional=bidirectional, seed=2)
        check_classifier(SequenceClassifier, [1], num_layers=2, bidirectional=bidirectional, seed=3)
        check_classifier(SequenceClassifier, [4, 2, 6], num_layers=2, bidirectional=bidirectional, extra_padding=2,
                         seed=4)
        check_classifier(SequenceClassifier, [5, 3, 3, 1, 6], num_layers=3, bidirectional=bidirectional,
                         sizes=(3, 3, 5), padding_value=7.0, seed=5)
        check_classifier(SequenceClassifier, [6, 5, 4, 1], bidirectional=bidirectional, sizes=(3, 1, 2), seed=6)
        check_classifier(SequenceClassifier, REAL_LENGTHS[:10], bidirectional=bidirectional, sizes=(12, 8, 9),
                         seed=7)
        check_classifier(SequenceClassifier, [3, 8, 2], num_layers=2, bidirectional=bidirectional, on=DEVICE, seed=8)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.3 · masked_cross_entropy

def reference_masked_loss(logits, targets, lengths):
    """The real steps' cross-entropy, summed sequence by sequence, over the number of real steps."""
    total = sum(F.cross_entropy(logits[n, :length], targets[n, :length], reduction="sum")
                for n, length in enumerate(lengths.tolist()))
    return total / int(lengths.sum())


def masked_loss_mistakes(logits, targets, lengths):
    """{known mistake: the loss it gives (a float)}."""
    with torch.no_grad():
        logits, targets = logits.detach().cpu().double(), targets.cpu()
        per_step = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (N, L)
        count, steps = per_step.shape
        t, lengths_ = torch.arange(steps), lengths[:, None]
        real = visible.real_steps(lengths, steps)
        total = per_step[real].sum()
        means = torch.stack([per_step[n, :length].mean() for n, length in enumerate(lengths.tolist())])

        def mean_over(mask):
            return (per_step[mask].sum() / mask.sum()).item() if mask.any() else float("nan")

        return {
            visible.PADDING_INCLUDED: per_step.mean().item(),
            visible.MEAN_OF_MEANS: means.mean().item(),
            visible.PER_BATCH: (total / count).item(),
            visible.SUM_OF_MEANS: means.sum().item(),
            visible.TOTAL: total.item(),
            visible.OVER_ALL_STEPS: (total / (count * steps)).item(),
            visible.MASK_ONE_LONG: mean_over(t <= lengths_),
            visible.MASK_ONE_SHORT: mean_over(t < lengths_ - 1),
            visible.MASK_AT_START: mean_over(t >= steps - lengths_),
        }


def check_masked_loss(masked_cross_entropy, lengths, classes, extra_padding=0, dtype=torch.float32, on=CPU,
                      generator=None):
    lengths = torch.tensor(lengths)
    steps = int(lengths.max()) + extra_padding
    logits = 2 * torch.randn(len(lengths), steps, classes, dtype=dtype, generator=generator)
    targets = torch.randint(0, classes, (len(lengths), steps), generator=generator)
    what = (f"masked_cross_entropy(logits {tuple(logits.shape)} {dtype}, lengths {lengths.tolist()}"
            f"{visible.on_device(on)})")
    loss = visible.masked_loss_of(masked_cross_entropy, logits.to(on), targets.to(on), lengths, what)
    expected = reference_masked_loss(logits, targets, lengths)
    if not torch.allclose(loss.double(), expected.double(), rtol=10 * visible.loss_tolerance(dtype), atol=1e-7):
        mistake = visible.named_masked_mistake(loss.item(), expected.item(),
                                               masked_loss_mistakes(logits, targets, lengths),
                                               10 * visible.loss_tolerance(dtype))
        raise CheckFailed(f"{what}: expected {expected.item():.7g}, got {loss.item():.7g}"
                          + (f": that is {mistake}" if mistake else ""))
    check_tensor(loss, expected.detach(), what)
    padded = ~visible.real_steps(lengths, steps)
    other_logits = logits.masked_fill(padded[..., None], 25.0)
    other_targets = targets.masked_fill(padded, 0)
    other_what = f"{what} with other values at the padded steps"
    other = visible.masked_loss_of(masked_cross_entropy, other_logits.to(on), other_targets.to(on), lengths,
                                   other_what)
    check_tensor(other, expected.detach(), f"{other_what} (the padded steps must not count)")


@exercise("ex5_3_hidden", "masked_cross_entropy")
def exercise_5_3(masked_cross_entropy):
    """Compared with a loop over the sequences on random batches (1 to 6 sequences, lengths 1 to 7, 2 to 6
    classes, float32 and float64), steps that are padding in every sequence, length-1 sequences next to full-length
    ones, a batch of one, equal lengths, other values at the padded steps, and the notebook's device."""
    generator = torch.Generator().manual_seed(5304)
    check_masked_loss(masked_cross_entropy, [1], 3, generator=generator)
    check_masked_loss(masked_cross_entropy, [1, 1, 1], 2, extra_padding=2, generator=generator)
    check_masked_loss(masked_cross_entropy, [4, 4], 5, generator=generator)
    check_masked_loss(masked_cross_entropy, [5, 1, 5], 3, dtype=torch.float64, generator=generator)
    check_masked_loss(masked_cross_entropy, [3, 1, 6, 2], 4, extra_padding=1, dtype=torch.float64,
                      generator=generator)
    check_masked_loss(masked_cross_entropy, [7, 2, 5], 6, extra_padding=3, on=DEVICE, generator=generator)
    for _ in range(8):
        count = int(torch.randint(1, 7, (), generator=generator))
        check_masked_loss(masked_cross_entropy, torch.randint(1, 8, (count,), generator=generator).tolist(),
                          int(torch.randint(2, 7, (), generator=generator)),
                          extra_padding=int(torch.randint(0, 3, (), generator=generator)),
                          dtype=torch.float64 if bool(torch.rand((), generator=generator) < 0.5) else torch.float32,
                          generator=generator)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 5.4 · train_step

def reference_step(model, batch, optimizer, max_norm, mistake=None):
    """One training step; `mistake` names a known wrong version of it."""
    x, lengths, labels = batch
    where = next(model.parameters()).device
    model.train()
    if mistake != "no zero_grad":
        optimizer.zero_grad()
    loss = F.cross_entropy(model(x.to(where), lengths), labels.to(where))
    loss.backward()
    if mistake == "zero_grad before step":
        optimizer.zero_grad()
    if mistake != "not clipped":
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


STEP_MISTAKES = {"not clipped": visible.NOT_CLIPPED, "zero_grad before step": visible.UNCHANGED,
                 "no zero_grad": visible.NO_ZERO_GRAD}
OPTIMIZERS = {"SGD(lr=0.1, momentum=0.9)": lambda parameters: torch.optim.SGD(parameters, lr=0.1, momentum=0.9),
              "Adam(lr=0.01)": lambda parameters: torch.optim.Adam(parameters, lr=0.01)}


def cpu_copy(model, optimizer):
    """A copy of (model, optimizer) on the CPU, where the reference steps run: on a GPU, cuDNN may compute in TF32
    in the grader's process (the learner's kernel turns it off), and the CPU is the course's reference."""
    twin, twin_optimizer = copy.deepcopy((model, optimizer))
    twin.to("cpu")  # moves the parameters in place: the optimizer still holds them
    for state in twin_optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.cpu()
    return twin, twin_optimizer


def parameters_after(model, optimizer, batch, max_norm, mistake=None, previous_gradients=None):
    """The parameters of a CPU copy of (model, optimizer) after a reference step (or a known wrong one), and the
    gradients the step leaves."""
    twin, twin_optimizer = cpu_copy(model, optimizer)
    if previous_gradients is not None:
        for parameter, gradient in zip(twin.parameters(), previous_gradients, strict=True):
            parameter.grad = None if gradient is None else gradient.cpu().clone()
    loss = reference_step(twin, batch, twin_optimizer, max_norm, mistake)
    gradients = [None if p.grad is None else p.grad.detach().clone() for p in twin.parameters()]
    return loss, [p.detach().clone() for p in twin.parameters()], gradients


def check_steps(train_step, seed, batches, optimizer_name, max_norm, on=CPU, dtype=torch.float32, **sizes):
    """Steps in a row, each compared with a reference step from the same state (parameters and optimizer state)."""
    generator = torch.Generator().manual_seed(seed)
    model = visible.step_fixture(seed, dtype=dtype, **sizes).to(on)
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    input_size, num_classes = sizes.get("input_size", 3), sizes.get("num_classes", 5)
    previous_gradients = None
    for step, lengths in enumerate(batches, 1):
        batch = visible.step_batch(lengths, input_size=input_size, num_classes=num_classes, dtype=dtype,
                                   generator=generator)
        what = visible.step_what(model, optimizer_name, max_norm, lengths, step, len(batches), on) + f", {dtype}"
        before_model, before_optimizer = cpu_copy(model, optimizer)
        expected_loss, expected, gradients = parameters_after(before_model, before_optimizer, batch, max_norm)
        loss = visible.step_of(train_step, model, batch, optimizer, max_norm, what)
        rtol = 1e-9 if dtype == torch.float64 else 1e-5
        check(abs(loss - expected_loss) <= rtol * max(1.0, abs(expected_loss)),
              f"{what}: returned loss {loss:.7g}, expected the batch's loss before the update, {expected_loss:.7g}")
        got = [p.detach().cpu().clone() for p in model.parameters()]

        def same(first, second):
            same_one = visible.close if dtype == torch.float32 else torch.allclose
            return all(same_one(a, b) for a, b in zip(first, second, strict=True))

        if not same(got, expected):
            for mistake, message in STEP_MISTAKES.items():
                if mistake == "no zero_grad" and previous_gradients is None:
                    continue
                _, wrong, _ = parameters_after(before_model, before_optimizer, batch, max_norm, mistake,
                                               previous_gradients if mistake == "no zero_grad" else None)
                if same(got, wrong) and not same(expected, wrong):
                    raise CheckFailed(f"{what}: the parameters after the step are {message}")
            for (name, _), value, want in zip(model.named_parameters(), got, expected, strict=True):
                check_tensor(value, want, f"{what}: {name} after the step")
        previous_gradients = gradients


@exercise("ex5_4_hidden", "train_step")
def exercise_5_4(train_step):
    """Three steps in a row, each compared with a reference step from the same state (the returned loss, every
    parameter, and through them the optimizer's state), with SGD with momentum and Adam, clipping active and not,
    one and two directions, two layers, a batch of one, float64, and the model on the notebook's device."""
    sgd, adam = OPTIMIZERS
    check_steps(train_step, 5401, [[4, 2, 5], [3, 3, 1], [6, 1]], sgd, max_norm=0.05)
    check_steps(train_step, 5402, [[4, 2, 5], [3, 3, 1], [6, 1]], sgd, max_norm=100.0)
    check_steps(train_step, 5403, [[2, 5, 3, 1], [4], [5, 5]], adam, max_norm=0.05, bidirectional=True)
    check_steps(train_step, 5404, [[1], [3], [2]], sgd, max_norm=0.02, bidirectional=True, num_layers=2)
    check_steps(train_step, 5405, [[3, 6, 2], [1, 4], [5, 2, 2]], adam, max_norm=0.5, num_layers=2,
                hidden_size=6, dtype=torch.float64)
    check_steps(train_step, 5406, [[3, 4], [2, 5, 1], [4, 4]], sgd, max_norm=0.05, on=DEVICE, bidirectional=True)


# ----------------------------------------------------------------------------------------------------------------
# The literal values of lesson_checks.py's fixed examples

def visible_literals():
    """{name in lesson_checks: value} of the literals the visible checks compare with, computed here."""
    expected_logits, mistake_logits = {}, {}
    for name, example in visible.CLASSIFIER_EXAMPLES.items():
        sizes, lengths = example["sizes"], example["lengths"]
        state = visible.fixed_state(*sizes, num_layers=example["num_layers"], bidirectional=example["bidirectional"])
        x = visible.fixed_batch(lengths, sizes[0])
        expected_logits[name] = reference_logits(state, sizes, example["num_layers"], example["bidirectional"], x,
                                                 lengths).tolist()
        mistakes = classifier_mistakes(state, sizes, example["num_layers"], example["bidirectional"], x, lengths)
        kept = {k: v.tolist() for k, v in mistakes.items()
                if k in (visible.BOTTOM_LAYER, visible.BACKWARD_FIRST, visible.MIXED_ROWS)}
        if kept:
            mistake_logits[name] = kept
    expected_loss, mistake_loss = {}, {}
    for name, example in visible.MASKED_EXAMPLES.items():
        logits, targets = visible.masked_example(example["lengths"], example["steps"], example["classes"],
                                                 example["dtype"])
        lengths = torch.tensor(example["lengths"])
        expected_loss[name] = reference_masked_loss(logits, targets, lengths).item()
        mistake_loss[name] = masked_loss_mistakes(logits.to(example["dtype"]), targets, lengths)
    return {"EXPECTED_LOGITS": expected_logits, "MISTAKE_LOGITS": mistake_logits,
            "EXPECTED_MASKED_LOSS": expected_loss, "MISTAKE_MASKED_LOSS": mistake_loss}


def literal_source():
    """lesson_checks.py's literal tables, as Python source (float32 values to 7 significant digits, float64 to 12)."""
    names = {value: name for name, value in vars(visible).items() if isinstance(value, str) and name.isupper()}
    literals = visible_literals()

    def number(value, digits):
        return f"{value:.{digits}g}"

    def rows(values, indent):
        return "".join(f"{' ' * indent}[{', '.join(number(v, 7) for v in row)}],\n" for row in values)

    lines = ["EXPECTED_LOGITS = {"]
    for example, values in literals["EXPECTED_LOGITS"].items():
        lines.append(f'    "{example}": [\n{rows(values, 8)}    ],')
    lines += ["}", "MISTAKE_LOGITS = {"]
    for example, mistakes in literals["MISTAKE_LOGITS"].items():
        lines.append(f'    "{example}": {{')
        for mistake, values in mistakes.items():
            lines.append(f"        {names[mistake]}: [\n{rows(values, 12)}        ],")
        lines.append("    },")
    lines += ["}", "EXPECTED_MASKED_LOSS = {"]
    for example, value in literals["EXPECTED_MASKED_LOSS"].items():
        digits = 12 if visible.MASKED_EXAMPLES[example]["dtype"] == torch.float64 else 7
        lines.append(f'    "{example}": {number(value, digits)},')
    lines += ["}", "MISTAKE_MASKED_LOSS = {"]
    for example, mistakes in literals["MISTAKE_MASKED_LOSS"].items():
        digits = 12 if visible.MASKED_EXAMPLES[example]["dtype"] == torch.float64 else 7
        lines.append(f'    "{example}": {{')
        lines += [f"        {names[mistake]}: {number(value, digits)}," for mistake, value in mistakes.items()]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(literal_source())
