"""Caps per submission that resource limits (``limits.py``) cannot give: memory including shared memory, and the
kernel's IPC folder.

- **Memory.** ``RLIMIT_DATA`` does not count shared memory (``mmap(MAP_SHARED)``, ``memfd``, files in ``/dev/shm``
  or ``/tmp``, which are tmpfs). Where the grader may create memory cgroups (root, or a delegated cgroup v2), each
  kernel runs in a cgroup of its own whose limit (``memory.max`` in cgroup v2, ``memory.limit_in_bytes`` in v1) is
  ``COURSE_KERNEL_MEMORY``: everything the kernel touches counts, and a kernel over it is killed (the row says the
  kernel died). Elsewhere only the sandbox's tmpfs sizes bound shared memory (``/dev/shm``, ``/tmp``: each
  ``COURSE_KERNEL_DISK``), and anonymous shared mappings are not capped: ``describe`` says which applies.
- **The IPC folder** holds the Unix sockets between grader and kernel, and the kernel can write to it. Each
  grading worker gets a folder of its own (``new_ipc_root``); run as root, the worker mounts a small tmpfs there in
  a mount namespace of its own (``enter_private_ipc``), so what a kernel writes is capped at ``IPC_SIZE`` and
  vanishes with the worker, however it ends. The main process removes the folder when the worker stops or is
  killed (``remove_ipc_root``), and the cgroups its kernels left (``remove_cgroups``). Without root the folder is
  on the temporary folder's disk, not size-capped, and still removed after every submission and every worker.
"""

import ctypes
import functools
import itertools
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

IPC_SIZE = 4 * 2**20  # sockets and a connection file need a few KiB
CGROUP_PREFIX = "gru-kernel-"
_numbers = itertools.count()

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000


# --- the IPC folder -------------------------------------------------------------------------------------------------

def new_ipc_root(name):
    """A fresh folder for one worker's kernel IPC folders (made by the main process, which removes it)."""
    return Path(tempfile.mkdtemp(prefix=f"gru-ipc-{name}-"))


def ipc_root():
    """Where a kernel manager makes its IPC folder: its worker's folder, else the temporary folder."""
    root = os.environ.get("COURSE_IPC_ROOT")
    return root if root and os.path.isdir(root) else None


def enter_private_ipc(root, size=IPC_SIZE):
    """In a worker, before it starts any thread: use ``root`` for the kernels' IPC folders, and as root make it a
    size-capped tmpfs seen only by this worker and its kernels. True when the tmpfs is in place."""
    os.environ["COURSE_IPC_ROOT"] = str(root)
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not os.path.exists("/proc/self/ns/mnt"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    mount = libc.mount
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    # Nothing mounted here may reach the host's mount table, nor stay after the worker.
    if mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    options = f"size={size},mode=0711".encode()
    return mount(b"tmpfs", str(root).encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) == 0


def remove_ipc_root(root):
    """Remove a worker's IPC folder and whatever its kernels left in it."""
    shutil.rmtree(root, ignore_errors=True)


def sweep_ipc_root(root):
    """Empty a worker's IPC folder between submissions (a killed kernel's manager never cleans up)."""
    for path in Path(root).iterdir() if root and Path(root).is_dir() else []:
        shutil.rmtree(path, ignore_errors=True)


# --- memory cgroups --------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def cgroup_base():
    """(version, folder) under which this process may create memory cgroups, or None."""
    for find in (_cgroup2_base, _cgroup1_base):
        try:
            found = find()
        except OSError:
            found = None
        if found and os.access(found[1], os.W_OK):
            return found
    return None


def _own_cgroup(controller):
    """This process's cgroup path for ``controller`` ("" for cgroup v2) from /proc/self/cgroup."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers.split(",") == [controller] or (controller == "" and controllers == ""):
            return path.lstrip("/")
    return None


def _cgroup2_base():
    top = Path("/sys/fs/cgroup")
    if "memory" not in (top / "cgroup.controllers").read_text().split():
        return None  # cgroup v1, or v2 without the memory controller (hybrid set-ups)
    own = top / (_own_cgroup("") or "")
    # Children of our own cgroup, or else siblings (our cgroup holds processes, so cgroup v2 may refuse it
    # controllers for children; under systemd the parent, a slice, has them).
    for base in (own, own.parent) if own != top else (own,):
        if os.access(base, os.W_OK) and _memory_for_children(base):
            return 2, base
    return None


def _memory_for_children(base):
    control = base / "cgroup.subtree_control"
    if "memory" in control.read_text().split():
        return True
    try:
        control.write_text("+memory")  # refused where this cgroup holds processes itself
    except OSError:
        return False
    return True


def _cgroup1_base():
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if " - cgroup " in line and "memory" in fields[-1].split(","):
            own, mounted = _own_cgroup("memory"), fields[3].strip("/")  # a container may mount a sub-tree
            if own is not None:
                inside = own[len(mounted):] if mounted and own.startswith(mounted) else own
                return 1, Path(fields[4]) / inside.lstrip("/")
    return None


def new_kernel_cgroup(limit):
    """A memory cgroup limited to ``limit`` bytes for one kernel (None where cgroups are not available)."""
    found = cgroup_base()
    if not found or limit <= 0:
        return None
    version, base = found
    path = base / f"{CGROUP_PREFIX}{os.getpid()}-{next(_numbers)}"
    try:
        path.mkdir()
        if version == 2:
            (path / "memory.max").write_text(str(limit))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
        else:
            (path / "memory.limit_in_bytes").write_text(str(limit))
            if (path / "memory.memsw.limit_in_bytes").exists():  # no swapping past the cap either
                (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
    except OSError:
        remove_cgroup(path)
        return None
    return path


def remove_cgroup(path, wait=3.0):
    """Kill what is left in the cgroup ``path``, then remove it."""
    if not path or not Path(path).is_dir():
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            Path(path).rmdir()
            return
        except OSError:
            pass
        try:
            for pid in Path(path, "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def remove_cgroups(pid):
    """Remove the cgroups the kernels of process ``pid`` (a worker) left behind."""
    found = cgroup_base()
    if found and pid:
        for path in found[1].glob(f"{CGROUP_PREFIX}{pid}-*"):
            remove_cgroup(path)


def describe(memory):
    """One line for the start of a grading run: how memory and the IPC folder are capped here."""
    from grading.toolkit.settings import format_bytes

    found = cgroup_base()
    if memory <= 0:
        how = "no memory cap"
    elif found:
        how = f"memory cap {format_bytes(memory)} per kernel, shared memory included (cgroup v{found[0]})"
    else:
        how = (f"memory cap {format_bytes(memory)} per kernel (RLIMIT_DATA; no memory cgroup can be made here, so "
               f"shared memory is bounded only by the sandbox's tmpfs sizes)")
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    ipc = f"a private {IPC_SIZE // 2**20} MiB tmpfs per worker" if root else "the temporary folder (not size-capped)"
    return f"limits: {how}; kernel IPC folders: {ipc}, emptied after each submission"
