"""Rebuild Lesson 09's data files in ``solutions/09-text/`` from the two PyPI distributions they come from. Neither
package is installed: pip only downloads them, and the files are read out of the archives.

    python -m tools.build_text_data                          # pip downloads both pinned archives, then writes
    python -m tools.build_text_data --from /tmp/x            # use archives already in a folder
    python -m tools.build_text_data --check                  # compare with the shipped files, write nothing

- ``movieReviewSnippets_GroundTruth.txt``: byte for byte the file of that name in ``hutto_ICWSM_2014.tar.gz``, which
  the ``vaderSentiment==3.3.2`` source distribution ships in ``additional_resources/`` (MIT licence). 10,605 movie
  review snippets, each with the mean of its human sentiment ratings (-4 to +4).
- ``LICENSE.vaderSentiment``: that distribution's ``LICENSE.txt``, byte for byte.
- ``turkish_pos.tsv``: the sentences, tokens and coarse part-of-speech tags of the Turkish Web Treebank, read from the
  ``turkish-treebanks==1.0.0`` wheel (``data/web.conllu`` and ``data/wiki.conllu``, Apache License 2.0). One line per
  sentence: ``section<TAB>split<TAB>sent_id<TAB>tokens<TAB>tags``, tokens and tags separated by single spaces (no
  token contains a space). The split is the treebank authors' own: in each file, sentence ``i`` (from 0) is ``dev``
  when ``i % 10 == 8``, ``test`` when ``i % 10 == 9``, otherwise ``train`` (``turkish_treebanks/read.py``).
- ``LICENSE.turkish-treebanks``: the wheel's ``LICENSE`` (Apache License 2.0), byte for byte.

Every source file is checked against a SHA-256 recorded below before anything is written, and so is every output.
"""

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from course.lessons import SOLUTIONS

TARGET = SOLUTIONS / "09-text"
VADER = ("vaderSentiment==3.3.2", "vaderSentiment-3.3.2.tar.gz")
TREEBANK = ("turkish-treebanks==1.0.0", "turkish_treebanks-1.0.0-py3-none-any.whl")
SOURCE_SHA256 = {
    "vaderSentiment-3.3.2.tar.gz": "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    "turkish_treebanks-1.0.0-py3-none-any.whl": "5a009c29a8e96e8f7e25059d59ac293c3baead6d746bf0fa4c9d3349b1e37ba0",
    "data/web.conllu": "d6f92b12b74f367a36e30dd3d644d7a0bb01a991584602e6e69f1191664f86bf",
    "data/wiki.conllu": "58f049fae8d0653ba0940a58168c17c7cebbc50f88cad2985d12d34ac1b9acde",
}
# The shipped files (the same numbers are in solutions/09-text/DATA.md).
OUTPUT_SHA256 = {
    "movieReviewSnippets_GroundTruth.txt": "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
    "LICENSE.vaderSentiment": "74cfe41cdbf7f6925aeb4c18c148ec8db042540edb6739fd81069aa4e3c8b118",
    "turkish_pos.tsv": "ae9a89d9d18750258cbe74a4bb5a2ca00142a1de7c9598f47eb042426bdd7463",
    "LICENSE.turkish-treebanks": "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
}
SECTIONS = ("web", "wiki")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def checked(name, data):
    if sha256(data) != SOURCE_SHA256[name]:
        raise SystemExit(f"{name}: sha256 {sha256(data)}, expected {SOURCE_SHA256[name]} (another version?)")
    return data


def download(requirement, filename, folder, binary):
    """The path of ``filename`` in ``folder``, downloaded (not installed) by pip when it is not there yet."""
    path = Path(folder) / filename
    if not path.exists():
        kind = "--only-binary=:all:" if binary else "--no-binary=:all:"
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", kind, requirement, "-d", str(folder)],
                       check=True)
    return path


def vader_files(sdist):
    """``{name: bytes}`` of the movie snippets and the licence, out of the vaderSentiment source distribution."""
    checked(sdist.name, sdist.read_bytes())
    with tarfile.open(sdist) as outer:
        licence = outer.extractfile("vaderSentiment-3.3.2/LICENSE.txt").read()
        inner_bytes = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        snippets = inner.extractfile("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt").read()
    return {"movieReviewSnippets_GroundTruth.txt": snippets, "LICENSE.vaderSentiment": licence}


def conllu_sentences(text):
    """``[(sent_id, tokens, coarse tags)]`` of a CoNLL-U file (the treebank has no multiword or empty tokens)."""
    sentences = []
    for block in text.strip().split("\n\n"):
        lines = block.strip().split("\n")
        sent_id = next(line for line in lines if line.startswith("# sent_id = "))[len("# sent_id = "):]
        rows = [line.split("\t") for line in lines if not line.startswith("#")]
        if any(len(row) != 10 or not row[0].isdigit() for row in rows):
            raise SystemExit(f"{sent_id}: not a plain CoNLL-U sentence")
        tokens, tags = [row[1] for row in rows], [row[3] for row in rows]
        if any(not token or " " in token for token in tokens):
            raise SystemExit(f"{sent_id}: a token is empty or holds a space")
        sentences.append((sent_id, tokens, tags))
    return sentences


def split_of(index):
    """The treebank authors' split of the sentence at ``index`` (from 0) in its file."""
    return "dev" if index % 10 == 8 else "test" if index % 10 == 9 else "train"


def treebank_files(wheel):
    """``{name: bytes}`` of the tagged sentences and the licence, out of the turkish-treebanks wheel."""
    checked(wheel.name, wheel.read_bytes())
    lines = []
    with zipfile.ZipFile(wheel) as archive:
        licence = archive.read("turkish_treebanks-1.0.0.dist-info/LICENSE")
        for section in SECTIONS:
            text = checked(f"data/{section}.conllu", archive.read(f"data/{section}.conllu")).decode("utf-8")
            for index, (sent_id, tokens, tags) in enumerate(conllu_sentences(text)):
                lines.append("\t".join((section, split_of(index), sent_id, " ".join(tokens), " ".join(tags))))
    return {"turkish_pos.tsv": ("\n".join(lines) + "\n").encode("utf-8"), "LICENSE.turkish-treebanks": licence}


def build(folder):
    files = vader_files(download(*VADER, folder, binary=False))
    files.update(treebank_files(download(*TREEBANK, folder, binary=True)))
    for name, data in files.items():
        if sha256(data) != OUTPUT_SHA256[name]:
            raise SystemExit(f"{name}: built with sha256 {sha256(data)}, expected {OUTPUT_SHA256[name]}")
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="folder", type=Path, help="a folder holding the two archives (default: pip "
                                                                  "downloads them into a temporary folder)")
    parser.add_argument("--check", action="store_true", help="compare with the shipped files, write nothing")
    args = parser.parse_args(argv)
    if args.folder:
        files = build(args.folder)
    else:
        with tempfile.TemporaryDirectory() as folder:
            files = build(folder)
    differ = []
    for name, data in files.items():
        path = TARGET / name
        if args.check:
            same = path.exists() and path.read_bytes() == data
            print(f"{path.relative_to(SOLUTIONS.parent)}: {'identical' if same else 'DIFFERS'}")
            differ += [] if same else [name]
        else:
            path.write_bytes(data)
            print(f"wrote {path.relative_to(SOLUTIONS.parent)} ({len(data):,} bytes, sha256 {sha256(data)})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
