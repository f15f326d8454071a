"""Rebuild Lesson 05's data file, ``solutions/05-sequence-classification/japanese_vowels.npz``, byte for byte from
the original Japanese Vowels files (UCI; in the UEA archive's ``.ts`` format, as the ``sktime`` wheel ships them).

    pip download --no-deps sktime==0.40.1 -d /tmp/sk          # the wheel holds the two .ts files; no install
    python -m tools.build_japanese_vowels /tmp/sk/sktime-0.40.1-py3-none-any.whl
    python -m tools.build_japanese_vowels --check /tmp/sk/sktime-0.40.1-py3-none-any.whl   # compare, write nothing

The source may also be a folder holding ``JapaneseVowels_TRAIN.ts`` and ``JapaneseVowels_TEST.ts``. The course does
not depend on sktime: only these two text files are read, and their SHA-256 are checked first.

The ``.npz`` file holds, for each split (``train``: the set's 270 training utterances, ``test``: its 370 test
utterances, in the order of the original files):

- ``{split}_frames``: float32 ``(total frames, 12)``, every utterance's frames one after the other;
- ``{split}_lengths``: int64 ``(utterances,)``, the number of frames of each utterance (7 to 29);
- ``{split}_speakers``: int64 ``(utterances,)``, the speaker, 0 to 8 (the original labels 1 to 9, minus one).

float32 keeps every value exactly as printed in the original (at most 6 decimals; checked while building). The
zip archive is written uncompressed with fixed timestamps, so the same input always gives the same bytes.
"""

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from course.lessons import SOLUTIONS

OUTPUT = SOLUTIONS / "05-sequence-classification" / "japanese_vowels.npz"
SPLITS = {"train": "JapaneseVowels_TRAIN.ts", "test": "JapaneseVowels_TEST.ts"}
WHEEL_FOLDER = "sktime/datasets/data/JapaneseVowels/"
# SHA-256 of the two files in sktime 0.40.1's wheel (the same numbers are in the lesson's DATA.md).
SOURCE_SHA256 = {
    "JapaneseVowels_TRAIN.ts": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "JapaneseVowels_TEST.ts": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
}
NUM_COEFFICIENTS = 12
NUM_SPEAKERS = 9
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold: no build time in the file


def read_sources(source):
    """``{file name: bytes}`` of the two .ts files, from a wheel (zip) or a folder."""
    source = Path(source)
    if source.is_dir():
        return {name: (source / name).read_bytes() for name in SPLITS.values()}
    with zipfile.ZipFile(source) as wheel:
        return {name: wheel.read(WHEEL_FOLDER + name) for name in SPLITS.values()}


def check_sources(texts, expected=SOURCE_SHA256):
    for name, data in texts.items():
        digest = hashlib.sha256(data).hexdigest()
        if expected is not None and digest != expected[name]:
            raise ValueError(f"{name}: SHA-256 {digest}, expected {expected[name]} (a different version of the file)")


def parse_ts(text):
    """(frames, lengths, speakers) of one .ts file: one utterance a line after ``@data``, 12 comma-separated
    series separated by ``:``, then the label 1..9."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    frames, lengths, speakers = [], [], []
    for number, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        *series, label = line.split(":")
        if len(series) != NUM_COEFFICIENTS:
            raise ValueError(f"line {number}: expected {NUM_COEFFICIENTS} series, got {len(series)}")
        values = [[float(v) for v in s.split(",")] for s in series]
        length = len(values[0])
        if any(len(v) != length for v in values):
            raise ValueError(f"line {number}: the {NUM_COEFFICIENTS} series have different lengths")
        speaker = int(label) - 1
        if not 0 <= speaker < NUM_SPEAKERS:
            raise ValueError(f"line {number}: label {label!r} is not 1..{NUM_SPEAKERS}")
        frames.append(np.array(values, dtype=np.float64).T)  # (length, 12): one row per frame
        lengths.append(length)
        speakers.append(speaker)
    frames = np.concatenate(frames)
    stored = frames.astype(np.float32)
    if not np.array_equal(np.round(stored.astype(np.float64), 6), np.round(frames, 6)):
        raise ValueError("float32 does not keep every value to 6 decimals")
    return stored, np.array(lengths, dtype=np.int64), np.array(speakers, dtype=np.int64)


def npz_bytes(arrays):
    """An .npz archive (what np.load reads) of ``arrays`` ({name: array}), the same bytes for the same arrays."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_ZIP_TIME)
            entry.create_system = 3  # Unix, wherever it is built
            entry.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(entry, member.getvalue())
    return buffer.getvalue()


def build(texts):
    arrays = {}
    for split, name in SPLITS.items():
        frames, lengths, speakers = parse_ts(texts[name].decode("utf-8"))
        arrays[f"{split}_frames"], arrays[f"{split}_lengths"], arrays[f"{split}_speakers"] = frames, lengths, speakers
    return npz_bytes(arrays)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the sktime wheel, or a folder with the two .ts files")
    parser.add_argument("--check", action="store_true", help="compare with the shipped file; write nothing")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    texts = read_sources(args.source)
    check_sources(texts)
    data = build(texts)
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        same = args.output.exists() and args.output.read_bytes() == data
        print(f"{args.output}: {'identical to' if same else 'DIFFERS from'} a fresh build (SHA-256 {digest})")
        return 0 if same else 1
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes, SHA-256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
