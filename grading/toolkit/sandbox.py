"""Every grading kernel runs in a bubblewrap sandbox (``bwrap``, Debian package ``bubblewrap``).

``SandboxedKernelManager`` is the kernel manager of ``SafeExecute`` (``preprocessors.py``), which
``grading/nbgrader_config.py`` installs into nbgrader: ``make autograde`` and a plain ``nbgrader autograde`` run
from ``grading/`` are sandboxed alike. The kernel is the only process that runs student code, and inside the
sandbox it sees:

- the Python installation and the course environment (``sys.prefix``, ``sys.base_prefix``), ``/usr`` and a few
  files of ``/etc`` (the dynamic loader's cache, ``passwd``, ``group``, fonts), all read-only;
- its working folder: a private, size-capped tmpfs holding read-only copies of the lesson's data files (no
  notebook: not the submission, not the instructor's version with the hidden tests);
- a private, size-capped tmpfs ``/tmp``, which is also its ``$HOME``; ``/proc`` of its own PID namespace, a minimal
  ``/dev``; the folder of its IPC sockets (the kernel talks to the grader over Unix sockets, not TCP).

Nothing else: no ``solutions/``, no gradebook, no ``submitted/``, ``autograded/`` or ``feedback/``, no toolkit, no
configuration, not the real ``$HOME`` (so no IPython or Jupyter start-up files). It has no network (its own,
empty network namespace), its own PID namespace (every process it starts dies with it; ``--die-with-parent``: it
dies with the grader), IPC and UTS namespaces, and a clean environment. When the grader runs as root, the kernel
runs as an unprivileged user of its own (a uid no file belongs to, no capabilities, ``no_new_privs``), so the
process limit counts only its own processes; otherwise it runs in a user namespace as the grading user. Limits
(``limits.py``): memory (``COURSE_KERNEL_MEMORY``), processes and threads (``COURSE_KERNEL_PROCESSES``), the size
of any file it writes (``COURSE_KERNEL_FILE_SIZE``), the size of ``/tmp`` and of its working folder
(``COURSE_KERNEL_DISK``); memory including shared memory where a memory cgroup can be made, and the IPC folder
(``quotas.py``); the output of each cell and of the whole notebook is capped by ``SafeExecute`` (``budget.py``).

``COURSE_SANDBOX=off`` grades without the sandbox (student code then runs as the grading user, with its files and
the network), with a warning on every run. Where ``bwrap`` is missing or cannot start, grading refuses with a
message that says how to install it.
"""

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Integer, Unicode

from grading.toolkit import quotas
from grading.toolkit.agent import AGENT_DIR
from grading.toolkit.settings import parse_bytes

LIMITS = Path(__file__).resolve().parent / "limits.py"
MEMCAP = Path(__file__).resolve().parent / "memcap.py"

DEFAULT_PROCESSES = 256  # processes + threads of one kernel: torch's thread pools and ipykernel's need about 30
DEFAULT_FILE_SIZE = "64M"
DEFAULT_DISK = "256M"  # each of /tmp and the working folder (tmpfs: it counts as memory of the machine)

INSTALL = ("install bubblewrap: `sudo apt-get install bubblewrap` (Debian, Ubuntu), `sudo dnf install bubblewrap` "
           "(Fedora), `sudo pacman -S bubblewrap` (Arch); it needs Linux with user namespaces, or root")
OFF_WARNING = ("WARNING: COURSE_SANDBOX=off: grading kernels run WITHOUT the sandbox, as the grading user: student "
               "code can read and change this user's files (solutions, gradebook, other submissions) and use the "
               "network. Grade only trusted work this way.")

# What the kernel may inherit from the grader's environment (everything else, COURSE_* included, is dropped).
KEPT_ENV = ("NBGRADER_EXECUTION", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LANG", "LC_ALL",
            "LC_CTYPE", "TZ", "PYTHONHASHSEED", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION", "JPY_PARENT_PID")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "passwd", "group", "nsswitch.conf", "localtime", "fonts")


class SandboxUnavailable(RuntimeError):
    """Grading refused: the sandbox cannot start here (the message says why and how to install it)."""


def enabled():
    """True unless ``COURSE_SANDBOX`` is ``off`` (or 0/no/false)."""
    value = os.environ.get("COURSE_SANDBOX", "on").strip().lower()
    if value in ("off", "0", "no", "false"):
        return False
    if value not in ("on", "1", "yes", "true", ""):
        raise SandboxUnavailable(f"COURSE_SANDBOX={value!r}: expected 'on' (the default) or 'off'")
    return True


def kernel_processes():
    return int(os.environ.get("COURSE_KERNEL_PROCESSES", DEFAULT_PROCESSES))


def kernel_file_size():
    return parse_bytes(os.environ.get("COURSE_KERNEL_FILE_SIZE", DEFAULT_FILE_SIZE))


def kernel_disk():
    return parse_bytes(os.environ.get("COURSE_KERNEL_DISK", DEFAULT_DISK)) or parse_bytes(DEFAULT_DISK)


def as_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def kernel_uid():
    """The unprivileged uid a kernel runs as when the grader is root: one per grading process, owned by no file."""
    return 200_000 + os.getpid() % 100_000


# --- the bwrap command line ------------------------------------------------------------------------------------

def _python_dirs():
    """The folders the kernel's Python needs, as (path inside the sandbox, real path on the host)."""
    pairs = {}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        pairs[prefix] = os.path.realpath(prefix)
        pairs[os.path.realpath(prefix)] = os.path.realpath(prefix)
    # A prefix inside another one needs no bind of its own.
    return sorted((inside, real) for inside, real in pairs.items()
                  if not any(inside != other and inside.startswith(other.rstrip("/") + "/") for other in pairs))


def _parents(path):
    """``--dir`` for each folder above ``path``, readable by all (bwrap would make them private to root)."""
    args, parts = [], Path(path).parts
    for depth in range(2, len(parts)):
        args += ["--perms", "0755", "--dir", str(Path(*parts[:depth]))]
    return args


def _system_args():
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in ETC_FILES:
        if os.path.exists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


def _namespace_args():
    if as_root():
        # Privileged bwrap: no user namespace; the kernel is then moved to an unprivileged uid by setpriv.
        return ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    return ["--unshare-all", "--disable-userns"]


def _working_folder_args(cwd, size):
    """A tmpfs at ``cwd`` with read-only binds of its files: the lesson's data files, never a notebook, never a
    link (a link could point anywhere on the grader's disk)."""
    args = [*_parents(cwd), "--size", str(size), "--perms", "1777", "--tmpfs", cwd]
    root = Path(cwd)
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in sorted(dirs):
            path = Path(folder) / name
            if not path.is_symlink():
                args += ["--perms", "1777", "--dir", str(path)]
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or path.suffix == ".ipynb":
                continue
            if name in ("timestamp.txt", "submission_secret.txt"):
                continue
            args += ["--ro-bind", str(path), str(path)]
    return args


def _matplotlib_cache_args():
    """matplotlib builds its font list on first import (about a second); give the kernel the grader's copy."""
    config = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")
    fontlists = sorted(Path(config).glob("fontlist-*.json"))
    if not fontlists:
        return []  # the kernel builds its own (matplotlib is imported where a lesson plots)
    args = ["--perms", "1777", "--dir", "/tmp/.matplotlib"]
    for path in fontlists:
        args += ["--ro-bind", str(path), f"/tmp/.matplotlib/{path.name}"]
    return args


def environment(env):
    """The kernel's environment: the few variables it needs, nothing of the grader's (no COURSE_*, no tokens)."""
    kept = {k: v for k, v in (env or os.environ).items() if k in KEPT_ENV}
    bin_dir = os.path.join(sys.prefix, "bin")
    kept.update(HOME="/tmp", TMPDIR="/tmp", USER="student", PATH=f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
                MPLCONFIGDIR="/tmp/.matplotlib", IPYTHONDIR="/tmp/.ipython", JUPYTER_CONFIG_DIR="/tmp/.jupyter",
                JUPYTER_DATA_DIR="/tmp/.local/share/jupyter", PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    kept.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return kept


def bwrap_command(kernel_cmd, cwd, ipc_dir, env, uid=None):
    """The full command line: bwrap with its binds and namespaces, then (as root) setpriv, then the kernel."""
    disk = kernel_disk()
    args = [shutil.which("bwrap") or "bwrap", "--die-with-parent", *_namespace_args(), *_system_args()]
    # The private /tmp first: binds made after it show through it (a course or environment under /tmp, as in a
    # clone made there, stays visible; mounted the other way round, the tmpfs would hide it).
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(disk), "--tmpfs", "/dev/shm",
             "--size", str(disk), "--perms", "1777", "--tmpfs", "/tmp"]
    for inside, real in _python_dirs():
        args += [*_parents(inside), "--ro-bind", real, inside]
    args += _matplotlib_cache_args()
    args += [*_parents(str(AGENT_DIR)), "--ro-bind", str(AGENT_DIR), str(AGENT_DIR)]  # the checker's agent
    args += [*_parents(ipc_dir), "--bind", ipc_dir, ipc_dir]
    if cwd:
        args += _working_folder_args(cwd, disk)
    args += ["--chdir", cwd or "/tmp", "--clearenv"]
    for key, value in sorted(environment(env).items()):
        args += ["--setenv", key, value]
    args += ["--"]
    if uid is not None:
        args += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all", "--no-new-privs", "--"]
    return args + list(kernel_cmd)


def limits_command(command, memory, cgroup=None):
    """``command`` started through ``limits.py`` (memory, processes, file size, memory cgroup; core dumps off)."""
    processes = kernel_processes()
    if processes > 0 and not as_root():
        processes += _tasks_of_this_user()  # RLIMIT_NPROC counts all of the user's processes
    joined = [f"--cgroup={cgroup}"] if cgroup else []
    return [sys.executable, str(LIMITS), f"--data={memory}", f"--nproc={processes}",
            f"--fsize={kernel_file_size()}", *joined, "--", *command]


def _tasks_of_this_user():
    uid, count = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


# --- can it start here? -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def problem():
    """None when the sandbox starts here, else why not (with how to install it)."""
    if not sys.platform.startswith("linux"):
        return f"the grading sandbox (bubblewrap) needs Linux; this is {sys.platform}. Grade on Linux (or a Linux VM)"
    if not shutil.which("bwrap"):
        return f"the grading sandbox needs bubblewrap (`bwrap`), which is not installed: {INSTALL}"
    with tempfile.TemporaryDirectory(prefix="gru-probe-") as ipc:
        uid = kernel_uid() if as_root() else None
        if uid is not None:
            os.chown(ipc, uid, uid)
        command = bwrap_command([sys.executable, "-c", "import os; print(os.getuid())"], None, ipc, {}, uid)
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap could not start the grading sandbox ({error}): {INSTALL}"
    if run.returncode != 0:
        why = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
        return (f"bubblewrap could not start the grading sandbox here ({why}); it needs user namespaces "
                f"(e.g. `sysctl kernel.unprivileged_userns_clone=1`; in Docker: --security-opt seccomp=unconfined) "
                f"or root. Or {INSTALL}")
    return None


def check():
    """Raise ``SandboxUnavailable`` (how to install) unless the sandbox starts or ``COURSE_SANDBOX=off``."""
    if enabled() and problem():
        raise SandboxUnavailable(problem() + ". To grade without the sandbox (trusted work only): COURSE_SANDBOX=off")


def describe():
    """One line for the start of a grading run."""
    if not enabled():
        return OFF_WARNING
    who = f"uid {kernel_uid()} (no capabilities)" if as_root() else "a user namespace"
    return (f"sandbox: bubblewrap, no network, private /tmp, no access to solutions, gradebook or other "
            f"submissions; kernels run as {who}")


# --- the kernel manager -------------------------------------------------------------------------------------

class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel inside bwrap (``bwrap_command``) under ``limits.py``, talking over Unix sockets in a
    private folder; with ``COURSE_SANDBOX=off``, only under the memory cap (``memcap.py``), with a warning."""

    memory_limit = Integer(0, help="RLIMIT_DATA of the kernel in bytes; 0 means no cap").tag(config=True)
    sandbox_dir = Unicode("", help="the private folder of the kernel's IPC sockets (made at start)")

    async def _async_pre_start_kernel(self, **kw):
        self._sandboxed = enabled()
        if not self._sandboxed:
            self.log.warning(OFF_WARNING)
            return await super()._async_pre_start_kernel(**kw)
        check()
        self._cwd = kw.get("cwd")  # nbgrader gives the submission's folder; without one, only the private /tmp
        self._env = kw.get("env")
        self._uid = kernel_uid() if as_root() else None
        self.sandbox_dir = tempfile.mkdtemp(prefix="gru-kernel-", dir=quotas.ipc_root())
        self._cgroup = quotas.new_kernel_cgroup(self.memory_limit)
        # Removed at the latest when this manager goes or nbgrader exits, also after a kernel that died.
        self._finalizer = weakref.finalize(self, _remove_kernel_files, self.sandbox_dir, self._cgroup)
        if self._uid is not None:
            os.chown(self.sandbox_dir, self._uid, self._uid)
        self.transport = "ipc"
        self.ip = os.path.join(self.sandbox_dir, "kernel")
        self.connection_file = os.path.join(self.sandbox_dir, "connection.json")
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        if self._uid is not None:
            os.chown(self.connection_file, self._uid, self._uid)
        kw["cwd"] = "/"  # bwrap itself starts anywhere; --chdir places the kernel
        return kernel_cmd, kw

    def format_kernel_cmd(self, extra_arguments=None):
        command = super().format_kernel_cmd(extra_arguments)
        if not getattr(self, "_sandboxed", enabled()):
            if self.memory_limit <= 0 or os.name != "posix":
                return command
            return [sys.executable, str(MEMCAP), str(self.memory_limit), "--", *command]
        inner = bwrap_command(command, self._cwd, self.sandbox_dir, self._env, self._uid)
        return limits_command(inner, self.memory_limit, self._cgroup)

    async def _async_signal_kernel(self, signum):
        """An interrupt goes to the kernel itself, inside the sandbox, not to bwrap (which would die of it)."""
        if signum == signal.SIGINT and getattr(self, "_sandboxed", False) and self._interrupt_inside():
            return
        await super()._async_signal_kernel(signum)

    def _interrupt_inside(self):
        try:
            import psutil

            launched = psutil.Process(self.provisioner.process.pid)
            kernels = [p for p in launched.children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
            for kernel in kernels:
                kernel.send_signal(signal.SIGINT)
            return bool(kernels)
        except Exception:
            return False

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart)
        if self.sandbox_dir and not restart and getattr(self, "_finalizer", None):
            self._finalizer()


def _remove_kernel_files(ipc_dir, cgroup):
    shutil.rmtree(ipc_dir, ignore_errors=True)
    quotas.remove_cgroup(cgroup)
