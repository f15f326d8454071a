"""The trusted checker's parts, without a kernel: the plain-data codec, the agent served from a plain Python process
(as the kernel serves it), and the stubs checks call. A full grading run is in test_grading_forgery.py."""

import ast
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
from torch import nn

from course.lessons import REPO
from grading.toolkit import remote
from grading.toolkit.agent import gru_course_codec as codec

sys.path.insert(0, str(REPO / "tools"))
import course_checks  # noqa: E402

LEARNER = textwrap.dedent('''
    import threading, time
    import torch
    from torch import nn

    def add(a, b):
        return a + b

    def shapes(n):
        return (n, 2), torch.Size([n]), {"k": [1.5, None, b"x"]}, float("nan")

    def rollout(gru, x, steps):
        h, outs = None, []
        for _ in range(steps):
            y, h = gru(x, h)
            outs.append(y)
        return torch.stack(outs)

    def rerun(gru, x, steps):
        return [gru.forward(x) for _ in range(steps)][-1][0]

    def bypass(gru, x):
        return nn.GRU.forward(gru, x)[0]  # around the stand-in: its weights are NaN placeholders

    def train(model, opt):
        opt.zero_grad()
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        return 0.5

    def accumulate(model):
        model(torch.ones(1, 3)).sum().backward()

    def scale_in_place(t):
        t.mul_(2)

    class Model(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.lin = nn.Linear(n, 2)

        def forward(self, x):
            return self.lin(x)

    class Liar:
        def __eq__(self, other):
            return True

    class LyingTensor(torch.Tensor):
        def __eq__(self, other):
            return True

    def liar():
        return Liar()

    def lying_tensor():
        return torch.zeros(3).as_subclass(LyingTensor)

    def boom(x):
        raise ValueError(f"bad {x}")

    class MissingWord(KeyError):
        pass

    def lookup(word):
        raise MissingWord(word)

    def sleepy(seconds):
        time.sleep(seconds)

    def cell_class(x, h, cell):
        return cell(x, h)

    def cell_jit(x, h, cell):
        unit = torch.jit.CompilationUnit("def f(x, h, a, b, c, d):\\n    return torch.gru_cell(x, h, a, b, c, d)\\n")
        return unit.f(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)

    def cell_no_torch_function(x, h, cell):
        with torch._C.DisableTorchFunction():
            return torch.gru_cell(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)

    def cell_thread(x, h, cell):
        out = []
        worker = threading.Thread(target=lambda: out.append(cell(x, h)))
        worker.start()
        worker.join()
        return out[0]

    def cell_stops_profiler(x, h, cell):
        try:
            torch._C._autograd._disable_profiler()
        except Exception:
            pass
        return cell(x, h)

    def cell_by_hand(x, h, cell):
        return torch.tanh(x @ cell.weight_ih[:4].T)

    def weights_detached(gru):  # views of the GRU's weights, not copies
        return {"first_rows": gru.weight_ih_l0.detach()[:2], "bias": gru.bias_hh_l0.detach(),
                "transposed": gru.weight_hh_l0.detach().T, "copy": gru.bias_ih_l0.detach().clone()}

    def weight_itself(gru):
        return gru.weight_ih_l0

    def every_other(x):
        return x[::2]

    def state(model):
        return model.state_dict()
''')


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A Session with an agent in a separate Python process (as in a kernel, minus the sandbox)."""
    listener = remote.Listener(tmp_path_factory.mktemp("sockets"))
    process = subprocess.Popen([sys.executable, "-c", LEARNER + "\n" + listener.serve_code()],
                               cwd=REPO / "solutions" / "00-orientation")
    deadline = time.monotonic() + 120
    connection = listener.accept(deadline)
    yield remote.Session(connection, deadline, {})
    connection.close()
    listener.close()
    process.wait(30)


def test_plain_data_comes_back_as_copies(session):
    assert session.answer("add")(2, 3) == 5
    pair, size, mapping, nan = session.answer("shapes")(3)
    assert pair == (3, 2) and type(size) is torch.Size and mapping == {"k": [1.5, None, b"x"]} and nan != nan
    assert torch.equal(session.answer("add")(torch.ones(2), torch.ones(2)), torch.full((2,), 2.0))


def test_what_is_not_plain_data_stays_in_the_kernel(session):
    liar = session.answer("liar")()
    assert isinstance(liar, remote.RemoteObject) and course_checks.type_name(liar) == "Liar"
    with pytest.raises(course_checks.CheckFailed, match="expected tuple, got Liar"):
        course_checks.check_type(liar, tuple, "the answer")
    lying = session.answer("lying_tensor")()  # a tensor subclass arrives as a plain tensor of its real values
    assert type(lying) is torch.Tensor
    with pytest.raises(course_checks.CheckFailed):
        course_checks.check_tensor(lying, torch.ones(3), "the answer")


def test_a_learners_module_is_used_remotely(session):
    model = session.answer("Model")(3)
    assert course_checks.is_module(model) and course_checks.type_name(model) == "Model"
    model.load_state_dict({"lin.weight": torch.zeros(2, 3), "lin.bias": torch.ones(2)})
    assert torch.equal(model(torch.ones(1, 3)), torch.ones(1, 2))
    assert torch.equal(course_checks.parameters_of(model)["lin.bias"], torch.ones(2))
    assert model.training is True


def test_arguments_come_back_with_what_the_answer_did_to_them(session):
    torch.manual_seed(0)
    lin = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(lin.parameters(), lr=0.1)
    before = lin.weight.detach().clone()
    assert session.answer("train")(lin, optimizer) == 0.5
    assert torch.allclose(lin.weight, before - 0.1) and torch.equal(lin.weight.grad, torch.ones(1, 3))
    lin.weight.grad = torch.full((1, 3), 5.0)  # a gradient left over: an answer without zero_grad would add to it
    session.answer("accumulate")(lin)
    assert torch.equal(lin.weight.grad, torch.full((1, 3), 6.0))
    t = torch.ones(2)
    session.answer("scale_in_place")(t)
    assert torch.equal(t, torch.full((2,), 2.0))


def test_a_view_of_an_argument_comes_back_as_the_same_view_of_the_checks_object(session):
    """As in the notebook: a result that shares memory with an argument changes when the check changes the argument
    (a check that the values are copies fails an answer that returns views)."""
    gru = nn.GRU(3, 2)
    parts = session.answer("weights_detached")(gru)
    with torch.no_grad():
        for parameter in gru.parameters():
            parameter.add_(1.0)
    assert torch.equal(parts["first_rows"], gru.weight_ih_l0[:2]) and not parts["first_rows"].requires_grad
    assert torch.equal(parts["bias"], gru.bias_hh_l0) and torch.equal(parts["transposed"], gru.weight_hh_l0.T)
    assert parts["transposed"].stride() == gru.weight_hh_l0.T.stride()
    assert torch.equal(parts["copy"] + 1, gru.bias_ih_l0)  # a real copy stays a copy
    assert session.answer("weight_itself")(gru) is gru.weight_ih_l0
    x = torch.arange(6.0)
    view = session.answer("every_other")(x)
    x.mul_(10)
    assert torch.equal(view, torch.tensor([0.0, 20.0, 40.0]))


def test_a_state_dict_comes_back_as_an_ordered_dict(session):
    lin = nn.Linear(2, 1)
    state = session.answer("state")(lin)
    assert type(state).__name__ == "OrderedDict" and list(state) == ["weight", "bias"]
    assert torch.equal(state["weight"], lin.weight.detach())


def test_a_view_reference_that_does_not_fit_gives_the_values_alone():
    base, copy = torch.arange(6.0), torch.zeros(2)
    for reference in [{"argument": 0, "name": None, "shape": [2], "strides": [1], "offset": 5},  # past the end
                      {"argument": 3, "name": None, "shape": [2], "strides": [1], "offset": 0},
                      {"argument": 0, "name": None, "shape": [2], "strides": [-1], "offset": 2},
                      {"argument": 0, "name": "weight", "shape": [2], "strides": [1], "offset": 0},
                      {"argument": 0, "name": None, "shape": [3], "strides": [1], "offset": 0},
                      {"argument": 0, "name": None, "shape": "2", "strides": [1], "offset": 0}]:
        assert remote._view_of_argument([base], reference, copy) is copy, reference
    view = remote._view_of_argument([base], {"argument": 0, "name": None, "shape": [2], "strides": [2], "offset": 1},
                                    copy)
    assert torch.equal(view, torch.tensor([1.0, 3.0])) and view.data_ptr() == base.data_ptr() + 4


def test_calls_of_a_counted_module_are_counted_by_the_grader(session):
    gru = course_checks.CountCalls(nn.GRU(3, 4))
    assert session.answer("rollout")(gru, torch.randn(1, 3), 5).shape == (5, 1, 4) and gru.calls == 5
    gru = course_checks.CountCalls(nn.GRU(3, 4))
    session.answer("rerun")(gru, torch.randn(2, 3), 3)
    assert gru.calls == 3
    gru = course_checks.CountCalls(nn.GRU(3, 4))
    with pytest.raises(remote.LearnerError):  # the stand-in cannot compute: it holds no weights
        session.answer("bypass")(gru, torch.randn(2, 3))
    assert gru.calls == 0


def test_errors_in_the_learners_code_keep_their_name_and_message(session):
    with pytest.raises(remote.LearnerError) as raised:
        session.answer("boom")(4)
    assert type(raised.value).__name__ == "ValueError" and str(raised.value) == "bad 4"
    assert isinstance(raised.value, ValueError)  # a check's `except ValueError` catches it, as in the notebook
    with pytest.raises(KeyError) as raised:
        session.answer("lookup")("gru")
    assert type(raised.value).__name__ == "MissingWord" and isinstance(raised.value, remote.LearnerError)
    both = remote.LearnerError.named("Odd", "no", ["Odd", "ValueError", "KeyError", "LookupError", "Exception"])
    assert isinstance(both, ValueError) and isinstance(both, KeyError)  # every built-in class it has, as in Python
    own = remote.LearnerError.named("Oops", "no", ["Oops", "object"])  # no built-in among its classes
    assert type(own).__bases__ == (remote.LearnerError,) and not isinstance(own, (ValueError, KeyError))
    odd = remote.LearnerError.named("UnicodeDecodeError", "bad byte", ["UnicodeDecodeError", "UnicodeError"])
    assert type(odd).__name__ == "UnicodeDecodeError" and str(odd) == "bad byte"
    with pytest.raises(course_checks.CheckFailed, match="while checking boom: ValueError: bad 4"):
        with course_checks.while_checking("boom"):
            session.answer("boom")(4)
    with pytest.raises(remote.LearnerError, match="not defined"):
        session.answer("missing")(1)


@pytest.mark.parametrize("route", ["cell_class", "cell_jit", "cell_no_torch_function", "cell_thread"])
def test_a_forbidden_operator_is_seen_whatever_the_route(session, route):
    cell = nn.GRUCell(3, 4)
    answer = session.answer(route, course_checks.GRU_OPERATORS, "Exercise 1.2")
    with pytest.raises(course_checks.CheckFailed, match=r"aten::gru_cell.*Exercise 1.2 forbids"):
        answer(torch.randn(2, 3), torch.randn(2, 4), cell)


def test_stopping_the_profiler_costs_the_check_and_honest_code_passes(session):
    cell = nn.GRUCell(3, 4)
    args = torch.randn(2, 3), torch.randn(2, 4), cell
    with pytest.raises(course_checks.CheckFailed, match="could not be watched|profiler"):
        session.answer("cell_stops_profiler", course_checks.GRU_OPERATORS, "Exercise 1.2")(*args)
    honest = session.answer("cell_by_hand", course_checks.GRU_OPERATORS, "Exercise 1.2")(*args)
    assert honest.shape == (2, 4)


def test_the_check_stops_at_its_deadline(tmp_path):
    listener = remote.Listener(tmp_path)
    process = subprocess.Popen([sys.executable, "-c", LEARNER + "\n" + listener.serve_code()],
                               cwd=REPO / "solutions" / "00-orientation")
    connection = listener.accept(time.monotonic() + 120)
    started = time.monotonic()
    with pytest.raises(remote.CheckerLost, match="time limit"):
        remote.Session(connection, time.monotonic() + 2, {}).answer("sleepy")(30)
    assert time.monotonic() - started < 10
    connection.close()
    listener.close()
    process.kill()


def test_the_codec_builds_only_plain_data_and_checks_every_size():
    tree, blobs = codec.encode({"t": torch.arange(6.0).reshape(2, 3), "i": 2**80, "e": torch.empty(0, 2)},
                               lambda obj: {"handle": 0})
    value = codec.decode(tree, blobs, lambda t: "handle")
    assert value["i"] == 2**80 and torch.equal(value["t"], torch.arange(6.0).reshape(2, 3))
    bad = [({"tensor": 0, "dtype": "float32", "shape": [4]}, [b"\0" * 8]),  # 4 floats need 16 bytes
           ({"tensor": 0, "dtype": "object", "shape": [1]}, [b"\0" * 8]),
           ({"pickle": "cos\nsystem\n"}, []),
           ({"tensor": 5, "dtype": "float32", "shape": [1]}, [b"\0" * 4]),
           ({"dict": [[{"list": []}, 1]]}, []),
           ({"int": "9" * 6000}, [])]
    for tree, blobs in bad:
        with pytest.raises(codec.DecodeError):
            codec.decode(tree, blobs, lambda t: "handle")
    deep = None
    for _ in range(200):
        deep = {"list": [deep]}
    with pytest.raises(codec.DecodeError):
        codec.decode(deep, [], lambda t: "handle")


def test_a_message_over_the_size_limit_is_refused_before_it_is_read():
    left, right = socket.socketpair()
    with left, right:
        threading.Thread(target=lambda: left.sendall((codec.MAX_HEADER + 1).to_bytes(8, "big")), daemon=True).start()
        with pytest.raises(codec.DecodeError, match="limit"):
            codec.receive(right)


def test_the_grading_toolkit_has_no_import_cycles():
    """Modules of grading/toolkit import each other without a cycle (at module level or inside functions)."""
    folder = REPO / "grading" / "toolkit"
    names = {p.stem: p for p in folder.glob("*.py") if p.stem != "__main__"}
    graph = {}
    for name, path in names.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grading.toolkit"):
                parts = node.module.split(".")
                imported |= {parts[2]} if len(parts) > 2 else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name.split(".")[2] for a in node.names if a.name.startswith("grading.toolkit.")}
        graph[name] = {m for m in imported if m in names and m != name}

    def cycle_from(start, path):
        for nxt in graph[start]:
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            found = cycle_from(nxt, path + [nxt])
            if found:
                return found
        return None

    cycles = [c for c in (cycle_from(n, [n]) for n in graph) if c]
    assert not cycles, f"import cycles in grading/toolkit: {cycles[0]}"
