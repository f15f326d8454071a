"""The one rule for student ids, used by ``make collect``, ``autograde``, ``feedback`` and ``export``.

An id is 1 to 64 characters: ASCII letters, digits and ``. _ @ -``, starting with a letter or a digit. That covers
LMS user names, numbers and e-mail addresses, and keeps out what an id must never carry: a spreadsheet formula
(``=HYPERLINK(...)``, ``+1``, ``@SUM``), a comma or a quote that shifts CSV columns, an option for nbgrader's
command line (``-1+1``), a path (``..``, ``a/b``), spaces, control characters and look-alike Unicode.
"""

import re

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
RULE = "1-64 ASCII letters, digits and . _ @ -, starting with a letter or a digit"


def id_problem(student):
    """None when ``student`` follows the rule, else why not (for a message that also names the file)."""
    if isinstance(student, str) and STUDENT_ID.fullmatch(student):
        return None
    return f"student id {ascii(student)[:80]} breaks the id rule ({RULE})"


def is_valid_id(student):
    return id_problem(student) is None
