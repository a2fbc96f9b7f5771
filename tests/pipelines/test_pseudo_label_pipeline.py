"""The pseudo-labeling run: config errors, input errors before Ray, pure helpers, and a small end-to-end run."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raykd.config import ConfigError, PseudoLabelConfig, load_config
from raykd.data import InputSpec, digits_table, resolve_inputs, to_numpy
from raykd.data.images import is_image_folder, pack_images, path_id, read_image_folder
from raykd.soft_targets import select_pseudo_labels
from raykd.stages.pseudo_label import (
    ROWS,
    check_unlabeled,
    keep_ids,
    known_labels,
    labeled_subset,
    pseudo_label_summary,
    run_pseudo_label,
)


def config(argv: list[str]) -> PseudoLabelConfig:
    return load_config(argv, PseudoLabelConfig)  # type: ignore[return-value]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--threshold", "1.5"], r"^pseudo_label\.threshold \(--threshold\): .*less than or equal to 1"),
        (["--per-class", "0"], r"^pseudo_label\.per_class \(--per-class\): .*greater than or equal to 1"),
        (["--label-fraction", "0"], r"^pseudo_label\.label_fraction \(--label-fraction\): .*greater than 0"),
        (["--label-fraction", "1"], r"^pseudo_label\.label_fraction \(--label-fraction\): .*nothing is left to pseudo-label"),
        (["--epochs", "0"], r"^student\.epochs \(--epochs\): .*greater than or equal to 1"),
        (["--seeds", "0,x"], r"^pseudo_label\.seeds.*valid integer"),
        (["--seeds", "0,0"], r"pseudo_label\.seeds \(--seeds\): .*must list distinct integers"),
        (["--unlabeled", "/does/not/exist"], r"^pseudo_label\.unlabeled \(--unlabeled\): '/does/not/exist' does not exist"),
        (["--teacher-kind", "Pretrained"], r"^teacher\.kind \(--teacher-kind\): .*must be Ensemble"),
    ],
)
def test_bad_flags_fail_naming_the_field_and_flag(argv, message):
    with pytest.raises(ConfigError) as err:
        config(argv)
    assert re.search(message, str(err.value)), str(err.value)


def test_defaults_and_selection_flags_parse():
    cfg = config(["--seeds", "0,1,2", "--set", "pseudo_label.threshold=null", "--per-class", "40"])
    p = cfg.pseudo_label
    assert (p.seeds, p.threshold, p.per_class, p.label_fraction, p.students) == ([0, 1, 2], None, 40, 0.1, True)
    assert cfg.student.num_workers == 1 and cfg.student.baseline is False and cfg.teacher.epochs == 60
    assert config(["--no-students"]).pseudo_label.students is False
    assert config([]).pseudo_label.seeds is None  # the run then uses [seed]


def test_a_student_flag_keeps_the_pseudo_label_student_defaults():
    cfg = config(["--epochs", "3"])
    assert (cfg.student.epochs, cfg.student.num_workers, cfg.student.baseline) == (3, 1, False)


def test_unlabeled_parquet_with_missing_features_fails_before_ray_starts(tmp_path):
    path = tmp_path / "unlabeled.parquet"
    pq.write_table(pa.table({"id": [1, 2], **{f"pixel_{i}": [0.0, 1.0] for i in range(10)}}), path)
    cfg = config(["--unlabeled", str(path), "--output", str(tmp_path / "run")])
    with pytest.raises(ValueError, match=r"lacks feature columns \['pixel_10'.*--feature-columns"):
        run_pseudo_label(cfg)
    assert not (tmp_path / "run").exists()


def test_unlabeled_image_folder_needs_square_inputs(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG")
    flat = resolve_inputs(InputSpec(feature_columns=tuple(f"pixel_{i}" for i in range(60))))
    with pytest.raises(ValueError, match=r"square model input.*60 features"):
        check_unlabeled(str(folder), flat)
    assert check_unlabeled(str(folder), resolve_inputs(InputSpec())) is None


def _unlabeled_parts(root, with_ids: bool):
    """Unlabeled digits over two files (one with two row groups), features + the true label."""
    digits = digits_table().slice(0, 30).drop_columns(["id"])
    root.mkdir()
    tables = {"b.parquet": digits.slice(20, 10), "a.parquet": digits.slice(0, 20)}
    for name, table in tables.items():
        if with_ids:
            start = 0 if name == "a.parquet" else 20
            table = table.append_column("id", pa.array(np.arange(start, start + table.num_rows, dtype=np.int64) * 7 + 3))
        pq.write_table(table, root / name, row_group_size=12)
    return digits.column("label").to_numpy()


def test_known_labels_follow_the_resolved_ids(tmp_path):
    labeled = resolve_inputs(InputSpec())
    truth = _unlabeled_parts(tmp_path / "positional", with_ids=False)
    positional = check_unlabeled(str(tmp_path / "positional"), labeled)
    assert positional.positional_ids and positional.feature_columns == labeled.feature_columns
    ids, labels = known_labels(positional, "label")
    np.testing.assert_array_equal(ids, np.arange(30))  # files in sorted path order, rows in file order
    np.testing.assert_array_equal(labels, truth)

    _unlabeled_parts(tmp_path / "keyed", with_ids=True)
    keyed = check_unlabeled(str(tmp_path / "keyed"), labeled)
    assert keyed.id_column == "id" and not keyed.positional_ids
    ids, labels = known_labels(keyed, "label")
    np.testing.assert_array_equal(ids, np.arange(30) * 7 + 3)
    np.testing.assert_array_equal(labels, truth)
    assert known_labels(keyed, "no_such_column") is None


def test_keep_ids_keeps_the_rows_of_the_given_ids():
    batch = {"id": np.array([5, 1, 9, 3]), "x": np.arange(8, dtype=np.float32).reshape(4, 2), "label": np.array([0, 1, 2, 3])}
    kept = keep_ids(batch, np.array([1, 3]))
    assert kept["id"].tolist() == [1, 3] and kept["label"].tolist() == [1, 3] and kept["x"].shape == (2, 2)


def test_pseudo_label_summary_scores_all_and_accepted():
    table = pa.table({
        "id": [1, 2, 3, 4], "pseudo_label": [0, 1, 1, 2], "confidence": np.float32([0.9, 0.8, 0.4, 0.7]),
        "disagreement": np.float32([0, 0, 0.5, 0]), "accepted": [True, True, False, True],
    })  # fmt: skip
    summary = pseudo_label_summary(table, (np.array([1, 2, 3, 4]), np.array([0, 1, 2, 0])), num_classes=3)
    assert (summary["rows"], summary["accepted"], summary["acceptance_rate"]) == (4, 3, 0.75)
    assert summary["accepted_per_class"] == [1, 1, 1]
    assert summary["accuracy_all"] == 0.5 and summary["accuracy_accepted"] == pytest.approx(2 / 3)
    assert pseudo_label_summary(table, None, num_classes=3)["accuracy_all"] is None


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
    mask = labeled_subset(labels, 0.1, seed=0)
    assert np.bincount(labels[mask]).tolist() == [3, 1, 1]  # at least one per class
    np.testing.assert_array_equal(mask, labeled_subset(labels, 0.1, seed=0))
    assert not np.array_equal(mask, labeled_subset(labels, 0.1, seed=1))


@pytest.mark.ray
def test_small_run_writes_report_and_pseudo_labels(ray_session, tmp_path):
    out = tmp_path / "run"
    report = run_pseudo_label(
        config(
            ["--limit", "500", "--label-fraction", "0.2", "--teacher-epochs", "10", "--epochs", "1", "--per-class", "8"]
            + ["--set", "pseudo_label.threshold=null", "--output", str(out)]
        )
    )
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["summary"]["gain"]["values"] == [report["runs"][0]["metrics"]["gain"]]
    assert {"seeds", "summary", "runs", "config", "seconds"} <= set(on_disk)
    run = on_disk["runs"][0]
    assert {"data", "teachers", "ensemble", "pseudo_labels", "student", "metrics", "seconds"} <= set(run)
    assert set(run["metrics"]) == {key for key, _ in ROWS}
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
    markdown = (out / "report.md").read_text()
    assert "| student, labeled + pseudo (test)" in markdown
    assert "](student_with_pseudo/curves.png)" in markdown and (out / "student_with_pseudo" / "curves.png").exists()
    assert on_disk["config"]["pseudo_label"]["per_class"] == 8 and (out / "config.yaml").exists()
    assert {"data", "total"} <= set(on_disk["seconds"])
