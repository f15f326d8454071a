"""Plain data across the boundary between a learner's kernel and the grader, decoded without running code.

What an answer returns travels from the learner's kernel to the grader as a JSON tree plus raw byte buffers: None,
bools, ints, floats, strings, bytes, lists, tuples, dicts and OrderedDicts, tensors (dtype, shape and bytes), dtypes,
devices, ``torch.Size``, numpy arrays and scalars, and ``PackedSequence``. A tensor that is a view of one of the
call's arguments also carries where it lies in that argument (the grader rebuilds the view on its own object).
Everything else stays in the kernel and crosses as a handle (a number the grader can ask about). ``decode`` builds
only those types, checks every size against the bytes it received, and never unpickles or imports anything the
data names.

This module is imported on both sides: by the agent in the kernel (``encode``) and by the grader (``decode``).
"""

import builtins as _builtins
import json
import struct
from collections import OrderedDict

import torch

# The built-ins this module relies on, bound as it loads: a learner's code that patches builtins later changes
# nothing here.
isinstance = _builtins.isinstance  # noqa: A001
tuple = _builtins.tuple  # noqa: A001
type = _builtins.type  # noqa: A001
len = _builtins.len  # noqa: A001
repr = _builtins.repr  # noqa: A001
getattr = _builtins.getattr  # noqa: A001
float = _builtins.float  # noqa: A001
str = _builtins.str  # noqa: A001
int = _builtins.int  # noqa: A001


MAX_HEADER = 64 * 2**20  # bytes of JSON in one message
MAX_BLOBS = 512 * 2**20  # bytes of tensor data in one message
MAX_DEPTH = 64
DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128, torch.uint8,
    torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)}
NUMPY_DTYPES = ("float16", "float32", "float64", "complex64", "complex128", "uint8", "int8", "int16", "int32",
                "int64", "bool")


class DecodeError(ValueError):
    """The data did not follow the format (a malformed or hostile message)."""


# --- messages: a JSON header and byte buffers, over a stream socket -------------------------------------------

def send(sock, header, blobs=()):
    header = dict(header, blobs=[len(b) for b in blobs])
    data = json.dumps(header, allow_nan=True).encode()
    sock.sendall(struct.pack(">Q", len(data)) + data)
    for blob in blobs:
        sock.sendall(blob)


def _read_exactly(sock, size):
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 2**22))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(sock):
    """(header, blobs) of the next message; sizes are checked before anything is read."""
    (size,) = struct.unpack(">Q", _read_exactly(sock, 8))
    if size > MAX_HEADER:
        raise DecodeError(f"a message header of {size} bytes (the limit is {MAX_HEADER})")
    header = json.loads(_read_exactly(sock, size))
    if not isinstance(header, dict) or not isinstance(header.get("blobs"), list):
        raise DecodeError("a message without a header")
    sizes = header["blobs"]
    if not all(type(n) is int and n >= 0 for n in sizes) or sum(sizes) > MAX_BLOBS:
        raise DecodeError(f"message data of {sum(n for n in sizes if type(n) is int)} bytes (the limit is {MAX_BLOBS})")
    return header, [_read_exactly(sock, n) for n in sizes]


# --- what both sides list the same way -----------------------------------------------------------------------

def arguments_in_order(args, kwargs):
    """Every argument of a call, and every item of a list, tuple or dict argument: the order in which the agent sends
    back their states and the grader copies them into its own objects (and a view of one is referred to by its
    place here)."""
    for value in [*args, *(kwargs[k] for k in sorted(kwargs))]:
        yield value
        if type(value) in (list, tuple):
            yield from value
        elif type(value) is dict:
            yield from value.values()


def view_fits(shape, strides, offset, numel):
    """True when a view (non-negative `strides`, `offset`) reaches no element past the first `numel` of its base."""
    if offset < 0 or any(stride < 0 for stride in strides):
        return False
    sizes = list(shape)
    return 0 in sizes or offset + sum((n - 1) * s for n, s in zip(sizes, strides, strict=True)) < numel


# --- values --------------------------------------------------------------------------------------------------

def encode(value, handle_of, blobs=None, depth=0, alias_of=None):
    """(tree, blobs): `value` as plain data; what is not plain data becomes ``handle_of(obj)`` (a JSON tree). With
    `alias_of`, a tensor for which ``alias_of(tensor)`` returns a reference (a view of a call's argument) is sent as
    that reference and a copy of its values (``decode``'s ``make_alias`` picks one)."""
    out = _Output(handle_of, [] if blobs is None else blobs, alias_of)
    return _encode(value, out, depth), out.blobs


class _Output:
    def __init__(self, handle_of, blobs, alias_of):
        self.handle_of, self.blobs, self.alias_of = handle_of, blobs, alias_of


def _encode(value, out, depth):
    if depth > MAX_DEPTH:
        raise ValueError("the value is nested too deeply")
    kind = type(value)
    blobs = out.blobs
    again = lambda item: _encode(item, out, depth + 1)  # noqa: E731
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        return value if abs(value) < 2**63 else {"int": str(value)}
    if kind is float:
        return {"float": repr(value)} if value != value or value in (float("inf"), float("-inf")) else value
    if kind is bytes:
        blobs.append(value)
        return {"bytes": len(blobs) - 1}
    if kind in (list, tuple):
        return {"list" if kind is list else "tuple": [again(item) for item in value]}
    if kind is dict:
        return {"dict": [[again(k), again(v)] for k, v in value.items()]}
    if kind is OrderedDict:  # what state_dict() returns
        return {"odict": [[again(k), again(v)] for k, v in OrderedDict.items(value)]}
    if kind is torch.Size:
        return {"size": [int(d) for d in value]}
    if kind is torch.dtype and str(value).removeprefix("torch.") in DTYPES:
        return {"dtype": str(value).removeprefix("torch.")}
    if kind is torch.device:
        return {"device": str(value)}
    if isinstance(value, torch.Tensor) and _plain_tensor(value):
        copy = _encode_tensor(value, blobs)
        alias = out.alias_of(value) if out.alias_of is not None else None
        return {"alias": alias, "copy": copy} if type(alias) is dict else copy
    if kind.__name__ == "PackedSequence" and kind.__module__ == "torch.nn.utils.rnn":
        return {"packed": [again(getattr(value, f)) for f in
                           ("data", "batch_sizes", "sorted_indices", "unsorted_indices")]}
    if isinstance(value, tuple) and kind is not torch.Size:  # a namedtuple (what load_state_dict returns): its items
        return {"tuple": [again(item) for item in tuple.__iter__(value)]}
    if kind.__module__ == "numpy":
        encoded = _encode_numpy(value, blobs)
        if encoded is not None:
            return encoded
    return out.handle_of(value)


def _plain_tensor(t):
    return (t.layout == torch.strided and not t.is_quantized and str(t.dtype).removeprefix("torch.") in DTYPES
            and t.device.type != "meta")


def _encode_tensor(t, blobs):
    data = torch.Tensor.detach(t).cpu().resolve_conj().resolve_neg().contiguous()
    raw = data.reshape(-1).view(torch.uint8) if data.numel() else torch.empty(0, dtype=torch.uint8)
    blobs.append(raw.numpy().tobytes())
    return {"tensor": len(blobs) - 1, "dtype": str(data.dtype).removeprefix("torch."), "shape": list(data.shape),
            "requires_grad": bool(t.requires_grad), "device": t.device.type}


def _encode_numpy(value, blobs):
    import numpy

    if isinstance(value, numpy.ndarray) and value.dtype.name in NUMPY_DTYPES:
        blobs.append(numpy.ascontiguousarray(value).tobytes())
        return {"ndarray": len(blobs) - 1, "dtype": value.dtype.name, "shape": list(value.shape)}
    if isinstance(value, numpy.generic) and value.dtype.name in NUMPY_DTYPES:
        blobs.append(value.tobytes())
        return {"npscalar": len(blobs) - 1, "dtype": value.dtype.name}
    return None


def decode(tree, blobs, make_handle, depth=0, make_alias=None):
    """The value that `tree` describes; ``make_handle(tree)`` builds the grader's stand-in for a handle, and
    ``make_alias(reference, copy)`` the grader's tensor for a view of a call's argument (without it: the copy)."""
    if depth > MAX_DEPTH:
        raise DecodeError("the value is nested too deeply")
    if tree is None or type(tree) in (bool, str, int, float):
        return tree
    if type(tree) is not dict or not tree:
        raise DecodeError(f"unexpected {type(tree).__name__} in a value")
    tag = next(iter(tree))
    body = tree[tag]
    again = lambda item: decode(item, blobs, make_handle, depth + 1, make_alias)  # noqa: E731
    if tag == "int" and type(body) is str and len(body) < 5000:
        return int(body)
    if tag == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "bytes":
        return _blob(blobs, body)
    if tag in ("list", "tuple") and type(body) is list:
        items = [again(item) for item in body]
        return items if tag == "list" else tuple(items)
    if tag in ("dict", "odict") and type(body) is list:
        result = {} if tag == "dict" else OrderedDict()
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise DecodeError("a malformed dict")
            key = again(pair[0])
            try:
                result[key] = again(pair[1])
            except TypeError:
                raise DecodeError("a dict key that cannot be a key") from None
        return result
    if tag == "size" and type(body) is list and all(type(d) is int and d >= 0 for d in body):
        return torch.Size(body)
    if tag == "dtype" and body in DTYPES:
        return DTYPES[body]
    if tag == "device" and type(body) is str and len(body) < 64:
        try:
            return torch.device(body)
        except (RuntimeError, ValueError):
            raise DecodeError(f"not a device: {body!r}") from None
    if tag == "tensor":
        return _decode_tensor(tree, blobs)
    if tag == "alias" and type(body) is dict and type(tree.get("copy")) is dict and "tensor" in tree["copy"]:
        copy = _decode_tensor(tree["copy"], blobs)
        return copy if make_alias is None else make_alias(body, copy)
    if tag == "packed" and type(body) is list and len(body) == 4:
        from torch.nn.utils.rnn import PackedSequence

        parts = [again(item) for item in body]
        if not all(p is None or type(p) is torch.Tensor for p in parts[:4]) or parts[0] is None or parts[1] is None:
            raise DecodeError("a malformed PackedSequence")
        return PackedSequence(*parts)
    if tag in ("ndarray", "npscalar"):
        return _decode_numpy(tree, blobs)
    if tag == "handle":
        return make_handle(tree)
    raise DecodeError(f"unknown value tag {tag!r}")


def _blob(blobs, index):
    if type(index) is not int or not 0 <= index < len(blobs):
        raise DecodeError("a value refers to data that was not sent")
    return blobs[index]


def _shape(shape):
    if type(shape) is not list or len(shape) > 32 or not all(type(d) is int and 0 <= d < 2**40 for d in shape):
        raise DecodeError(f"not a shape: {shape!r:.80}")
    numel = 1
    for d in shape:
        numel *= d
    return shape, numel


def _decode_tensor(tree, blobs):
    dtype = DTYPES.get(tree.get("dtype"))
    if dtype is None:
        raise DecodeError(f"not a tensor dtype: {tree.get('dtype')!r:.40}")
    shape, numel = _shape(tree.get("shape"))
    raw = _blob(blobs, tree["tensor"])
    itemsize = torch.empty(0, dtype=dtype).element_size()
    if len(raw) != numel * itemsize:
        raise DecodeError(f"a tensor of shape {tuple(shape)} and dtype {dtype} with {len(raw)} bytes of data")
    if numel == 0:
        value = torch.empty(shape, dtype=dtype)
    else:
        value = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape)
    if tree.get("requires_grad") is True and (dtype.is_floating_point or dtype.is_complex):
        value.requires_grad_(True)
    return value


def _decode_numpy(tree, blobs):
    import numpy

    if tree.get("dtype") not in NUMPY_DTYPES:
        raise DecodeError(f"not a numpy dtype: {tree.get('dtype')!r:.40}")
    dtype = numpy.dtype(tree["dtype"])
    if "npscalar" in tree:
        raw = _blob(blobs, tree["npscalar"])
        if len(raw) != dtype.itemsize:
            raise DecodeError("a numpy scalar of the wrong size")
        return numpy.frombuffer(raw, dtype=dtype)[0]
    shape, numel = _shape(tree.get("shape"))
    raw = _blob(blobs, tree["ndarray"])
    if len(raw) != numel * dtype.itemsize:
        raise DecodeError("a numpy array with the wrong number of bytes")
    return numpy.frombuffer(raw, dtype=dtype).reshape(shape).copy()
