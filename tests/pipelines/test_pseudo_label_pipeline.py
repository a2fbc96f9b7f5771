"""The pseudo-labeling pipeline: flag validation, input errors before Ray, and a small end-to-end run."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raykd.data import digits_table, to_numpy
from raykd.data.images import is_image_folder, pack_images, path_id, read_image_folder
from raykd.soft_targets import select_pseudo_labels

ROOT = Path(__file__).resolve().parents[2]


def load_pipeline(name: str):
    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", ROOT / "pipelines" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


pipeline = load_pipeline("pseudo_label")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--threshold", "1.5"], r"--threshold must be in \[0, 1\], got 1.5"),
        (["--per-class", "0"], r"--per-class must be >= 1, got 0"),
        (["--label-fraction", "0"], r"--label-fraction must be in \(0, 1\], got 0.0"),
        (["--label-fraction", "1"], r"nothing is left to pseudo-label"),
        (["--epochs", "0"], r"student.epochs \(--epochs\) must be >= 1, got 0"),
        (["--seed", "0,x"], r"--seed takes integers separated by commas"),
        (["--unlabeled", "/does/not/exist"], r"--unlabeled does not exist"),
    ],
)
def test_bad_flags_fail_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit):
        pipeline.parse_args(argv)
    assert re.search(message, capsys.readouterr().err)


def test_defaults_and_selection_flags_parse():
    cfg = pipeline.parse_args(["--seed", "0,1,2", "--threshold", "none", "--per-class", "40"])
    assert (cfg.seeds, cfg.threshold, cfg.per_class, cfg.label_fraction) == ([0, 1, 2], None, 40, 0.1)
    assert cfg.student.num_workers == 1 and cfg.teacher.params == {"combine": "mean_logits"}


def test_unlabeled_parquet_without_ids_fails_before_ray_starts(tmp_path):
    path = tmp_path / "unlabeled.parquet"
    pq.write_table(pa.table({f"pixel_{i}": [0.0, 1.0] for i in range(64)}), path)
    cfg = pipeline.parse_args(["--unlabeled", str(path), "--output", str(tmp_path / "run")])
    with pytest.raises(ValueError, match=r"has no id column 'id'.*--id-column"):
        pipeline.run(cfg)
    assert not (tmp_path / "run").exists()


def test_image_folder_packing_is_pure_and_stable(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.png").write_bytes(b"\x89PNG")
    assert is_image_folder(folder) and not is_image_folder(tmp_path / "missing")
    # ids hash the path under the folder, pixels scale to [0, 1] and flatten.
    batch = {"image": np.full((2, 8, 8), 255, dtype=np.uint8), "path": np.array([str(folder / "sub" / "a.png"), str(folder / "b.jpg")], dtype=object)}
    packed = pack_images(batch, str(folder))
    assert packed["path"].tolist() == ["sub/a.png", "b.jpg"]
    assert packed["id"].tolist() == [path_id("sub/a.png"), path_id("b.jpg")]
    assert (packed["id"] >= 0).all() and packed["x"].shape == (2, 64) and packed["x"].max() == 1.0


@pytest.mark.ray
def test_a_real_image_folder_reads_as_model_inputs(ray_session, tmp_path):
    from PIL import Image

    digits = digits_table()
    pixels = np.stack([digits.column(f"pixel_{i}").to_numpy() for i in range(64)], axis=1)[:6]
    folder = tmp_path / "unlabeled"
    folder.mkdir()
    for i, image in enumerate(pixels):
        Image.fromarray((image.reshape(8, 8) * 255).round().astype(np.uint8), mode="L").save(folder / f"digit{i}.png")
    rows = to_numpy(read_image_folder(folder, in_features=64))
    assert sorted(rows["id"].tolist()) == sorted(path_id(f"digit{i}.png") for i in range(6))
    by_name = {p: x for p, x in zip(rows["path"], rows["x"])}
    for i in range(6):
        np.testing.assert_allclose(by_name[f"digit{i}.png"], pixels[i], atol=1 / 255)


def test_labeled_subset_is_stratified_and_seeded():
    labels = np.repeat(np.arange(3), [30, 10, 4])
    mask = pipeline.labeled_subset(labels, 0.1, seed=0)
    assert np.bincount(labels[mask]).tolist() == [3, 1, 1]  # at least one per class
    np.testing.assert_array_equal(mask, pipeline.labeled_subset(labels, 0.1, seed=0))
    assert not np.array_equal(mask, pipeline.labeled_subset(labels, 0.1, seed=1))


@pytest.mark.ray
def test_small_run_writes_report_and_pseudo_labels(ray_session, tmp_path):
    out = tmp_path / "run"
    report = pipeline.run(
        pipeline.parse_args(
            ["--limit", "500", "--label-fraction", "0.2", "--teacher-epochs", "10", "--epochs", "1", "--threshold", "none", "--per-class", "8"]
            + ["--output", str(out)]
        )
    )
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["summary"]["gain"]["values"] == [report["runs"][0]["metrics"]["gain"]]
    assert {"seeds", "summary", "runs", "config", "seconds"} <= set(on_disk)
    run = on_disk["runs"][0]
    assert {"data", "teachers", "ensemble", "pseudo_labels", "student", "metrics", "seconds"} <= set(run)
    assert set(run["metrics"]) == {key for key, _ in pipeline.ROWS}
    assert {"data", "teachers", "pseudo_labels", "students", "total"} <= set(run["seconds"])
    for key in ("teacher_accuracy", "pseudo_accuracy_all", "pseudo_accuracy_accepted", "acceptance_rate", "student_labeled_only", "student_with_pseudo"):
        assert 0.0 <= run["metrics"][key] <= 1.0, key

    table = pq.read_table(out / "pseudo_labels.parquet")
    expected = {
        "id": pa.int64(), "pseudo_label": pa.int64(), "confidence": pa.float32(), "entropy": pa.float32(),
        "disagreement": pa.float32(), "member_kl": pa.float32(), "accepted": pa.bool_(),
    }  # fmt: skip
    assert {f.name: f.type for f in table.schema} == expected
    data = run["data"]
    assert table.num_rows == data["unlabeled"] == data["train"] - data["labeled"]
    accepted = table.column("accepted").to_numpy(zero_copy_only=False)
    labels = table.column("pseudo_label").to_numpy()
    expected_mask = select_pseudo_labels(labels, table.column("confidence").to_numpy(), per_class=8, ids=table.column("id").to_numpy())
    np.testing.assert_array_equal(accepted, expected_mask)
    assert np.bincount(labels[accepted]).max() == 8
    assert run["pseudo_labels"]["accepted"] == int(accepted.sum())
    assert run["student"]["rows"]["with_pseudo"] == data["labeled"] + int(accepted.sum())
    assert "| student, labeled + pseudo (test)" in (out / "report.md").read_text()
