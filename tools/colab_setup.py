"""Google Colab set-up for one lesson. The first code cell of every student notebook (made by
tools/learner_access.py) downloads this file and calls `set_up` on Colab only; anywhere else that cell does nothing.

It installs the course's pinned packages that the lesson imports and Colab lacks (never torch: Colab's own, with
CUDA, is used as it is), downloads the lesson's data files next to the notebook, and says when the runtime has no
GPU. Standard library only: it runs before anything is installed.
"""

import importlib.util
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path


def set_up(course_url, lesson, packages=None, files=()):
    """`course_url`: the repository's raw files (ending with /); `packages`: {module: "package==version"};
    `files`: paths relative to the lesson's folder."""
    missing = [package for module, package in (packages or {}).items() if importlib.util.find_spec(module) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    lesson_url = f"{course_url}notebooks/{lesson}/"
    for name in files:
        if not Path(name).exists():
            Path(name).parent.mkdir(parents=True, exist_ok=True)
            urllib.request.urlretrieve(lesson_url + urllib.parse.quote(name), name)
    import torch

    if not torch.cuda.is_available():
        print("No GPU in this Colab runtime: the lesson runs on the CPU. "
              "For a GPU: Runtime → Change runtime type → GPU, then run the notebook again.")
