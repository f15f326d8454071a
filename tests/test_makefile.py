"""The Makefile fails loudly and clearly when the Python it is given cannot run the course."""

import shutil
import subprocess

from course.lessons import REPO


def make_install(tmp_path, python):
    """`make install PYTHON=python` in an empty copy of the course's Makefile (no .venv yet)."""
    shutil.copy(REPO / "Makefile", tmp_path)
    shutil.copy(REPO / "requirements.txt", tmp_path)
    return subprocess.run(["make", "install", f"PYTHON={python}"], cwd=tmp_path, capture_output=True, text=True)


def test_too_old_python_is_refused_with_a_clear_message(tmp_path):
    fake = tmp_path / "python3.8"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'Python 3.8.18'\nexit 1\n")
    fake.chmod(0o755)
    result = make_install(tmp_path, fake)
    assert result.returncode != 0
    assert "the course needs Python 3.10 or newer" in result.stderr and "Python 3.8.18" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_missing_python_is_refused_with_a_clear_message(tmp_path):
    result = make_install(tmp_path, "no-such-python3")
    assert result.returncode != 0
    assert "'no-such-python3' not found" in result.stderr
