"""`anyloss eval` and `anyloss.stream`: losses over files, streamed through Dask,
against PyTorch on the same arrays in memory."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from anyloss.cli import main

da = pytest.importorskip("dask.array")
torch = pytest.importorskip("torch")
stream = pytest.importorskip("anyloss.stream")

N, C = 103, 7  # with chunks of 10 rows: 11 blocks, the last one of 3 rows
ROWS = "10"


def _arrays():
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((N, C)) * 2).astype(np.float32)
    classes = rng.integers(0, C, N)
    classes[::9] = -1  # ignored with ignore_index=-1
    return {
        "mse_loss": (logits, rng.standard_normal((N, C)).astype(np.float32), {}, "mean"),
        "cross_entropy": (logits, classes, {"ignore_index": -1, "label_smoothing": 0.1}, "mean"),
        "binary_cross_entropy_with_logits": (logits, rng.uniform(0, 1, (N, C)).astype(np.float32), {}, "sum"),
        "kl_div": (np.log(rng.dirichlet(np.ones(C), N)), rng.dirichlet(np.ones(C), N), {}, "batchmean"),
    }


CASES = _arrays()


def _torch(name, x, t, options, reduction):
    fn = getattr(torch.nn.functional, name)
    return fn(torch.from_numpy(x), torch.from_numpy(t), reduction=reduction, **options).numpy()


def _write(fmt, folder, x, t):
    """``(input, target, extra CLI arguments)`` for the arrays written in format ``fmt``."""
    if fmt == "npy":
        np.save(folder / "input.npy", x)
        np.save(folder / "target.npy", t)
        return str(folder / "input.npy"), str(folder / "target.npy"), []
    if fmt == "npz":  # uncompressed: streamed; the members' names pick them
        np.savez(folder / "data.npz", input=x, target=t)
        return str(folder / "data.npz"), str(folder / "data.npz"), []
    if fmt == "npz_compressed":  # read whole; other names, given by the keys
        np.savez_compressed(folder / "data.npz", a=x, b=t)
        return str(folder / "data.npz"), str(folder / "data.npz"), ["--input-key", "a", "--target-key", "b"]
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(folder / "data.zarr"), mode="w")
    group.create_array("input", data=x, chunks=(16, *x.shape[1:]))  # the store's chunks are not ours
    group.create_array("target", data=t, chunks=(16, *t.shape[1:]))
    return str(folder / "data.zarr"), str(folder / "data.zarr"), []


def _params(options):
    return [a for k, v in options.items() for a in ("--param", f"{k}={v!r}")]


@pytest.mark.parametrize("fmt", ["npy", "npz", "npz_compressed", "zarr"])
@pytest.mark.parametrize("name", list(CASES))
def test_cli_matches_torch(name, fmt, tmp_path, capsys):
    x, t, options, reduction = CASES[name]
    inp, tgt, keys = _write(fmt, tmp_path, x, t)
    code = main(
        [
            "eval",
            name,
            "--input",
            inp,
            "--target",
            tgt,
            "--chunks",
            ROWS,
            "--reduction",
            reduction,
            *keys,
            *_params(options),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    value = float(out)
    np.testing.assert_allclose(value, _torch(name, x, t, options, reduction), rtol=1e-5)
    np.testing.assert_allclose(value, float(getattr(F, name)(x, t, reduction=reduction, **options)), rtol=1e-5)
    assert f"{N} rows" in err and "11 block(s)" in err


def test_evaluate_reductions_and_sizes(tmp_path):
    x, t, options, _ = CASES["cross_entropy"]
    inp, tgt, _ = _write("npy", tmp_path, x, t)
    for reduction in ("mean", "sum"):
        for chunks in (1, 10, "10", "1KiB", "1kB", "64MiB"):
            value = stream.evaluate("cross_entropy", inp, tgt, reduction=reduction, chunks=chunks, **options)
            assert isinstance(value, float)
            np.testing.assert_allclose(value, _torch("cross_entropy", x, t, options, reduction), rtol=1e-5)
    unreduced = stream.evaluate("cross_entropy", inp, tgt, reduction="none", chunks=10, **options)
    np.testing.assert_allclose(unreduced, _torch("cross_entropy", x, t, options, "none"), rtol=1e-5)


def test_class_weight_from_the_command_line(tmp_path, capsys):
    x, t, _, _ = CASES["cross_entropy"]
    inp, tgt, _ = _write("npy", tmp_path, x, t)
    weight = [0.5, 1.0, 2.0, 1.5, 1.0, 0.25, 3.0]
    assert (
        main(
            [
                "eval",
                "cross_entropy",
                "--input",
                inp,
                "--target",
                tgt,
                "--chunks",
                ROWS,
                "--param",
                f"weight={weight}",
                "--param",
                "ignore_index=-1",
            ]
        )
        == 0
    )
    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(x), torch.from_numpy(t), ignore_index=-1, weight=torch.tensor(weight, dtype=torch.float32)
    )
    np.testing.assert_allclose(float(capsys.readouterr().out), float(expected), rtol=1e-5)


def test_unreduced_loss_written_block_by_block(tmp_path, capsys):
    x, t, _, _ = CASES["binary_cross_entropy_with_logits"]
    inp, tgt, _ = _write("npy", tmp_path, x, t)
    out = tmp_path / "loss.npy"
    assert (
        main(
            [
                "eval",
                "binary_cross_entropy_with_logits",
                "--input",
                inp,
                "--target",
                tgt,
                "--chunks",
                ROWS,
                "--reduction",
                "none",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert "wrote the unreduced loss" in capsys.readouterr().err
    np.testing.assert_allclose(
        np.load(out), _torch("binary_cross_entropy_with_logits", x, t, {}, "none"), rtol=1e-5, atol=1e-7
    )


def test_callable_and_registered_losses(tmp_path):
    x, t, _, _ = CASES["mse_loss"]
    inp, tgt, _ = _write("npy", tmp_path, x, t)
    expected = float(torch.nn.functional.l1_loss(torch.from_numpy(x), torch.from_numpy(t)))
    value = stream.evaluate(lambda a, b, reduction: F.l1_loss(a, b, reduction=reduction), inp, tgt, chunks=10)
    np.testing.assert_allclose(value, expected, rtol=1e-5)

    def eval_test_abs_loss(xp, input, target, *, scale=1.0):
        return scale * xp.abs(input - target)

    anyloss.register(eval_test_abs_loss)
    try:
        value = stream.evaluate("eval_test_abs_loss", inp, tgt, chunks=10, scale=2.0)
    finally:
        anyloss.unregister("eval_test_abs_loss")
    np.testing.assert_allclose(value, 2 * expected, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["npy", "npz", "npz_compressed", "zarr", "fortran", "1d", "bool"])
def test_open_array_reads_the_same_numbers(fmt, tmp_path):
    x = CASES["kl_div"][0]
    key = None
    if fmt == "npy":
        np.save(tmp_path / "a.npy", x)
        path = tmp_path / "a.npy"
    elif fmt in ("npz", "npz_compressed"):
        (np.savez if fmt == "npz" else np.savez_compressed)(tmp_path / "a.npz", other=x[:3], x=x)
        path, key = tmp_path / "a.npz", "x"
    elif fmt == "zarr":
        zarr = pytest.importorskip("zarr")
        path = tmp_path / "a.zarr"
        zarr.create_array(str(path), shape=x.shape, chunks=(16, C), dtype=x.dtype)[:] = x
    elif fmt == "fortran":
        np.save(tmp_path / "a.npy", np.asfortranarray(x))
        path = tmp_path / "a.npy"
    else:
        x = x[:, 0] if fmt == "1d" else x > -2
        np.save(tmp_path / "a.npy", x)
        path = tmp_path / "a.npy"
    a = stream.open_array(path, key=key, chunks=10)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.chunks[0] == (10,) * 10 + (3,)
    np.testing.assert_array_equal(a.compute(), x)


@pytest.mark.parametrize("fmt", ["npy", "npz"])
def test_files_are_read_a_block_at_a_time(fmt, tmp_path):
    """No task of the computation holds more than one block of rows of the file."""
    from dask.diagnostics import Callback

    x, t, _, _ = CASES["mse_loss"]
    if fmt == "npy":
        np.save(tmp_path / "x.npy", x)
        path = tmp_path / "x.npy"
    else:
        np.savez(tmp_path / "x.npz", x=x)
        path = tmp_path / "x.npz"
    a = stream.open_array(path, chunks=10)
    assert a.numblocks == (11, 1)
    # The graph holds a reader, none of the data (as it would for a compressed .npz, read whole).
    assert not any(isinstance(getattr(v, "value", v), np.ndarray) for v in dict(a.__dask_graph__()).values())
    sizes = []

    class Sizes(Callback):
        def _posttask(self, key, result, dsk, state, id):
            if isinstance(result, np.ndarray):
                sizes.append(result.nbytes)

    with Sizes():
        total = F.mse_loss(a, da.from_array(t, chunks=(10, C)), reduction="sum").compute(
            scheduler="threads", optimize_graph=False
        )
    np.testing.assert_allclose(float(total), float(F.mse_loss(x, t, reduction="sum")), rtol=1e-5)
    assert max(sizes) <= 10 * C * x.itemsize < x.nbytes
    assert sizes.count(10 * C * x.itemsize) >= 10  # the blocks were read


def test_compressed_npz_is_read_whole(tmp_path):
    """What the docs say: a deflated member cannot be read at an offset, so it is loaded at open."""
    x = CASES["mse_loss"][0]
    np.savez_compressed(tmp_path / "x.npz", x=x)
    a = stream.open_array(tmp_path / "x.npz", chunks=10)
    assert a.numblocks == (11, 1)
    assert any(isinstance(getattr(v, "value", v), np.ndarray) for v in dict(a.__dask_graph__()).values())


def test_chunks_as_bytes(tmp_path):
    x = CASES["mse_loss"][0]
    np.save(tmp_path / "x.npy", x)
    row = C * x.itemsize  # 28 bytes
    assert stream.open_array(tmp_path / "x.npy", chunks="280B").chunks[0][0] == 10
    assert stream.open_array(tmp_path / "x.npy", chunks="1KiB").chunks[0][0] == 1024 // row
    assert stream.open_array(tmp_path / "x.npy", chunks="1kB").chunks[0][0] == 1000 // row
    assert stream.open_array(tmp_path / "x.npy", chunks="1B").chunks[0][0] == 1  # at least one row
    assert stream.open_array(tmp_path / "x.npy").numblocks[0] == 1


def test_progress_bar_when_asked(tmp_path, capsys):
    x, t, _, _ = CASES["mse_loss"]
    inp, tgt, _ = _write("npy", tmp_path, x, t)
    args = ["eval", "mse_loss", "--input", inp, "--target", tgt, "--chunks", ROWS]
    assert main([*args, "--progress"]) == 0
    out, err = capsys.readouterr()
    assert "100% Completed" in err and "Completed" not in out
    for flag in ([], ["--no-progress"]):  # stderr is not a terminal here: no bar by default
        assert main([*args, *flag]) == 0
        assert "Completed" not in capsys.readouterr().err


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        yield cluster
        time.sleep(0.3)  # let the progress bars' feeds on the scheduler notice they are closed


@pytest.mark.integration
def test_on_a_distributed_cluster(cluster, tmp_path, capsys):
    name = "cross_entropy"
    x, t, options, reduction = CASES[name]
    inp, tgt, _ = _write("npy", tmp_path, x, t)
    assert (
        main(
            [
                "eval",
                name,
                "--input",
                inp,
                "--target",
                tgt,
                "--chunks",
                ROWS,
                "--scheduler",
                cluster.scheduler_address,
                "--progress",
                *_params(options),
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    np.testing.assert_allclose(float(out), _torch(name, x, t, options, reduction), rtol=1e-5)
    assert "% Completed" in err and cluster.scheduler_address in err

    path = stream.evaluate(
        "mse_loss",
        inp,
        inp,
        reduction="none",
        chunks=10,
        scheduler=cluster.scheduler_address,
        output=tmp_path / "zero.npy",
    )
    np.testing.assert_array_equal(np.load(path), np.zeros_like(x))


def _fails(args, capsys, *words):
    assert main(["eval", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    for w in words:
        assert w in err, err
    return err


def test_errors(tmp_path, capsys):
    x, t, _, _ = CASES["cross_entropy"]
    inp, tgt, _ = _write("npy", tmp_path, x, t)
    ok = ["--input", inp, "--target", tgt]
    missing = str(tmp_path / "missing.npy")
    _fails(["mse_loss", "--input", missing, "--target", tgt], capsys, "`input`", "no such file")
    _fails(["mse_loss", "--input", inp, "--target", missing], capsys, "`target`", "no such file")
    (tmp_path / "notes.txt").write_text("not an array")
    _fails(["mse_loss", "--input", str(tmp_path / "notes.txt"), "--target", tgt], capsys, "`input`", ".npy")
    (tmp_path / "cut.npy").write_bytes((tmp_path / "input.npy").read_bytes()[:40])
    _fails(["mse_loss", "--input", str(tmp_path / "cut.npy"), "--target", tgt], capsys, "`input`")
    np.save(tmp_path / "short.npy", t[:50])
    _fails(
        ["cross_entropy", "--input", inp, "--target", str(tmp_path / "short.npy")],
        capsys,
        "`target`",
        f"as many rows as `input` ({N}",
        "50 rows",
    )
    _fails(["no_such_loss", *ok], capsys, "`loss`", "anyloss list")
    _fails(["cross_entropy", *ok, "--reduction", "avg"], capsys, "`reduction`", "'avg'")
    _fails(["cross_entropy", *ok, "--reduction", "batchmean"], capsys, "`reduction`")
    _fails(["cross_entropy", *ok, "--param", "no_such_option=1"], capsys, "no_such_option")
    _fails(["cross_entropy", *ok, "--param", "label_smoothing"], capsys, "`--param`", "NAME=VALUE")
    _fails(["cross_entropy", *ok, "--param", "label_smoothing=2.0"], capsys, "`label_smoothing`")
    for chunks in ("0", "1.5", "12 parsecs", "MiB"):
        _fails(["cross_entropy", *ok, "--chunks", chunks], capsys, "`chunks`", repr(chunks) if chunks != "0" else "")
    _fails(["cross_entropy", *ok, "--output", str(tmp_path / "o.npy")], capsys, "`output`", "reduction='none'")
    # dtypes: integer logits, an object array, complex numbers
    np.save(tmp_path / "int.npy", t[:, None].repeat(C, 1))
    _fails(["cross_entropy", "--input", str(tmp_path / "int.npy"), "--target", tgt], capsys, "`input`", "int64")
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]] * N, dtype=object), allow_pickle=True)
    _fails(["mse_loss", "--input", str(tmp_path / "obj.npy"), "--target", inp], capsys, "`input`", "object")
    np.save(tmp_path / "complex.npy", x.astype(np.complex64))
    _fails(["mse_loss", "--input", inp, "--target", str(tmp_path / "complex.npy")], capsys, "`target`", "complex64")
    # .npz members
    np.savez(tmp_path / "two.npz", a=x, b=x)
    _fails(["mse_loss", "--input", str(tmp_path / "two.npz"), "--target", inp], capsys, "`input_key`", "'a', 'b'")
    _fails(
        ["mse_loss", "--input", str(tmp_path / "two.npz"), "--input-key", "c", "--target", inp],
        capsys,
        "`input_key`",
        "'c'",
    )
    _fails(["mse_loss", *ok, "--input-key", "a"], capsys, "`input_key`", ".npy")


def test_library_errors(tmp_path):
    x, t, _, _ = CASES["cross_entropy"]
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(TypeError, match="`chunks`"):
        stream.open_array(tmp_path / "x.npy", chunks=2.5)
    with pytest.raises(TypeError, match="`path`"):
        stream.open_array(x)
    with pytest.raises(TypeError, match="`loss`"):
        stream.evaluate(3, x, t)
    with pytest.raises(TypeError, match="`scheduler`"):
        stream.evaluate("cross_entropy", x, t, scheduler=42)


def test_unreachable_scheduler(tmp_path, capsys):
    import dask

    pytest.importorskip("distributed")
    x, t, _, _ = CASES["cross_entropy"]
    inp, tgt, _ = _write("npy", tmp_path, x, t)
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        _fails(
            ["cross_entropy", "--input", inp, "--target", tgt, "--scheduler", "tcp://127.0.0.1:9"],
            capsys,
            "`scheduler`",
            "tcp://127.0.0.1:9",
        )


def test_missing_extras_are_named(tmp_path, capsys, monkeypatch):
    x, t, _, _ = CASES["cross_entropy"]
    inp, tgt, _ = _write("zarr" if _has("zarr") else "npy", tmp_path, x, t)
    if _has("zarr"):
        monkeypatch.setitem(sys.modules, "zarr", None)
        _fails(["cross_entropy", "--input", inp, "--target", tgt], capsys, "pip install 'anyloss[zarr]'")
    monkeypatch.setitem(sys.modules, "dask.array", None)
    _fails(["cross_entropy", "--input", inp, "--target", tgt], capsys, "pip install 'anyloss[dask]'")


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def test_import_anyloss_does_not_import_dask():
    code = "import sys, anyloss, anyloss.cli, anyloss.stream; print('dask' in sys.modules, 'zarr' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]


def test_tooling_modules_are_attributes_of_the_package():
    import importlib

    import anyloss

    for name in ("stream", "plot", "compat"):
        assert getattr(anyloss, name) is importlib.import_module(f"anyloss.{name}")
    with pytest.raises(AttributeError):
        anyloss.no_such_module  # noqa: B018
