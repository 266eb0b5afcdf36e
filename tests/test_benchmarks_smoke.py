"""Smoke tests of ``benchmarks/train_throughput.py`` and ``benchmarks/crf.py`` at their CPU size
(``--tiny``); no timing is checked, only that every part runs, that the FLOP counts agree with
the library's and that the CRF versions agree with each other."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from deeplab_ref.run_control import TrainingInterrupted

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
BENCHMARK = BENCHMARKS / "train_throughput.py"


def load_benchmark(path: Path = BENCHMARK):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_train_throughput_tiny(capsys):
    threads = torch.get_num_threads()
    rows = load_benchmark().main(["--tiny"])
    out = capsys.readouterr().out
    assert [row.model for row in rows] == ["DeepLab-v2 MSC", "DeepLab-v2"]
    for row in rows:
        assert math.isfinite(row.images_per_s) and row.images_per_s > 0
        # Two independent counts of the forward's convolutions: torch's FlopCounterMode and the
        # library's multiply_adds hooks (x 2 FLOPs per multiply-add).
        assert row.forward_flops == row.twice_multiply_adds > 0
        # Backward: input and weight gradients of every convolution, 2 x forward, less the
        # input gradient of each stem convolution (the images need none).
        assert row.forward_flops < row.backward_flops < 2 * row.forward_flops
    msc, single = rows
    assert msc.forward_flops > single.forward_flops  # scales 0.75 and 0.5 come on top
    assert "| DeepLab-v2 MSC  | fp32" in out and "| data workers |" in out
    assert torch.get_num_threads() == threads  # the benchmark leaves torch's settings alone


def test_train_throughput_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        load_benchmark().parse_args(["--batch", "0"])


def load_claims():
    path = BENCHMARK.parent / "claims.py"
    spec = importlib.util.spec_from_file_location("claims", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_claims_quick(tmp_path, capsys):
    claims = load_claims()
    runs = claims.main(
        ["--quick", "--only", "output_stride", "--out", str(tmp_path), "--figures", str(tmp_path)]
    )
    assert [(r["variant"], r["seed"]) for r in runs] == [
        (v, s) for v in ("OS 32", "OS 16", "OS 8") for s in (0, 1)
    ]
    fields = {"experiment", "variant", "scenes", "seed", "miou", "miou_crf", "band_miou"}
    assert all(fields | {"train_seconds", "parameters"} <= set(r) for r in runs)
    assert (tmp_path / "claims.json").is_file() and (
        tmp_path / "claims_output_stride.png"
    ).is_file()
    assert "| OS 8 |" in (tmp_path / "claims.md").read_text()
    (tmp_path / "claims.md").unlink()
    rebuilt = claims.main(["--report", "--out", str(tmp_path), "--figures", str(tmp_path)])
    assert rebuilt == runs
    # --resume keeps every run the file holds: nothing is trained again
    again = ["--quick", "--only", "output_stride", "--resume", "--out", str(tmp_path)]
    assert claims.main([*again, "--figures", str(tmp_path)]) == runs
    # without --resume or --overwrite the runs are never replaced
    with pytest.raises(SystemExit) as refused:
        claims.main(again[:3] + ["--out", str(tmp_path), "--figures", str(tmp_path)])
    assert refused.value.code == 2
    assert "--resume keeps them" in capsys.readouterr().err
    (tmp_path / "claims.json").write_text("[{")  # a damaged record: exit 2 naming the file
    with pytest.raises(SystemExit) as refused:
        claims.main([*again, "--figures", str(tmp_path)])
    assert refused.value.code == 2 and "claims.json" in capsys.readouterr().err
    assert "| OS 8 |" in (tmp_path / "claims.md").read_text()


def test_claims_interrupted_keeps_the_finished_runs(tmp_path, monkeypatch, capsys):
    claims = load_claims()
    finished = []

    def stopped_after_two(*args):
        if len(finished) == 2:
            raise TrainingInterrupted(1, "SIGINT")
        finished.append(args)
        return {"experiment": args[0], "variant": args[1].name, "seed": args[2]}

    monkeypatch.setattr(claims, "run_variant", stopped_after_two)
    with pytest.raises(SystemExit) as stopped:
        claims.main(["--quick", "--only", "output_stride", "--out", str(tmp_path)])
    assert stopped.value.code == 130
    assert "2 runs kept" in capsys.readouterr().err
    kept = json.loads((tmp_path / "claims.json").read_text())
    assert [(r["variant"], r["seed"]) for r in kept] == [("OS 32", 0), ("OS 32", 1)]


def test_crf_benchmark_tiny(capsys, tmp_path):
    threads = torch.get_num_threads()
    results = tmp_path / "crf.md"
    rows = load_benchmark(BENCHMARKS / "crf.py").main(["--tiny", "--results", str(results)])
    (row,) = rows["cpu"]
    for version in ("pydensecrf", "numpy", "torch", "torch 1 thread"):
        assert all(math.isfinite(t) and t > 0 for t in row[version])
    assert row["agree"] >= 0.999 and row["max_dq"] < 1e-2 and row["max_dq_numpy"] < 1e-2
    assert ("gpu" in rows) == torch.cuda.is_available()
    out = capsys.readouterr().out
    assert (
        "| 64x48, 3 labels, DeepLab, 5 it |" in out and out.strip() == results.read_text().strip()
    )
    assert torch.get_num_threads() == threads
