"""Mean losses over predictions on disk that need not fit in memory, with Dask.

Writes ``logits.npy`` (N, C) float32, ``labels.npy`` (N, C) float32 multi-label
targets in {0, 1} and ``classes.npy`` (N,) int64 class indices to a folder, then
computes, in one streaming pass over the files,

    F.binary_cross_entropy_with_logits(logits, labels)   # mean over N * C
    F.cross_entropy(logits, classes)                      # mean over N

on Dask arrays read block by block (``anyloss.stream.NpyRows``: plain file
reads of a block of rows, no memory map). Nothing is loaded whole: the peak
memory of the process is a few chunks (``--chunk-mb``), whatever the size on
disk. For one loss over two files, ``anyloss eval`` (``anyloss.stream.evaluate``)
does the same from the command line.

    python examples/out_of_core.py                  # 1 GB on disk, checked against NumPy in memory
    python examples/out_of_core.py --gb 32          # larger than this machine's free memory

Needs ``pip install -e ".[dask]"``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import tempfile
import time

import dask
import dask.array as da
import numpy as np

import anyloss.functional as F
from anyloss.stream import NpyRows  # a block of rows of a .npy file per read, no memory map

C = 1000  # classes (columns)


def write(folder: str, n: int, block_rows: int) -> None:
    """The three files, written block by block (random logits, random targets)."""
    rng = np.random.default_rng(0)
    files = {
        "logits": np.lib.format.open_memmap(os.path.join(folder, "logits.npy"), "w+", np.float32, (n, C)),
        "labels": np.lib.format.open_memmap(os.path.join(folder, "labels.npy"), "w+", np.float32, (n, C)),
        "classes": np.lib.format.open_memmap(os.path.join(folder, "classes.npy"), "w+", np.int64, (n,)),
    }
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        files["logits"][start:stop] = rng.standard_normal((stop - start, C), dtype=np.float32) * 3
        files["labels"][start:stop] = rng.random((stop - start, C), dtype=np.float32) < 0.1
        files["classes"][start:stop] = rng.integers(0, C, stop - start)
        for f in files.values():
            f.flush()
    del files


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="total size of the files on disk, in GB (default 1)")
    parser.add_argument("--chunk-mb", type=float, default=16.0, help="size of one chunk of logits, in MB (default 16)")
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temporary one, removed after)")
    args = parser.parse_args()

    n = int(args.gb * 1e9 / (C * 4 * 2 + 8))  # logits and labels float32, classes int64
    rows = max(1, int(args.chunk_mb * 1e6 / (C * 4)))
    folder = args.dir or tempfile.mkdtemp(prefix="anyloss-ooc-")
    os.makedirs(folder, exist_ok=True)
    try:
        t0 = time.perf_counter()
        # Written by a child process, so that this one's peak memory is the pass's alone.
        writer = multiprocessing.get_context("fork").Process(target=write, args=(folder, n, rows))
        writer.start()
        writer.join()
        on_disk = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"wrote {on_disk / 1e9:.2f} GB ({n} x {C} logits) in {time.perf_counter() - t0:.0f} s to {folder}")

        before = peak_mib()
        logits = da.from_array(NpyRows(os.path.join(folder, "logits.npy")), chunks=(rows, C))
        labels = da.from_array(NpyRows(os.path.join(folder, "labels.npy")), chunks=(rows, C))
        classes = da.from_array(NpyRows(os.path.join(folder, "classes.npy")), chunks=(rows,))
        bce = F.binary_cross_entropy_with_logits(logits, labels)  # lazy: nothing is read yet
        ce = F.cross_entropy(logits, classes)
        t0 = time.perf_counter()
        bce_value, ce_value = dask.compute(bce, ce)  # one pass over the files
        seconds = time.perf_counter() - t0
        print(f"binary_cross_entropy_with_logits (mean) = {float(bce_value):.6f}")
        print(f"cross_entropy (mean)                    = {float(ce_value):.6f}")
        print(
            f"{on_disk / 1e9:.2f} GB in {seconds:.1f} s ({on_disk / 1e9 / seconds:.2f} GB/s), "
            f"chunks of {rows * C * 4 / 2**20:.0f} MiB, {len(logits.chunks[0])} chunks"
        )
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        print(
            f"peak memory of this process: {peak_mib():.0f} MiB (before the pass: {before:.0f} MiB); "
            f"this machine's memory: {ram / 2**30:.1f} GiB"
        )

        if on_disk < 2e9:  # small enough to check against the same losses on NumPy in memory
            x = np.load(os.path.join(folder, "logits.npy"))
            y = np.load(os.path.join(folder, "labels.npy"))
            t = np.load(os.path.join(folder, "classes.npy"))
            np.testing.assert_allclose(float(bce_value), float(F.binary_cross_entropy_with_logits(x, y)), rtol=1e-5)
            np.testing.assert_allclose(float(ce_value), float(F.cross_entropy(x, t)), rtol=1e-5)
            print("checked: the same values as NumPy on the arrays in memory")
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
