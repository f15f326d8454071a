"""Start a command with a memory cap: ``python memcap.py BYTES -- COMMAND [ARGS...]``.

The grading kernel is started through this script (see ``preprocessors.MemoryCappedKernelManager``). It sets
``RLIMIT_DATA`` and then replaces itself with the kernel, so the kernel keeps this process id (interrupts and
shutdown work as usual). ``RLIMIT_DATA`` counts the memory a process can write to (heap and private mappings),
not reserved address space: torch needs a few GB of *virtual* space just to import (``RLIMIT_AS`` would break
it), while ``RLIMIT_DATA`` lets a normal lesson run and makes an oversized allocation fail with ``MemoryError``
or torch's "can't allocate memory". Linux enforces it; macOS ignores it. ``BYTES`` 0 means no cap.

Standard library only: the kernel starts in the student's folder, where the course packages may not import.
"""

import os
import resource
import sys


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: memcap.py BYTES -- COMMAND [ARGS...]")
    limit, command = int(argv[0]), argv[2:]
    if limit > 0:
        try:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        except (ValueError, OSError) as error:  # a hard limit set lower by the system: keep it, say so
            print(f"memcap: could not set the memory cap ({error}); the kernel runs with the system's limit",
                  file=sys.stderr)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
