"""The grader's agent inside a learner's kernel: it calls the learner's answers for checks that run in the grader.

For each check cell, the grader (``grading/toolkit/remote.py``) has the kernel run ``serve(socket_path, token)``.
The agent connects to the grader and answers its requests until the grader closes the connection:

- ``lookup``: the learner's name (an answer), as a handle;
- ``call``: call a handle (or one of its methods) with arguments the grader pickled (the grader's data: trusted
  here), and send back the result and the state of every tensor, module and optimizer argument, as plain data;
  with ``watch``, also the PyTorch operators the call reached (``course_checks.call_watching_operators``);
- ``getattr`` and ``query``: an attribute, the type, or the parameters of a handle.

Results cross as plain data (``gru_course_codec``); the grader decodes them without running code. Objects the grader
must observe reach the learner's code as ``ModuleProxy`` stand-ins whose every call is sent to the grader.
Nothing here decides a score: the grader judges what comes back.
"""

import builtins as _builtins
import io
import pickle
import socket
import sys

import gru_course_codec as codec
import torch

# The built-ins this module relies on, bound as it loads: a learner's code that patches builtins later changes
# nothing here.
isinstance = _builtins.isinstance  # noqa: A001
issubclass = _builtins.issubclass  # noqa: A001
type = _builtins.type  # noqa: A001
len = _builtins.len  # noqa: A001
repr = _builtins.repr  # noqa: A001
getattr = _builtins.getattr  # noqa: A001
str = _builtins.str  # noqa: A001


_connection = None  # the socket of the request being served (a proxy call goes back through it)


class _Handles:
    """Objects of the learner's kernel that the grader refers to by number (for one check)."""

    def __init__(self):
        self.objects = []

    def add(self, obj):
        self.objects.append(obj)
        return len(self.objects) - 1

    def get(self, number):
        if type(number) is not int or not 0 <= number < len(self.objects):
            raise LookupError(f"no object {number!r}")
        return self.objects[number]

    def tree(self, obj):
        try:
            shown = repr(obj)[:200]
        except Exception:
            shown = f"<{type(obj).__name__} object>"
        return {"handle": self.add(obj), "type": type(obj).__qualname__, "module": type(obj).__module__,
                "is_module": issubclass(type(obj), torch.nn.Module), "repr": shown}


class ModuleProxy(torch.nn.Module):
    """A module of the grader's (a ``CountCalls``): its attributes are copies, its parameters NaN placeholders of the
    right shapes and dtypes, and every call runs in the grader, which counts it."""

    def __init__(self, number, attributes, parameters):
        super().__init__()
        self._course_proxy = number
        for name, value in attributes.items():
            object.__setattr__(self, name, value)
        for name, (shape, dtype) in parameters.items():
            placeholder = torch.full(shape, float("nan"), dtype=getattr(torch, dtype))
            self.register_parameter(name.replace(".", "_"), torch.nn.Parameter(placeholder, requires_grad=False))

    def forward(self, *args, **kwargs):
        tree, blobs = codec.encode([list(args), kwargs], _no_handles)
        codec.send(_connection, {"op": "proxy_call", "proxy": self._course_proxy, "args": tree}, blobs)
        header, blobs = codec.receive(_connection)
        if header.get("op") == "proxy_error":
            raise RuntimeError(str(header.get("message", "the call failed in the grader")))
        return pickle.loads(blobs[0])


def _no_handles(obj):
    raise TypeError(f"a {type(obj).__name__} cannot be passed to a module of the grader's (tensors only)")


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, handles):
        super().__init__(io.BytesIO(data))
        self.handles = handles

    def persistent_load(self, pid):
        kind, *rest = pid
        if kind == "handle":
            return self.handles.get(rest[0])
        if kind == "proxy":
            number, attributes, parameters = rest
            return ModuleProxy(number, attributes, parameters)
        raise pickle.UnpicklingError(f"unknown reference {kind!r}")


def _namespace():
    try:
        return get_ipython().user_ns  # noqa: F821 (defined in an IPython kernel)
    except NameError:
        return sys.modules["__main__"].__dict__


def _state(value):
    """What the grader copies back into its own object after a call."""
    if isinstance(value, ModuleProxy):
        return None
    if isinstance(value, torch.Tensor):
        return {"tensor": value}
    if isinstance(value, torch.nn.Module):
        return {"module": dict(value.state_dict()), "training": value.training,
                "grads": {n: p.grad for n, p in value.named_parameters()}}
    if isinstance(value, torch.optim.Optimizer):
        return {"optimizer": value.state_dict()}
    return None


def _call(header, blobs, handles):
    target = handles.get(header.get("target"))
    if header.get("method"):
        target = getattr(target, header["method"])
    args, kwargs, grads = _Unpickler(blobs[0], handles).load()
    for value, module_grads in zip(codec.arguments_in_order(args, kwargs), grads, strict=False):
        if module_grads and isinstance(value, torch.nn.Module):
            for name, parameter in value.named_parameters():
                parameter.grad = module_grads.get(name)
    if header.get("watch"):
        import course_checks

        try:
            result, operators = course_checks.call_watching_operators(target, args, kwargs, header.get("marker", "x"))
        except course_checks.OperatorsUnseen:  # the learner's code stopped the profiler: the grader fails the check
            return {"value": None, "synced": []}, None, None
        operators = sorted(set(operators))
    else:
        result, operators = target(*args, **kwargs), None
    synced = [_state(value) for value in codec.arguments_in_order(args, kwargs)]
    return {"value": result, "synced": synced}, operators, _alias_finder(args, kwargs)


def _alias_finder(args, kwargs):
    """``alias_of(tensor)`` for encoding a call's result: where the tensor lies in one of the call's tensor arguments
    or its module arguments' parameters and buffers, if it is a view of one ({"argument": index in
    ``codec.arguments_in_order``, "name": parameter name or None, "shape", "strides", "offset", "itself"}), else
    None."""
    bases = {}
    for index, value in enumerate(codec.arguments_in_order(args, kwargs)):
        if isinstance(value, ModuleProxy):
            continue
        if isinstance(value, torch.Tensor):
            named = [(None, value)]
        elif isinstance(value, torch.nn.Module):
            named = [*value.named_parameters(), *value.named_buffers()]
        else:
            continue
        for name, tensor in named:
            address = _storage_address(tensor)
            if address:
                bases.setdefault(address, []).append((index, name, tensor))

    def alias_of(tensor):
        for index, name, base in bases.get(_storage_address(tensor), ()):
            place = _place_in(tensor, base)
            if place is not None:
                return dict(place, argument=index, name=name)
        return None

    return alias_of if bases else None


def _storage_address(tensor):
    try:
        return torch.Tensor.untyped_storage(tensor).data_ptr()
    except Exception:
        return 0


def _place_in(tensor, base):
    """Where `tensor` lies within the contiguous `base` (same storage): shape, strides and offset, or None."""
    if tensor.dtype != base.dtype or tensor.device != base.device or not base.is_contiguous():
        return None
    offset = tensor.storage_offset() - base.storage_offset()
    strides = list(tensor.stride())
    if not codec.view_fits(tensor.shape, strides, offset, base.numel()):
        return None
    return {"shape": list(tensor.shape), "strides": strides, "offset": offset, "itself": tensor is base}


def _answer(header, blobs, handles):
    op = header.get("op")
    if op == "lookup":
        name = header.get("name")
        namespace = _namespace()
        if name not in namespace:
            raise NameError(f"name {name!r} is not defined")
        return namespace[name], {}, None
    if op == "call":
        value, operators, alias_of = _call(header, blobs, handles)
        return value, {"operators": operators}, alias_of
    if op == "getattr":
        return getattr(handles.get(header.get("target")), str(header.get("name"))), {}, None
    if op == "query":
        obj, what = handles.get(header.get("target")), header.get("what")
        if what == "named_parameters":
            return {n: p.detach() for n, p in obj.named_parameters()}, {}, None
        if what == "named_gradients":
            return {n: p.grad for n, p in obj.named_parameters()}, {}, None
        raise ValueError(f"unknown query {what!r}")
    raise ValueError(f"unknown request {op!r}")


def _error(error):
    try:
        message = str(error)[:4000]
    except Exception:
        message = "(the error's message could not be read)"
    return {"op": "error", "type": type(error).__name__, "message": message,
            "types": [t.__name__ for t in type(error).__mro__][:20]}


def _encode_reply(value, handles, alias_of):
    """(tree, blobs) of a reply's value. A call's result marks the views of the call's arguments (``alias_of``); the
    arguments' own states, sent beside it, are copies."""
    if alias_of is None:
        return codec.encode(value, handles.tree)
    result, blobs = codec.encode(value["value"], handles.tree, alias_of=alias_of)
    synced, blobs = codec.encode(value["synced"], handles.tree, blobs)
    return {"dict": [["value", result], ["synced", synced]]}, blobs


def serve(path, token):
    """Answer the grader's requests on the Unix socket `path` until it closes the connection."""
    global _connection
    handles = _Handles()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(path)
        _connection = connection
        codec.send(connection, {"op": "hello", "token": token})
        while True:
            try:
                header, blobs = codec.receive(connection)
            except (EOFError, OSError):
                break
            if header.get("op") == "done":
                break
            try:
                value, extra, alias_of = _answer(header, blobs, handles)
                tree, out = _encode_reply(value, handles, alias_of)
                reply = {"op": "result", "value": tree, **extra}
            except BaseException as error:  # KeyboardInterrupt too: the grader's time limit interrupted the call
                reply, out = _error(error), []
            try:
                codec.send(connection, reply, out)
            except OSError:
                break
        _connection = None
