"""Start a command under resource limits: ``python limits.py [--data B] [--nproc N] [--fsize B] [--cgroup DIR] --
COMMAND``.

The sandboxed grading kernel is started through this script (``sandbox.SandboxedKernelManager``): it sets the
limits, detaches the command from any terminal, then replaces itself with the command (``bwrap``), whose children
(the kernel and whatever it starts) inherit the limits:

- ``--data``: ``RLIMIT_DATA``, the memory cap (see ``memcap.py`` for why not ``RLIMIT_AS``);
- ``--nproc``: ``RLIMIT_NPROC``, processes and threads of the user the kernel runs as (a fork bomb stops there);
- ``--fsize``: ``RLIMIT_FSIZE``, the largest file the kernel can write (a write past it fails with "File too large");
- ``--cgroup``: join the memory cgroup ``DIR`` (``quotas.py`` made it, with the cap), which counts shared memory too;
- core dumps are off.

Standard library only, like ``memcap.py``.
"""

import argparse
import os
import resource
import sys

LIMITS = {"data": resource.RLIMIT_DATA, "nproc": resource.RLIMIT_NPROC, "fsize": resource.RLIMIT_FSIZE}


def set_limit(kind, value):
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)  # never raise a limit the system set lower
    resource.setrlimit(kind, (value, value))


def join_cgroup(folder):
    """Move this process (and so everything it starts) into the cgroup ``folder``."""
    try:
        with open(os.path.join(folder, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    except OSError as error:  # the cap that RLIMIT_DATA gives still holds; say that this one does not
        print(f"limits: could not join the memory cgroup {folder} ({error})", file=sys.stderr)


def detach_from_terminal():
    """No file descriptor of the sandbox may be a terminal (``TIOCSTI`` could type commands into it)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                os.dup2(devnull, fd)
        except OSError:
            pass


def main(argv):
    if "--" not in argv:
        sys.exit("usage: limits.py [--data BYTES] [--nproc N] [--fsize BYTES] [--cgroup DIR] -- COMMAND [ARGS...]")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="limits.py")
    for name in LIMITS:
        parser.add_argument(f"--{name}", type=int, default=0)
    parser.add_argument("--cgroup", default="")
    options, command = parser.parse_args(argv[:split]), argv[split + 1:]
    if options.cgroup:
        join_cgroup(options.cgroup)
    for name, kind in LIMITS.items():
        if getattr(options, name) > 0:
            set_limit(kind, getattr(options, name))
    set_limit(resource.RLIMIT_CORE, 0)
    detach_from_terminal()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
