"""Around the kernel: the check helpers keep the originals they rely on (in a notebook, where answers share their
process); links are refused; encoded hidden checks are found in feedback; grading refuses to run without its
sandbox unless told to."""

import base64
import builtins
import zlib

import pytest
import torch

from course.lessons import REPO
from grading.toolkit import integrity, sandbox
from grading.toolkit.collect import unpack


def test_check_helpers_keep_the_originals_they_rely_on(monkeypatch):
    helpers = {}
    exec(compile((REPO / "tools" / "course_checks.py").read_text(), "course-checks", "exec"), helpers)
    # An answer cell run after it shadows built-ins in the notebook's namespace and patches torch.
    helpers.update(isinstance=lambda *a: True, int=lambda *a: 0, tuple=list, all=lambda *a: True)
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "__eq__", lambda *a: True)

    class Lying(builtins.int):
        def __eq__(self, other):
            return True

        def __index__(self):
            return 5

    wrong = [lambda: helpers["check_tensor"](torch.zeros(2), torch.ones(2), "t"),
             lambda: helpers["check_int"](Lying(3), 5, "n"),
             lambda: helpers["check_shape"]([2, 3], (2, 3), "s"),
             lambda: helpers["check_type"]("x", torch.Tensor, "x")]
    for attempt in wrong:
        with pytest.raises(helpers["CheckFailed"]):
            attempt()
    helpers["check_tensor"](torch.ones(2, 3), torch.ones(2, 3), "t")  # honest values still pass
    helpers["check_shape"](torch.Size([2, 3]), (2, 3), "s")
    helpers["check_int"](Lying(5), 5, "n")


def test_links_are_refused_and_never_followed(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "00-x.ipynb").write_text("{}")
    assert integrity.submission_problem(folder) is None
    (folder / "data").symlink_to("/", target_is_directory=True)
    assert "links (data)" in integrity.submission_problem(folder)
    download = tmp_path / "download"
    download.mkdir()
    (download / "ada_00-orientation.ipynb").symlink_to(REPO / "solutions" / "00-orientation" / "00-orientation.ipynb")
    found, skipped = unpack(download, tmp_path)
    assert found == [] and [s.reason for s in skipped] == ["a link: not followed"]


def test_hidden_test_lines_are_found_even_encoded():
    secret = "rng = random.Random(20261124)"
    for encoded in (base64.b64encode(secret.encode()).decode(), secret.encode().hex(), secret[::-1],
                    base64.b64encode(zlib.compress(secret.encode())).decode()):
        assert integrity.encoded_leaks(f"ValueError: {encoded}", [secret]) == [secret], encoded
    assert integrity.encoded_leaks("CheckFailed: expected 114, got 150", [secret]) == []


def test_grading_refuses_without_the_sandbox_and_warns_when_it_is_off(monkeypatch, tmp_path):
    from grading.toolkit.autograde import autograde
    from grading.toolkit.settings import Course

    sandbox.problem.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap here
    try:
        lines = []
        assert autograde(Course(tmp_path, "sqlite://"), out=lines.append) == 2
        assert "apt-get install bubblewrap" in lines[0] and "COURSE_SANDBOX=off" in lines[0]
        monkeypatch.setenv("COURSE_SANDBOX", "off")
        sandbox.check()  # no error: explicitly off
        assert "WITHOUT the sandbox" in sandbox.describe()
    finally:
        sandbox.problem.cache_clear()
