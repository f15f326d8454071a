"""What surrounds the kernel: a submission's files on disk, hidden checks in feedback, and the gradebook at export.

The kernel itself cannot forge a score: checks are judged outside it (``checker.py``). What is left to guard:
- ``submission_problem``: links in a submission are refused (never followed), and so are oversized notebooks.
- ``encoded_leaks``: feedback pages are searched for hidden-check lines, even encoded.
- ``cross_check``: ``make export`` compares the gradebook with the autograde summary.
"""

import base64
import binascii
import codecs
import re
import zlib
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 2**20  # a lesson notebook with outputs is well under 2 MB


# --- submissions on disk --------------------------------------------------------------------------------------

def links_in(folder):
    """Paths (relative) of the links in ``folder``, found without following any."""
    folder = Path(folder)
    if folder.is_symlink():
        return ["."]
    found = []
    for path in sorted(folder.rglob("*")):  # rglob does not descend into linked folders
        if path.is_symlink():
            found.append(str(path.relative_to(folder)))
    return found


def submission_problem(folder, notebook=None):
    """Why a submission folder is refused (links, an oversized notebook), or None."""
    links = links_in(folder)
    if links:
        return f"refused: the submission contains links ({', '.join(links[:3])}); links are never followed"
    if notebook is not None and Path(notebook).stat().st_size > MAX_NOTEBOOK_BYTES:
        size = Path(notebook).stat().st_size / 2**20
        return f"refused: the notebook is {size:.0f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit"
    return None


# --- feedback: hidden tests, even encoded --------------------------------------------------------------------

ENCODED = re.compile(r"[A-Za-z0-9+/=_-]{24,}|(?:[0-9a-fA-F]{2}){12,}")


def decoded_views(text):
    """``text`` and what a page could hide in it: reversed, rot13, base64/base32/hex runs decoded (and unzipped)."""
    views = [text, text[::-1], codecs.decode(text, "rot13")]
    for blob in ENCODED.findall(text.replace("\n", "").replace(" ", "")) + ENCODED.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode, base64.b32decode, binascii.unhexlify):
            try:
                raw = decode(blob + "=" * (-len(blob) % 4) if decode is not binascii.unhexlify else blob)
            except (ValueError, binascii.Error):
                continue
            for data in (raw, _unzipped(raw)):
                if data:
                    views.append(data.decode("utf-8", "ignore"))
    return views


def _unzipped(raw):
    for wbits in (15, 31, -15):
        try:
            return zlib.decompress(raw, wbits)
        except zlib.error:
            continue
    return None


def encoded_leaks(text, secret_lines):
    """The hidden-test lines found in ``text`` in any of its ``decoded_views``."""
    leaked = []
    for view in decoded_views(text):
        leaked += [line for line in secret_lines if line in view and line not in leaked]
    return leaked
