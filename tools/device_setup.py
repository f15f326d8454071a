"""The device lines of every lesson's set-up cell. Everything below the marker is copied verbatim into each
set-up cell (after the cell's imports, `torch.manual_seed(0)` and friends); tests/test_hygiene.py keeps them in step."""

import torch

# --- set-up cell lines ---
USE_MPS = False  # Apple GPUs: set True to opt in (GRUs on MPS have open correctness issues, so it is off by default)
device = torch.device("cuda" if torch.cuda.is_available() else "mps" if USE_MPS and torch.backends.mps.is_available()
                      else "cpu")
if device.type == "cuda":
    # cuDNN runs float32 GRUs in TF32 (about 3 significant digits) by default on Ampere and newer GPUs; the course
    # compares to many more digits. The legacy switch works on every PyTorch, and it keeps cudnn.flags() usable
    # (PyTorch 2.13's torch.backends.cudnn.rnn.fp32_precision set on its own makes them raise).
    torch.backends.cudnn.allow_tf32 = False
