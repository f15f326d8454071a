"""Makes date_model.pt, the longer-trained date model that Lesson 07 loads in section 9.

It runs the lesson's own code: the notebook's teaching cells (data, vocabularies, Encoder, Decoder, bridge,
teacher forcing) up to its training cell, then that training cell with more steps, on the CPU. Run it from this
folder:

    python train_date_model.py            # 1500 steps, a few minutes on one CPU core
"""

import sys
from pathlib import Path

import nbformat
import torch

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "07-seq2seq.ipynb"
TRAINING_CELL_START = "STEPS = "  # the training cell's first line sets the number of steps


def main(steps=1500):
    namespace = {"__name__": "__main__"}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type != "code" or cell.get("metadata", {}).get("nbgrader"):
            continue  # teaching cells only: no answers, no checks
        if cell.source.startswith(TRAINING_CELL_START):
            _, rest = cell.source.split("\n", 1)
            exec(f"STEPS = {steps}\n{rest}", namespace)
            break
        exec(cell.source, namespace)
    else:
        raise SystemExit(f"no training cell starting with {TRAINING_CELL_START!r} in {NOTEBOOK.name}")
    state = {"steps": steps, "losses": namespace["losses"],
             "encoder": namespace["model_encoder"].state_dict(), "decoder": namespace["model_decoder"].state_dict()}
    torch.save(state, HERE / "date_model.pt")
    print(f"saved date_model.pt after {steps} steps (last loss {namespace['losses'][-1]:.3f})")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
