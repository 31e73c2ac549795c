"""``anyloss.stream``: a loss over arrays on disk, streamed through Dask.

    >>> import anyloss.stream
    >>> anyloss.stream.evaluate("mse_loss", "pred.npy", "target.npy")   # doctest: +SKIP
    0.2531...

:func:`open_array` opens a file as a Dask array split into blocks of rows (the
first axis); :func:`evaluate` opens an ``input`` and a ``target`` that way and
computes an anyloss loss over them in one pass, a few blocks in memory at a
time, on Dask's threaded scheduler or on a ``dask.distributed`` cluster. The
command ``anyloss eval`` is a thin layer over :func:`evaluate`.

What streams (read a block of rows at a time, memory bounded by the block size):

* ``.npy`` files (C order), read with plain file reads (:class:`NpyRows`);
* uncompressed ``.npz`` members (``np.savez``): a stored zip entry is the
  member's ``.npy`` bytes at an offset in the file, read the same way;
* Zarr stores (a directory, or a path ending in ``.zarr``), through
  ``dask.array.from_zarr`` (needs ``pip install 'anyloss[zarr]'``).

What does not stream: a compressed ``.npz`` member (``np.savez_compressed``;
deflate cannot start in the middle) and a Fortran-ordered ``.npy`` (a block of
rows is not contiguous on disk). The first is loaded whole, one member in
memory; the second is read through a memory map (correct, but the pages it
reads stay resident). Convert such files to ``.npy`` or Zarr for data larger
than memory.

``chunks`` is the block size, as rows per block (an int, or a string of
digits such as ``"10000"``) or as bytes per block of ``input`` (a string with
a unit: ``"64MiB"``, ``"16MB"``, ``"1GiB"``; ``kB``/``MB``/``GB`` are powers
of 1000, ``KiB``/``MiB``/``GiB`` of 1024). ``target`` is split at the same
rows as ``input``, so their blocks line up.

On a cluster, every worker reads the files itself: they must be at the same
path on every worker (a shared file system). Paths are made absolute first.

Needs ``pip install 'anyloss[dask]'`` (Dask, and distributed for clusters).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import struct
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np

from ._checks import describe, fail
from ._typing import Array

__all__ = ["NpyRows", "NpyRowsWriter", "open_array", "evaluate", "DEFAULT_CHUNKS"]

DEFAULT_CHUNKS = "64MiB"
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_LOCAL_SCHEDULERS = ("threads", "synchronous", "sync", "single-threaded", "processes")
_LARGE = 256 * 2**20  # bytes of input + target above which a progress bar is shown on a terminal


def _dask() -> Any:
    try:
        import dask.array as da
    except ImportError:
        raise ImportError("anyloss.stream needs Dask: pip install 'anyloss[dask]'") from None
    return da


def _read_npy_header(f: Any) -> Any:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` data at ``f``'s position; ``f`` is left at the data."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)  # 3.0 differs only in the text encoding of field names


class NpyRows:
    """A ``.npy`` file (or an uncompressed member ``key`` of a ``.npz``) read a
    block of rows at a time with plain file reads, for ``dask.array.from_array``.

    A memory map would keep every page it has read resident in this process,
    so its memory would grow with the file; ``np.fromfile`` at an offset reads
    the block and nothing else. Only C-ordered data qualifies (a block of rows
    must be contiguous on disk); :func:`open_array` handles the other cases.
    """

    def __init__(self, path: str, key: str | None = None) -> None:
        self.path = os.path.abspath(path)
        with open(self.path, "rb") as f:
            if key is None:
                self.shape, self.fortran_order, self.dtype = _read_npy_header(f)
                self.offset = f.tell()
            else:
                self.offset, (self.shape, self.fortran_order, self.dtype) = _npz_member_offset(f, key)
        self.ndim = len(self.shape)
        self.row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])

    def __getitem__(self, key: Any) -> Any:
        key = key if isinstance(key, tuple) else (key,)
        rows = range(*key[0].indices(self.shape[0]))
        if rows.step != 1:
            raise IndexError(f"NpyRows reads contiguous blocks of rows only; got the rows {rows}")
        count = len(rows) * self.row_bytes // self.dtype.itemsize
        block = np.fromfile(self.path, dtype=self.dtype, count=count, offset=self.offset + rows.start * self.row_bytes)
        return block.reshape((len(rows), *self.shape[1:]))[(slice(None),) + key[1:]]

    def __dask_tokenize__(self) -> Any:  # the same file, unchanged, gives the same Dask keys
        st = os.stat(self.path)
        return ("anyloss.NpyRows", self.path, self.offset, self.shape, self.dtype.str, st.st_mtime_ns, st.st_size)


def _npz_member_offset(f: Any, key: str) -> Any:
    """Offset in the zip file ``f`` of the data of the stored (uncompressed)
    member ``key``, and its ``.npy`` header."""
    with zipfile.ZipFile(f) as z:
        info = z.getinfo(key + ".npy")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"the member {key!r} is compressed")
        with z.open(info) as member:
            header = _read_npy_header(member)
            in_member = member.tell()
    # zipfile locates the member and NumPy reads its header; the offset of its data in
    # the file is read here by hand, on purpose. zipfile's own reader would do
    # (ZipFile.open(member), seek, readinto), but before Python 3.12 its seek reads and
    # discards every byte before the offset, so each block would cost all the rows
    # before it: reading a 1 GiB member in 64 MiB blocks took 4.8 s that way on 3.11,
    # against 0.4 s here (0.6 s on 3.12, whose seek is direct), and it grows with the
    # square of the size. The local file header: 30 fixed bytes, then the file name and
    # an extra field whose lengths (at bytes 26 and 28) may differ from the central
    # directory's.
    f.seek(info.header_offset)
    fixed = f.read(30)
    name_len, extra_len = struct.unpack("<HH", fixed[26:30])
    return info.header_offset + 30 + name_len + extra_len + in_member, header


class NpyRowsWriter:
    """The writing counterpart of :class:`NpyRows`: ``writer[rows] = block``
    writes a block of rows into a ``.npy`` file created with the full shape,
    by plain writes at an offset (so it also works from a cluster's workers,
    which a NumPy memory map, copied when pickled, would not)."""

    def __init__(self, path: str, shape: tuple[Any, ...], dtype: Any) -> None:
        self.path, self.shape, self.dtype = os.path.abspath(path), tuple(shape), np.dtype(dtype)
        mm = np.lib.format.open_memmap(self.path, mode="w+", dtype=self.dtype, shape=self.shape)
        self.offset = mm.offset
        del mm
        self.row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])

    def __setitem__(self, key: Any, value: Any) -> None:
        key = key if isinstance(key, tuple) else (key,)
        rows = range(*key[0].indices(self.shape[0]))
        if rows.step != 1 or any(
            k != slice(None) and k.indices(n) != (0, n, 1) for k, n in zip(key[1:], self.shape[1:])
        ):
            raise IndexError("NpyRowsWriter writes whole rows, contiguous blocks only")
        with open(self.path, "r+b") as f:
            f.seek(self.offset + rows.start * self.row_bytes)
            f.write(np.ascontiguousarray(value, dtype=self.dtype).tobytes())


def _rows_per_block(chunks: Any, row_bytes: int, arg: str) -> int:
    """Rows per block from ``chunks`` (rows, or a byte size with a unit)."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer, str)):
        fail(TypeError, arg, "be a number of rows (int) or a size such as '64MiB' (str)", describe(chunks))
    if isinstance(chunks, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*", chunks)
        if m is None or (m[2] == "" and "." in m[1]) or (m[2] and m[2].lower() not in _UNITS):
            fail(
                ValueError,
                arg,
                "be rows per block ('10000') or bytes with a unit "
                "('64MiB', '16MB'; units B, kB, MB, GB, KiB, MiB, GiB)",
                repr(chunks),
            )
        if m[2]:
            return max(1, int(float(m[1]) * _UNITS[m[2].lower()]) // max(1, row_bytes))
        chunks = int(m[1])
    if chunks < 1:
        fail(ValueError, arg, "be at least 1 row", chunks)
    return int(chunks)


def _kind(path: str, arg: str) -> str:
    if os.path.isdir(path) or path.rstrip("/").endswith(".zarr"):
        return "zarr"
    if not os.path.exists(path):
        fail(FileNotFoundError, arg, "be an existing .npy or .npz file or a Zarr store", f"{path!r} (no such file)")
    with open(path, "rb") as f:
        if f.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX:
            return "npy"
    if zipfile.is_zipfile(path):  # after the .npy test: is_zipfile looks for a record anywhere near the end
        return "npz"
    fail(ValueError, arg, "be a .npy or .npz file or a Zarr store", f"{path!r}, which is none of them")


def _pick_member(names: list[Any], key: Any, arg: str, key_arg: str, path: str) -> Any:
    """The member ``key`` of a ``.npz``/Zarr group: given, or the only one, or
    the one named like the argument (``input``, ``target``)."""
    if key is not None:
        if key not in names:
            fail(ValueError, key_arg, f"be one of the arrays in {path!r} ({', '.join(map(repr, names))})", repr(key))
        return key
    if len(names) == 1:
        return names[0]
    if arg in names:
        return arg
    fail(
        ValueError,
        key_arg,
        f"name one of the arrays in {path!r} ({', '.join(map(repr, names))}), "
        "which holds several" + (f" and none called {arg!r}" if arg in ("input", "target") else ""),
        None,
    )


def _check_dtype(dtype: Any, arg: str, path: str) -> None:
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        fail(
            TypeError,
            arg,
            "hold a real numeric dtype (boolean, integer or floating-point)",
            f"{path!r} of dtype {dtype}",
        )


def _open(path: Any, key: Any, chunks: Any, arg: str, key_arg: str) -> Any:
    """The Dask array behind ``open_array``, with messages naming ``arg``/``key_arg``."""
    da = _dask()
    if not isinstance(path, (str, os.PathLike)):
        fail(TypeError, arg, "be a path (str or os.PathLike)", describe(path))
    path = os.fspath(path)
    kind = _kind(path, arg)
    if kind == "zarr":
        return _open_zarr(da, path, key, chunks, arg, key_arg)
    try:
        if kind == "npy":
            if key is not None:
                fail(ValueError, key_arg, f"be None for a .npy file ({path!r} holds one array)", repr(key))
            src = NpyRows(path)
        else:
            with zipfile.ZipFile(path) as z:
                names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
                key = _pick_member(names, key, arg, key_arg, path)
                stored = z.getinfo(key + ".npy").compress_type == zipfile.ZIP_STORED
            if not stored:  # deflated: no random access, so the member is read whole
                with np.load(path) as z:
                    arr = z[key]
                _check_dtype(arr.dtype, arg, path)
                return da.from_array(arr, chunks=_row_chunks(arr.shape, chunks, arr.dtype, arg))
            src = NpyRows(path, key)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        if str(e).startswith("`"):  # already ours
            raise
        fail(ValueError, arg, "be a readable .npy or .npz file", f"{path!r} ({type(e).__name__}: {e})")
    _check_dtype(src.dtype, arg, path)
    if src.fortran_order and src.ndim > 1:  # rows are not contiguous: read through a memory map
        if kind == "npz":
            with np.load(path) as z:
                arr = z[key]
        else:
            arr = np.load(path, mmap_mode="r")
        return da.from_array(arr, chunks=_row_chunks(arr.shape, chunks, arr.dtype, arg))
    return da.from_array(
        src, chunks=_row_chunks(src.shape, chunks, src.dtype, arg), meta=np.empty((0,) * src.ndim, dtype=src.dtype)
    )


def _row_chunks(shape: Any, chunks: Any, dtype: Any, arg: Any) -> Any:
    """Dask chunks for an array of ``shape``: blocks of rows, whole along the other axes."""
    if len(shape) == 0:
        return ()
    if isinstance(chunks, tuple):  # row blocks given explicitly (another array's, to line up with it)
        if sum(chunks) != shape[0]:
            fail(ValueError, arg, f"have {sum(chunks)} rows, as many as the blocks given", f"shape {tuple(shape)}")
        return (chunks, *shape[1:])
    rows = _rows_per_block(chunks, np.dtype(dtype).itemsize * math.prod(shape[1:]), "chunks")
    return (min(rows, max(1, shape[0])), *shape[1:])


def _open_zarr(da: Any, path: Any, key: Any, chunks: Any, arg: Any, key_arg: Any) -> Any:
    try:
        import zarr
    except ImportError:
        raise ImportError(
            f"reading the Zarr store {path!r} (`{arg}`) needs zarr: pip install 'anyloss[zarr]'"
        ) from None
    try:
        node: Any = zarr.open(path, mode="r")  # an array or a group (then one of its members)
    except Exception as e:  # zarr raises several kinds for a missing or malformed store
        fail(
            FileNotFoundError if not os.path.exists(path) else ValueError,
            arg,
            "be an existing .npy or .npz file or a Zarr store",
            f"{path!r} ({type(e).__name__}: {e})",
        )
    if isinstance(node, zarr.Group):
        names = sorted(name for name, _ in node.arrays())
        node = node[_pick_member(names, key, arg, key_arg, path)]
    elif key is not None:
        fail(ValueError, key_arg, f"be None for a Zarr array ({path!r} holds one array)", repr(key))
    _check_dtype(np.dtype(node.dtype), arg, path)
    return da.from_zarr(node, chunks=_row_chunks(node.shape, chunks, node.dtype, arg))


def open_array(
    path: str | os.PathLike[str], *, key: str | None = None, chunks: int | str | tuple[int, ...] = DEFAULT_CHUNKS
) -> Any:
    """Open ``path`` as a lazy Dask array split into blocks of rows.

    Args:
        path: a ``.npy`` file, a ``.npz`` file, or a Zarr store (a directory, or
            a path ending in ``.zarr``; needs ``pip install 'anyloss[zarr]'``).
        key: which array of a ``.npz`` file or a Zarr group. Default: the only
            one (a ``ValueError`` lists them when there are several).
        chunks: rows per block (an int, or a string of digits), or the size of
            one block with a unit (``"64MiB"``, ``"16MB"``), or a tuple of
            block lengths along the rows (another array's ``.chunks[0]``).

    Returns:
        A ``dask.array.Array``; nothing is read until it is computed, and then
        one block of rows at a time (see the module docstring for the formats
        that are read whole instead).
    """
    return _open(path, key, chunks, "path", "key")


def _resolve_loss(loss: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(loss):
        return loss
    from ._spec import losses

    specs = losses()
    if not isinstance(loss, str) or loss not in specs:
        fail(
            ValueError if isinstance(loss, str) else TypeError,
            "loss",
            "be a callable or the name of a loss in anyloss.losses() (`anyloss list` shows them)",
            repr(loss),
        )
    functional = specs[loss].functional
    if functional is None:  # a LossSpec registered without a function to call
        fail(ValueError, "loss", "name a loss with a function to call", repr(loss))
    return functional


def _as_dask(da: Any, x: Any, key: Any, chunks: Any, arg: Any, key_arg: Any) -> Any:
    if isinstance(x, da.Array):
        return x
    if isinstance(x, np.ndarray):
        _check_dtype(x.dtype, arg, "the array")
        return da.from_array(x, chunks=_row_chunks(x.shape, chunks, x.dtype, arg))
    return _open(x, key, chunks, arg, key_arg)


def _scheduler(scheduler: Any) -> Any:
    """``(client or None, local scheduler name or None)``; the client is one we must close, or a given one."""
    if scheduler is None:
        return None, "threads"
    if isinstance(scheduler, str) and scheduler in _LOCAL_SCHEDULERS:
        return None, scheduler
    try:
        import distributed
    except ImportError:
        raise ImportError("a `scheduler` address needs dask.distributed: pip install 'anyloss[dask]'") from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, None
    if not isinstance(scheduler, str):
        fail(
            TypeError,
            "scheduler",
            "be a dask.distributed address (str), a Client or one of " + ", ".join(map(repr, _LOCAL_SCHEDULERS)),
            describe(scheduler),
        )
    try:
        return distributed.Client(scheduler, set_as_default=False), None
    except (OSError, TimeoutError, ValueError) as e:
        fail(
            ValueError,
            "scheduler",
            "be the address of a running dask.distributed scheduler",
            f"{scheduler!r} ({type(e).__name__}: {e})",
        )


def evaluate(
    loss: str | Callable[..., Any],
    input: str | os.PathLike[str] | Array,
    target: str | os.PathLike[str] | Array,
    *,
    reduction: Literal["none", "mean", "sum", "batchmean"] = "mean",
    chunks: int | str | tuple[int, ...] = DEFAULT_CHUNKS,
    input_key: str | None = None,
    target_key: str | None = None,
    scheduler: Any = None,
    progress: bool | None = None,
    output: Any = None,
    report: Callable[[str], None] | None = None,
    **options: Any,
) -> Any:
    """The loss over ``input`` and ``target`` on disk, streamed through Dask.

    Args:
        loss: a loss name from ``anyloss.losses()`` (built-in or registered,
            e.g. ``"cross_entropy"``), or a callable ``loss(input, target,
            reduction=..., **options)`` that takes Dask arrays.
        input, target: paths (``.npy``, ``.npz``, Zarr; see :func:`open_array`),
            or NumPy or Dask arrays. Their first axis is the one streamed and
            must have the same length (the batch of ``cross_entropy``).
        reduction: passed to the loss (``'mean'``, ``'sum'``, ``'none'``,
            ``kl_div``'s ``'batchmean'`` ...). With ``'none'``, the unreduced
            loss is returned as a NumPy array, or written to ``output``.
        chunks: rows per block, or the size of one block of ``input``
            (``"64MiB"``, the default); ``target`` is split at the same rows.
        input_key, target_key: the array to read from a ``.npz`` file or Zarr
            group holding several (default: the only one, or the one called
            ``input``/``target``).
        scheduler: ``None`` (Dask's threaded scheduler), a local scheduler name
            (``'synchronous'``, ``'processes'``), the address of a running
            ``dask.distributed`` scheduler (``'tcp://host:8786'``) or a
            ``distributed.Client``.
        progress: show a progress bar on stderr: ``True``, ``False``, or
            ``None`` (the default) for "when stderr is a terminal and the
            data exceed 256 MiB".
        output: with ``reduction='none'``, a ``.npy`` path to write the
            unreduced loss to, a block at a time (then returns ``output``).
        report: called with one line (rows, bytes, blocks, seconds) at the end.
        **options: the loss's own options (``label_smoothing=0.1``, ...). A
            NumPy array becomes a Dask array; a list of numbers, an array of
            ``input``'s floating dtype (``weight=[1.0, 2.0, 0.5]``).

    Returns:
        The reduced loss as a Python float (``'none'``: a NumPy array, or ``output``).

    Raises:
        FileNotFoundError, ValueError, TypeError naming the argument at fault;
        ImportError naming the extra to install when Dask or zarr is missing.
    """
    da = _dask()
    fn = _resolve_loss(loss)
    if not isinstance(chunks, tuple):
        _rows_per_block(chunks, 1, "chunks")  # a bad `chunks` is reported before any file is opened
    x = _as_dask(da, input, input_key, chunks, "input", "input_key")
    y = _as_dask(da, target, target_key, chunks, "target", "target_key")
    if x.ndim and y.ndim:
        if x.shape[0] != y.shape[0]:
            fail(
                ValueError,
                "target",
                f"have as many rows as `input` ({x.shape[0]}, shape {x.shape})",
                f"{y.shape[0]} rows (shape {y.shape})",
            )
        if y.chunks[0] != x.chunks[0]:  # split `target` at `input`'s rows, so that the blocks line up
            y = (
                y.rechunk({0: x.chunks[0]})
                if isinstance(target, da.Array)
                else _as_dask(da, target, target_key, x.chunks[0], "target", "target_key")
            )
    if output is not None and reduction != "none":
        fail(ValueError, "output", "be given only with reduction='none'", f"reduction={reduction!r}")
    options = {k: _option(da, v, x.dtype) for k, v in options.items()}

    result = fn(x, y, reduction=reduction, **options)  # lazy; the loss checks shapes, dtypes and options here
    nbytes = x.nbytes + y.nbytes
    show = (sys.stderr.isatty() and nbytes > _LARGE) if progress is None else bool(progress)
    client, local = _scheduler(scheduler)
    owned = client is not None and client is not scheduler
    t0 = time.perf_counter()
    try:
        if output is not None:
            value = _store(da, result, output, client, local, show)
        elif client is None:
            with _local_progress(show):
                (value,) = _dask_compute(result, local)
        else:
            future = client.compute(result)
            if show:
                _cluster_progress(client, future)
            value = future.result()
    finally:
        if owned:
            client.close()
    seconds = time.perf_counter() - t0
    if report is not None:
        rows = x.shape[0] if x.ndim else 1
        report(
            f"{rows} rows, {nbytes / 1e6:.1f} MB in {x.numblocks[0] if x.ndim else 1} block(s), "
            f"{seconds:.2f} s" + (f" on {scheduler}" if client is not None else "")
        )
    if output is not None:
        return value
    value = np.asarray(value)
    return float(value) if value.ndim == 0 and reduction != "none" else value


def _option(da: Any, value: Any, dtype: Any) -> Any:
    """A loss option for Dask arrays: a NumPy array becomes a Dask array; a list
    of numbers (``weight=[1, 2, 0.5]`` from the command line) one in ``input``'s
    floating dtype."""
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        value = np.asarray(value, dtype=dtype if np.dtype(dtype).kind == "f" else None)
    return da.from_array(value) if isinstance(value, np.ndarray) else value


def _dask_compute(result: Any, local: Any) -> Any:
    from dask.base import compute

    return compute(result, scheduler=local)


@contextlib.contextmanager
def _local_progress(show: bool) -> Iterator[Any]:
    if not show:
        yield
        return
    from dask.diagnostics.progress import ProgressBar

    with ProgressBar(out=sys.stderr):
        yield


def _cluster_progress(client: Any, future: Any) -> None:
    import distributed

    with contextlib.redirect_stdout(sys.stderr):  # distributed's text bar writes to stdout
        distributed.progress(future, notebook=False, multi=False, scheduler=client.scheduler.address)
    print(file=sys.stderr)


def _store(da: Any, result: Any, output: Any, client: Any, local: Any, show: Any) -> Any:
    """Write the unreduced loss to the ``.npy`` file ``output``, a block at a time."""
    if not isinstance(output, (str, os.PathLike)):
        fail(TypeError, "output", "be a path to a .npy file", describe(output))
    output = os.fspath(output)
    if result.ndim == 0:
        result = result[None]
    writer = NpyRowsWriter(output, result.shape, result.dtype)
    if result.ndim > 1 and len(result.chunks[1:]) and any(len(c) > 1 for c in result.chunks[1:]):
        result = result.rechunk({i: -1 for i in range(1, result.ndim)})
    stored = da.store(result, writer, lock=False, compute=False)
    if client is None:
        with _local_progress(show):
            stored.compute(scheduler=local)
    else:
        future = client.compute(stored)
        if show:
            _cluster_progress(client, future)
        future.result()
    return output
