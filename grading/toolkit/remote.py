"""The grader's side of a check: the learner's answers as stubs that call into the sandboxed kernel.

A check (``course_checks.exercise``) runs here, in the grader's process. ``Session.answer(name)`` gives it a
``RemoteFunction`` to call in place of the learner's function: each call sends the arguments to the kernel's agent
(``agent/gru_course_agent.py``) as a pickle (the grader's own data), and the result comes back as plain data that
``gru_course_codec.decode`` builds without running code. What is not plain data stays in the kernel and comes back
as a ``RemoteObject`` (call it, call its methods, read its attributes). After every call, the tensors, modules and
optimizers the check passed are updated with their state in the kernel, so a check sees an answer's effects on
them. A ``CountCalls`` the check passes reaches the kernel as a stand-in whose calls run here: its count is the
grader's. An answer watched for forbidden operators reports the operators its call reached at PyTorch's dispatcher.
"""

import builtins
import io
import pickle
import secrets
import socket
import sys
import time
from pathlib import Path

import torch

from grading.toolkit.agent import AGENT_DIR

if str(AGENT_DIR) not in sys.path:
    sys.path.append(str(AGENT_DIR))
import gru_course_codec as codec  # noqa: E402

SERVE_CODE = ("import sys\nif {folder!r} not in sys.path:\n    sys.path.insert(0, {folder!r})\n"
              "import gru_course_agent\ngru_course_agent.serve({path!r}, {token!r})")


class LearnerError(Exception):
    """The learner's code raised ``kind`` (an error in the kernel, reported by name and message)."""

    def __init__(self, kind, message, kinds=()):
        super().__init__(message)
        self.kind, self.message, self.kinds = kind, message, tuple(kinds)

    @classmethod
    def named(cls, kind, message, kinds=()):
        """An instance of a subclass named like the learner's error, so that messages read "ValueError: ...", and
        that is also an instance of every built-in exception among its classes (`kinds`, most specific first), so
        that a check's ``except ValueError`` catches it as it does in the notebook."""
        bases = _builtin_bases(kinds)
        try:
            return _named_error(kind, bases)(kind, message, kinds)
        except TypeError:  # built-ins that cannot be combined, or that need other arguments: the name alone
            return _named_error(kind, ())(kind, message, kinds)

    def __str__(self):
        return self.message


_ERROR_CLASSES = {}


def _named_error(kind, builtins_too):
    """A LearnerError subclass named like the learner's error, and a subclass of the built-in exceptions given."""
    name = kind if kind.isidentifier() else "Error"
    key = (name, builtins_too)
    if key not in _ERROR_CLASSES:
        _ERROR_CLASSES[key] = type(name, (LearnerError, *builtins_too), {"__module__": "learner"})
    return _ERROR_CLASSES[key]


def _builtin_bases(kinds):
    """The built-in Exceptions named in `kinds` (class names, most specific first) that no earlier one derives from,
    leaving out Exception itself and a generator's stop signals."""
    bases = []
    for name in kinds:
        found = getattr(builtins, name, None) if type(name) is str and name.isidentifier() else None
        if isinstance(found, type) and issubclass(found, Exception) and found is not Exception \
                and found not in (StopIteration, StopAsyncIteration) and not any(issubclass(b, found) for b in bases):
            bases.append(found)
    return tuple(bases)


class CheckerLost(Exception):
    """The kernel stopped answering (it died, ran out of time, or broke the protocol)."""


class Session:
    """One check's connection to the agent in the kernel."""

    def __init__(self, sock, deadline, proxies):
        self.sock, self.deadline, self.proxies = sock, deadline, proxies
        self.answers = {}

    # --- messages -----------------------------------------------------------------------------------------------

    def _receive(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CheckerLost("the check ran past the cell's time limit")
        self.sock.settimeout(left)
        try:
            return codec.receive(self.sock)
        except TimeoutError:
            raise CheckerLost("the check ran past the cell's time limit") from None
        except (EOFError, OSError, ValueError) as error:
            raise CheckerLost(f"the kernel stopped answering ({error})") from None

    def request(self, header, blobs=(), arguments=()):
        """Send a request; serve the stand-ins' calls until the answer comes; return the decoded value. A result
        that is a view of one of `arguments` (the call's, in ``codec.arguments_in_order``) becomes the same view of the
        check's own object."""
        try:
            codec.send(self.sock, header, blobs)
        except OSError as error:
            raise CheckerLost(f"the kernel stopped answering ({error})") from None
        while True:
            reply, data = self._receive()
            op = reply.get("op")
            if op == "proxy_call":
                self._serve_proxy(reply, data)
                continue
            if op == "error":
                raise LearnerError.named(str(reply.get("type", "Error"))[:80], str(reply.get("message", ""))[:4000],
                                         [str(k)[:80] for k in reply.get("types", [])][:20])
            if op != "result":
                raise CheckerLost(f"the kernel answered {op!r:.40}")
            try:
                make_alias = (lambda reference, copy: _view_of_argument(arguments, reference, copy)) if arguments \
                    else None
                return codec.decode(reply.get("value"), data, self._handle, make_alias=make_alias), reply
            except (codec.DecodeError, RecursionError) as error:
                raise CheckerLost(f"the kernel sent malformed data ({error})") from None

    def _serve_proxy(self, reply, data):
        module = self.proxies.get(reply.get("proxy"))
        try:
            args, kwargs = codec.decode(reply.get("args"), data, _refuse_handle)
            if module is None or type(args) is not list or type(kwargs) is not dict:
                raise ValueError("a call the grader did not expect")
            with torch.no_grad():
                result = module(*args, **{str(k): v for k, v in kwargs.items()})
            codec.send(self.sock, {"op": "proxy_result"}, [pickle.dumps(result)])
        except Exception as error:
            codec.send(self.sock, {"op": "proxy_error", "message": f"{type(error).__name__}: {error}"[:2000]})

    def _handle(self, tree):
        return RemoteObject(self, tree)

    # --- what checks use ------------------------------------------------------------------------------------------

    def answer(self, name, forbidden=None, exercise=""):
        """The stub for the learner's answer `name` (looked up in the kernel when first called)."""
        return RemoteFunction(self, name, forbidden or {}, exercise)

    def lookup(self, name):
        value, _ = self.request({"op": "lookup", "name": name})
        return value

    def call(self, target, method, args, kwargs, watch=False):
        """Call handle `target` (or its `method`) in the kernel: (result, operators reached or None)."""
        originals = list(codec.arguments_in_order(args, kwargs))
        payload = _pickle_arguments(args, kwargs, self.proxies)
        marker = f"course-checks-{secrets.token_hex(8)}"
        value, reply = self.request({"op": "call", "target": target, "method": method, "watch": watch,
                                     "marker": marker}, [payload], originals)
        if type(value) is not dict or "value" not in value:
            raise CheckerLost("the kernel answered a call without its result")
        _copy_back(originals, value.get("synced"))
        return value["value"], reply.get("operators")


class RemoteFunction:
    """A learner's function, called in the kernel. With `forbidden` ({operator: name}), a call that reaches one of
    those operators raises CheckFailed (and so does a call whose operators could not be watched)."""

    def __init__(self, session, name, forbidden, exercise):
        self.session, self.__name__, self.forbidden, self.exercise = session, name, forbidden, exercise
        self._target = None

    def __call__(self, *args, **kwargs):
        from course_checks import CheckFailed, forbidden_message

        if self._target is None:
            found = self.session.lookup(self.__name__)
            if not isinstance(found, RemoteObject):
                raise TypeError(f"{self.__name__} is a {type(found).__name__}, not a function")
            self._target = found
        result, operators = self.session.call(self._target.number, None, args, kwargs, watch=bool(self.forbidden))
        if self.forbidden:
            if operators is None or type(operators) is not list:
                raise CheckFailed(f"{self.__name__}: the operators it called could not be watched; {self.exercise} "
                                  f"watches which PyTorch operators the answer calls, so it cannot be checked")
            for name in operators:
                if name in self.forbidden:
                    raise CheckFailed(forbidden_message(self.__name__, self.exercise, name, self.forbidden[name]))
        return result

    def __repr__(self):
        return f"<the learner's {self.__name__}>"


class RemoteObject:
    """An object that lives in the learner's kernel: call it, call its methods, read its attributes."""

    def __init__(self, session, tree):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_tree", tree)

    @property
    def number(self):
        return self._tree.get("handle")

    def _course_remote_query(self, what):
        """course_checks' helpers ask here: type_name, is_module, named_parameters, named_gradients."""
        if what == "type_name":
            return str(self._tree.get("type", "object"))[:100]
        if what == "is_module":
            return self._tree.get("is_module") is True
        value, _ = self._session.request({"op": "query", "target": self.number, "what": what})
        return value

    def __call__(self, *args, **kwargs):
        return self._session.call(self.number, None, args, kwargs)[0]

    def __getattr__(self, name):
        """The attribute, read in the kernel: plain data, or another remote object (a method, to call)."""
        if name.startswith("__"):
            raise AttributeError(name)
        value, _ = self._session.request({"op": "getattr", "target": self.number, "name": name})
        return value

    def __setattr__(self, name, value):
        raise TypeError("a check cannot set attributes of the learner's objects")

    def __repr__(self):
        return f"<the learner's {self._tree.get('type', 'object')!s:.60}: {self._tree.get('repr', '')!s:.100}>"


def _refuse_handle(tree):
    raise codec.DecodeError("a stand-in was called with an object that is not plain data")


# --- arguments: pickled for the kernel, copied back after the call ----------------------------------------------

class _Pickler(pickle.Pickler):
    def __init__(self, file, proxies):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.proxies = proxies

    def persistent_id(self, obj):
        from course_checks import CountCalls

        if isinstance(obj, RemoteObject):
            return ("handle", obj.number)
        if isinstance(obj, CountCalls):
            number = len(self.proxies)
            self.proxies[number] = obj
            wrapped = obj.module
            attributes = {k: v for k, v in vars(wrapped).items()
                          if not k.startswith("_") and type(v) in (bool, int, float, str, tuple, type(None))}
            parameters = {n: (list(p.shape), str(p.dtype).removeprefix("torch."))
                          for n, p in wrapped.named_parameters()}
            return ("proxy", number, attributes, parameters)
        return None


def _pickle_arguments(args, kwargs, proxies):
    """The arguments for the kernel, with the gradients of every module's parameters (pickling drops ``.grad``)."""
    grads = [{n: p.grad for n, p in value.named_parameters()} if isinstance(value, torch.nn.Module) else None
             for value in codec.arguments_in_order(args, kwargs)]
    buffer = io.BytesIO()
    _Pickler(buffer, proxies).dump((args, kwargs, grads))
    return buffer.getvalue()


def _copy_back(originals, states):
    """Put the kernel's state of each argument into the check's own object (tensors, modules, optimizers)."""
    if type(states) is not list or len(states) != len(originals):
        return
    from course_checks import CountCalls

    for original, state in zip(originals, states, strict=True):
        if type(state) is not dict or isinstance(original, CountCalls):
            continue
        try:
            if isinstance(original, torch.Tensor) and type(state.get("tensor")) is torch.Tensor:
                _copy_tensor(original, state["tensor"])
            elif isinstance(original, torch.nn.Module) and type(state.get("module")) is dict:
                _copy_module(original, state)
            elif isinstance(original, torch.optim.Optimizer) and type(state.get("optimizer")) is dict:
                original.load_state_dict(state["optimizer"])
        except Exception:  # a state that does not fit: the check sees its object as it was
            continue


def _view_of_argument(arguments, reference, copy):
    """The check's own tensor for a result that was a view of a call's argument in the kernel: the same view of the
    check's object (or that object itself), so that the check sees what changing the argument does to the result, as
    in the notebook. The copy of its values where the reference does not fit the check's object."""
    try:
        index, name = reference.get("argument"), reference.get("name")
        shape, strides, offset = reference.get("shape"), reference.get("strides"), reference.get("offset")
        if type(index) is not int or not 0 <= index < len(arguments):
            return copy
        if not all(type(n) is int and n >= 0 for n in [offset, *shape, *strides]) or len(shape) != len(strides):
            return copy
        base = _tensor_of(arguments[index], name)
        if base is None or base.dtype != copy.dtype or not base.is_contiguous() or list(copy.shape) != shape:
            return copy
        if not codec.view_fits(shape, strides, offset, base.numel()):
            return copy
        if reference.get("itself") is True and shape == list(base.shape) and strides == list(base.stride()) \
                and offset == 0:
            return base
        view = base.as_strided(shape, strides, base.storage_offset() + offset)
        return view if copy.requires_grad else view.detach()
    except Exception:  # a malformed reference: the values alone
        return copy


def _tensor_of(argument, name):
    """The argument itself (name None), or its parameter or buffer `name`; None for anything else."""
    from course_checks import CountCalls

    if name is None:
        return argument if isinstance(argument, torch.Tensor) else None
    if not isinstance(argument, torch.nn.Module) or isinstance(argument, CountCalls) or type(name) is not str:
        return None
    found = dict(argument.named_parameters()).get(name)
    if found is None:
        found = dict(argument.named_buffers()).get(name)
    return found if isinstance(found, torch.Tensor) else None


def _copy_tensor(original, new):
    with torch.no_grad():
        if original.shape == new.shape and original.dtype == new.dtype:
            original.copy_(new)
        else:
            original.data = new.to(original.device)


def _copy_module(original, state):
    own = original.state_dict()
    fitting = {k: v for k, v in state["module"].items()
               if k in own and type(v) is torch.Tensor and v.shape == own[k].shape}
    original.load_state_dict(fitting, strict=False)
    original.train(state.get("training") is True)
    grads = state.get("grads") if type(state.get("grads")) is dict else {}
    for name, parameter in original.named_parameters():
        grad = grads.get(name)
        parameter.grad = grad.to(parameter.dtype) if type(grad) is torch.Tensor and grad.shape == parameter.shape \
            else None


# --- a check cell, judged here ----------------------------------------------------------------------------------

class Listener:
    """The grader's end of one check: a Unix socket the kernel's agent connects to."""

    def __init__(self, folder):
        self.path = str(Path(folder) / f"checks-{secrets.token_hex(4)}.sock")
        self.token = secrets.token_hex(16)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        Path(self.path).chmod(0o777)  # the kernel may run as another (unprivileged) user
        self.sock.listen(1)

    def serve_code(self):
        """What the kernel runs for the check: the agent, connecting back here."""
        return SERVE_CODE.format(folder=str(AGENT_DIR), path=self.path, token=self.token)

    def accept(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            connection, _ = self.sock.accept()
        except (TimeoutError, OSError):
            raise CheckerLost("the kernel did not start the check (its cell ended without connecting)") from None
        connection.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            hello, _ = codec.receive(connection)
        except (TimeoutError, EOFError, OSError, ValueError) as error:
            connection.close()
            raise CheckerLost(f"the kernel did not start the check ({error})") from None
        if hello.get("op") != "hello" or hello.get("token") != self.token:
            connection.close()
            raise CheckerLost("the kernel did not start the check (a wrong greeting)")
        return connection

    def stop_waiting(self):
        """An ``accept`` still waiting returns at once (with CheckerLost)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        Path(self.path).unlink(missing_ok=True)


def judge(check, connection, deadline):
    """Run `check` against the learner's answers over `connection`: None if it passed, else the message."""
    from course_checks import CheckFailed

    session = Session(connection, deadline, proxies={})
    answers = [session.answer(name, check.forbidden.get(name), check.exercise_name) for name in check.answers]
    try:
        check.run(*answers)
    except CheckFailed as failure:
        return str(failure) or "the check failed"
    except CheckerLost as lost:
        return f"the check could not finish: {lost}"
    except LearnerError as error:
        return f"{error.kind}: {error.message}"
    except Exception as error:  # the check could not use what the answer gave it (a wrong type, usually)
        return f"the check could not use your answer: {type(error).__name__}: {error}"
    return None
