"""Makes date_model.pt, the two trained date models that Lesson 07 evaluates in section 10: the decoder that sees the
input only through h_0, and the decoder with attention.

It runs the lesson's own code: the notebook's cells (data, vocabularies, Encoder, Decoder, AttentionDecoder, the
bridge, teacher forcing, `train`, greedy decoding, the settings SHIPPED_TRAINING) up to the cell that loads
date_model.pt, leaving out the check cells and the short live training run; then it trains both models with
`train(..., **SHIPPED_TRAINING)` on the CPU, with a validation every `validate_every` steps (early stopping, the
best weights kept), and saves their weights (rounded to float16, to keep the file small) and their histories (the
loss and gradient norm of every step also in float16, the learning rates in float32).
The exercises' answers come from the notebook it runs (yours, or the course's working versions). Run it from this
folder (about 15 minutes with --jobs 2, one model per CPU core; longer with one job, which makes the same weights):

    python train_date_model.py                                   # writes date_model.pt
    python train_date_model.py --jobs 2                          # both models at once, on two cores
    python train_date_model.py --steps 250 --output /tmp/try.pt  # a quick try of the whole pipeline (one validation)
"""

import argparse
import functools
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import torch

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "07-seq2seq.ipynb"
LOADING_CELL_START = "shipped = torch.load("  # the notebook's cell that loads date_model.pt: stop before it
LIVE_CELL_START = "LIVE_STEPS = "  # the notebook's short live training run: not needed here


def notebook_namespace():
    """The namespace of the notebook's cells up to the loading cell (check cells and the live run left out)."""
    namespace = {"__name__": "__main__"}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type != "code" or cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue  # markdown and check cells
        if cell.source.startswith(LOADING_CELL_START):
            return namespace
        if not cell.source.startswith(LIVE_CELL_START):
            exec(compile(cell.source, "<notebook cell>", "exec"), namespace)
    raise SystemExit(f"no cell starting with {LOADING_CELL_START!r} in {NOTEBOOK.name}")


def rounded(state_dict):
    return {key: value.detach().to(torch.float16) for key, value in state_dict.items()}


def in_lesson_folder():
    os.chdir(HERE)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the notebook imports lesson_checks and course_checks from its folder


def train_one(name, settings):
    """Train the model `name` of the notebook's MODELS with `settings`; its entry of date_model.pt."""
    in_lesson_folder()
    ns = notebook_namespace()
    new_model, forward_logits = ns["MODELS"][name]
    encoder, decoder = new_model()

    def report(measured):
        print(f"{name}: step {measured['step']}: validation loss {measured['loss']:.4f}, exact match "
              f"{measured['exact_match']:.3f}", flush=True)

    history = ns["train"](encoder, decoder, forward_logits, **settings, report=report,
                          validate=functools.partial(ns["validate"], forward_logits=forward_logits))
    encoder_state, decoder_state = rounded(encoder.state_dict()), rounded(decoder.state_dict())
    encoder.load_state_dict({key: value.float() for key, value in encoder_state.items()})
    decoder.load_state_dict({key: value.float() for key, value in decoder_state.items()})
    with torch.no_grad():
        after_rounding = ns["validate"](encoder, decoder, forward_logits)
    print(f"{name}: best step {history['best_step']}; with the weights rounded to float16: validation loss "
          f"{after_rounding['loss']:.4f}, exact match {after_rounding['exact_match']:.3f}", flush=True)
    return {"encoder": encoder_state, "decoder": decoder_state,
            "history": {"loss": torch.tensor(history["loss"], dtype=torch.float16),
                        "grad_norm": torch.tensor(history["grad_norm"], dtype=torch.float16),
                        "lr": torch.tensor(history["lr"]), "validations": history["validations"],
                        "best_step": history["best_step"], "after_rounding": after_rounding}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="train for this many steps instead of SHIPPED_TRAINING's")
    parser.add_argument("--output", type=Path, default=HERE / "date_model.pt")
    parser.add_argument("--jobs", type=int, default=1, help="train this many models at once, each in its own "
                                                            "process (the results are the same)")
    args = parser.parse_args(argv)
    output = args.output.resolve()
    in_lesson_folder()
    ns = notebook_namespace()
    settings = {**ns["SHIPPED_TRAINING"], **({"steps": args.steps} if args.steps else {})}
    names = list(ns["MODELS"])
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        entries = list(pool.map(train_one, names, [settings] * len(names)))
    torch.save({"training": settings, **dict(zip(names, entries, strict=True))}, output)
    print(f"saved {output} ({output.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
