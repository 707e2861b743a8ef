"""SHA-256 of every output of the examples, in memory, by tiles and on a dask cluster.

Issue 13 (one rulebook, many engines) must not change a byte of any output. This script
runs every example of ``examples/`` through the command line of one checkout, with each
engine, and writes the SHA-256 of every file written. Run it on the code before a redesign
and after it, then compare the two JSON files::

    python benchmarks/redesign/digests.py --json /tmp/before.json          # old code
    python benchmarks/redesign/digests.py --json /tmp/after.json           # new code
    python benchmarks/redesign/digests.py --compare /tmp/before.json /tmp/after.json

Outputs record the paths of their inputs and of their run folder (provenance, GeoTIFF tags),
so every run reads its inputs through the same link (``<work>/root`` -> the checkout) and
writes to the same folder, whichever checkout is measured. The package imported is the one
in ``<checkout>/src`` (``PYTHONPATH``), not whatever is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = Path("/tmp/pari_geo_digests")

# (name, command, example, extra options); the tiled runs use a small tile so that the
# tile seams cross the sample grids many times
RUNS: list[tuple[str, str, str, list[str]]] = [
    ("belgium_degurba.memory", "classify", "belgium_degurba.toml", ["--engine", "memory"]),
    ("belgium_degurba.tiled", "classify", "belgium_degurba.toml",
     ["--engine", "tiled", "--tile", "64x96"]),
    ("belgium_degurba.dask", "classify", "belgium_degurba.toml",
     ["--engine", "tiled", "--tile", "64x96", "--scheduler", "{scheduler}"]),
    ("ostergotland_nordic7.memory", "classify", "ostergotland_nordic7.toml",
     ["--engine", "memory"]),
    ("ostergotland_nordic7.tiled", "classify", "ostergotland_nordic7.toml",
     ["--engine", "tiled", "--tile", "64x96"]),
    ("ostergotland_nordic7.dask", "classify", "ostergotland_nordic7.toml",
     ["--engine", "tiled", "--tile", "64x96", "--scheduler", "{scheduler}"]),
    ("ostergotland_run.memory", "run", "ostergotland_run.toml", ["--engine", "memory"]),
    ("ostergotland_run.tiled", "run", "ostergotland_run.toml",
     ["--engine", "tiled", "--tile", "64x96"]),
    ("belgium_prepare", "prepare", "belgium_prepare.toml", []),
]


def _example(root: Path, name: str, out: Path, tiled: bool) -> Path:
    """The example run file, reading through the link and writing to ``out`` (with the
    tiled engine without the tables by unit, which need the class raster in memory)."""
    text = (root / "examples" / name).read_text(encoding="utf-8")
    link = WORK / "root"
    text = text.replace('"../', f'"{link.as_posix()}/')
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("dir =") and "/out/" in line:
            line = f'dir = "{out.as_posix()}"'
            if tiled:
                line += "\nunits_table = false"
        lines.append(line)
    path = WORK / "runfiles" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _digests(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _degurba_grid(env: dict[str, str], out: Path, extra: list[str]) -> None:
    data = WORK / "root" / "data" / "sample_grids" / "belgium"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pari_geo.cli", "degurba", "grid",
           "--population", str(data / "POP.tif"), "--built", str(data / "BUILT_S.tif"),
           "--land", str(data / "LAND.tif"), "--level", "2",
           "--out", str(out / "l2.tif"), "--map", str(out / "l2.png"),
           "--table", str(out / "l2.csv"), "--overwrite", *extra]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def measure(root: Path, only: set[str] | None) -> dict[str, dict[str, str]]:
    """Run every example of checkout ``root``; one measurement at a time on this machine
    (every checkout writes to the same folders), so a second waits for the first."""
    import fcntl

    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _measure(root, only)


def _measure(root: Path, only: set[str] | None) -> dict[str, dict[str, str]]:
    link = WORK / "root"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(root)
    env = dict(os.environ, PYTHONPATH=str(root / "src"), PARI_GEO_NO_PROGRESS="1")
    import distributed

    results: dict[str, dict[str, str]] = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        for name, command, example, extra in RUNS:
            if only and name not in only:
                continue
            out = WORK / "out" / name
            if out.exists():
                shutil.rmtree(out)
            run_file = _example(root, example, out, "tiled" in extra)
            opts = [o.format(scheduler=cluster.scheduler_address) for o in extra]
            cmd = [sys.executable, "-m", "pari_geo.cli", command, str(run_file),
                   "--overwrite", "--quiet", *opts]
            print("running", name, flush=True)
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
            results[name] = _digests(out)
        for name, extra in (("degurba_grid.memory", ["--engine", "memory"]),
                            ("degurba_grid.tiled", ["--engine", "tiled", "--tile", "64x96"]),
                            ("degurba_grid.dask", ["--engine", "tiled", "--tile", "64x96",
                                                   "--scheduler",
                                                   cluster.scheduler_address])):
            if only and name not in only:
                continue
            out = WORK / "out" / name
            if out.exists():
                shutil.rmtree(out)
            print("running", name, flush=True)
            _degurba_grid(env, out, extra)
            results[name] = _digests(out)
    return results


def compare(a: dict, b: dict) -> int:
    bad = 0
    skipped = sorted(set(a) ^ set(b))
    if skipped:
        print(f"measured on one side only (not compared): {', '.join(skipped)}")
    for run in sorted(set(a) & set(b)):
        fa, fb = a[run], b[run]
        for f in sorted(set(fa) | set(fb)):
            if fa.get(f) != fb.get(f):
                bad += 1
                print(f"DIFFERS {run}/{f}: {fa.get(f, 'missing')[:12]} vs "
                      f"{fb.get(f, 'missing')[:12]}")
    both = set(a) & set(b)
    n = sum(len(a[r]) for r in both)
    print(f"{n} files in {len(both)} runs compared; {bad} differ")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to measure")
    ap.add_argument("--json", type=Path, help="write the digests here")
    ap.add_argument("--only", nargs="*", help="run only these names")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        return compare(a["runs"], b["runs"])
    runs = measure(args.root.resolve(), set(args.only) if args.only else None)
    rev = subprocess.run(["git", "-C", str(args.root), "rev-parse", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    doc = {"commit": rev, "runs": runs}
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
