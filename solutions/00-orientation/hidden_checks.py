"""Lesson 00's hidden checks (instructors only: never released, never inside a grading kernel). The grader runs them
in its own process; the notebook's hidden check cells call them (``hidden_checks.exercise_0_1(gru_shapes)``)."""
import random

import torch
from course_checks import check_int, exercise, while_checking
from lesson_checks import check_gru_shapes, check_initial_state, seeded
from torch import nn


def shapes_from_pytorch(config):
    """(output shape, h_n shape) of nn.GRU itself for a configuration of gru_shapes."""
    gru = nn.GRU(config["input_size"], config["hidden_size"], config["num_layers"],
                 bidirectional=config["bidirectional"], batch_first=config["batch_first"])
    if config["unbatched"]:
        x = torch.zeros(config["seq_len"], config["input_size"])
    elif config["batch_first"]:
        x = torch.zeros(config["batch_size"], config["seq_len"], config["input_size"])
    else:
        x = torch.zeros(config["seq_len"], config["batch_size"], config["input_size"])
    with torch.no_grad():
        output, h_n = gru(x)
    return tuple(output.shape), tuple(h_n.shape)


@exercise("ex0_1_hidden", "gru_shapes")
def exercise_0_1(gru_shapes):
    """Compared with nn.GRU itself on random configurations and the edge cases (batch of one, one step, unbatched
    input, which ignores batch_first)."""
    rng = random.Random(20261124)
    configs = [dict(seq_len=1, batch_size=1, input_size=1, hidden_size=1, num_layers=1,
                    bidirectional=False, batch_first=False, unbatched=False),
               dict(seq_len=1, batch_size=7, input_size=3, hidden_size=2, num_layers=3,
                    bidirectional=True, batch_first=True, unbatched=True)]
    configs += [dict(seq_len=rng.randint(1, 6), batch_size=rng.randint(1, 5), input_size=rng.randint(1, 6),
                     hidden_size=rng.randint(1, 6), num_layers=rng.randint(1, 3), bidirectional=rng.random() < 0.5,
                     batch_first=rng.random() < 0.5, unbatched=rng.random() < 0.3) for _ in range(40)]
    with seeded(20261124):
        for config in configs:
            check_gru_shapes(gru_shapes, config, *shapes_from_pytorch(config))


@exercise("ex0_2_hidden", "gru_parameter_count")
def exercise_0_2(gru_parameter_count):
    """Compared with nn.GRU's own parameters on random configurations, bias=False and bidirectional included."""
    rng = random.Random(7)
    with seeded(7):
        for _ in range(30):
            args = dict(input_size=rng.randint(1, 9), hidden_size=rng.randint(1, 9), num_layers=rng.randint(1, 4),
                        bidirectional=rng.random() < 0.5, bias=rng.random() < 0.6)
            expected = sum(p.numel() for p in nn.GRU(**args).parameters())
            with while_checking(f"gru_parameter_count(**{args})"):
                count = gru_parameter_count(**args)
            check_int(count, expected, f"gru_parameter_count(**{args})")


@exercise("ex0_3_hidden", "initial_hidden_state")
def exercise_0_3(initial_hidden_state):
    """Unbatched input (batch_size=None), float64 weights, one layer and three, both directions, and use as h_0."""
    with seeded(303):
        for args, batch_size, dtype in [((3, 4), None, torch.float32), ((3, 4, 3), 1, torch.float64),
                                        ((2, 5), 6, torch.float64)]:
            for bidirectional in (False, True):
                module = nn.GRU(*args, bidirectional=bidirectional).to(dtype)
                what = f"initial_hidden_state(nn.GRU{args} bidirectional={bidirectional} {dtype}, {batch_size})"
                check_initial_state(initial_hidden_state, module, batch_size, args[0], what)
