"""The main job end to end, in-process on the shared Ray session, through the stages `raykd run` calls."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from raykd.config import load_config
from raykd.data import write_breast_cancer_parquet
from raykd.stages import RunError, run_distill

pytestmark = pytest.mark.ray


def _png(path: str | Path) -> tuple[int, int]:
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
        return image.size


def test_pipeline_writes_a_complete_report_with_curves(ray_session, tmp_path, capsys):
    out = tmp_path / "run"
    schedules = "{temperature: {kind: linear, start: 8, end: 2}, lr: {kind: cosine, start: 3.0e-3, end: 1.0e-4, per: step}}"
    cfg = load_config(
        ["--limit", "400", "--teacher-epochs", "2", "--epochs", "3", "--k", "4", "--num-workers", "2", "--output", str(out),
         "--set", f"student.schedules={schedules}"]
    )
    report = run_distill(cfg)
    printed = capsys.readouterr().out
    for stage in ("data", "teachers", "soft_targets", "student_kd", "student_baseline"):
        assert f"[raykd] {stage}: start" in printed and f"[raykd] {stage}: done in" in printed
    for epoch in (1, 2, 3):
        assert f"[raykd] student_kd epoch {epoch}/3" in printed
    assert "| student KD (ResponseBased)" in printed

    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["student"]["kd"]["accuracy"] == report["student"]["kd"]["accuracy"]
    assert len(on_disk["teachers"]) == 3 and on_disk["teacher"]["label"] == "ensemble (mean_logits)"
    assert on_disk["student"]["kd"]["params"] * 10 <= on_disk["teacher"]["params"]
    assert on_disk["soft_targets"]["rows"] == on_disk["data"]["train"] and on_disk["soft_targets"]["k"] == 4
    assert {"data", "teachers", "soft_targets", "student_kd", "student_baseline", "total"} <= set(on_disk["seconds"])
    assert Path(on_disk["student"]["kd"]["checkpoint"], "model.safetensors").is_file()
    assert (out / "teachers" / "teachers.json").is_file()
    assert load_config(["--config", str(out / "config.yaml")]) == cfg  # the run's config reproduces it
    for name in ("student_kd", "student_baseline"):
        with open(out / name / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
        assert all(0.0 <= float(r["val_accuracy"]) <= 1.0 and float(r["loss"]) > 0 for r in rows)
        lrs = [float(r["lr"]) for r in rows]
        assert lrs[0] == pytest.approx(3e-3) and lrs[0] > lrs[1] > lrs[2] > 1e-4  # cosine, per step
        width, height = _png(out / name / "curves.png")
        assert width > 300 and height > 200
    # The KD student's temperature followed its schedule (8 → 2 over 3 epochs); the baseline has none.
    with open(out / "student_kd" / "metrics.csv", newline="") as f:
        assert [float(r["temperature"]) for r in csv.DictReader(f)] == [8.0, 6.0, 4.0]
    with open(out / "student_baseline" / "metrics.csv", newline="") as f:
        assert "temperature" not in next(csv.DictReader(f))
    assert "temperature 6  lr " in printed
    markdown = (out / "report.md").read_text()
    assert "| student KD (ResponseBased)" in markdown and "(student_kd/curves.png)" in markdown
    assert on_disk["student"]["kd"]["ce_weight"] == 0.0 and on_disk["student"]["baseline"]["ce_weight"] == 1.0


def test_own_tabular_parquet_without_ids_or_config_matches_a_standardized_linear_model(ray_session, tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression

    data = write_breast_cancer_parquet(tmp_path / "tabular.parquet")  # 30 unscaled features, no id column
    report = run_distill(load_config(["--data", str(data), "--epochs", "5", "--no-baseline", "--output", str(tmp_path / "run")]))
    assert "ids are row positions" in capsys.readouterr().out
    assert report["data"]["ids"] == "row positions (no id column)" and report["data"]["classes"] == 2
    assert all(m["type"] == "mlp" for m in report["config"]["teacher"]["members"] or []) and report["config"]["teacher"]["members"] is None

    # The same split, scored by a standardized logistic regression.
    import pyarrow.parquet as pq

    from raykd.data.splits import split_codes

    table = pq.read_table(data)
    x = np.stack([table.column(c).to_numpy() for c in table.column_names if c != "label"], axis=1)
    y = table.column("label").to_numpy()
    codes = split_codes(np.arange(len(y)), 0, 0.15, 0.2)
    mean, std = x[codes == 0].mean(0), x[codes == 0].std(0)
    linear = LogisticRegression(max_iter=2000).fit((x[codes == 0] - mean) / std, y[codes == 0])
    linear_accuracy = linear.score((x[codes == 2] - mean) / std, y[codes == 2])
    assert report["data"]["test"] == int((codes == 2).sum())
    assert report["teacher"]["accuracy"] >= linear_accuracy - 0.03, (report["teacher"]["accuracy"], linear_accuracy)


def test_a_teacher_the_user_brings_is_the_one_used_and_nothing_is_trained(ray_session, tmp_path):
    from raykd.models import build_model
    from raykd.models.fit import fit_classifier
    from raykd.data import digits_table

    table = digits_table()
    x = np.stack([table.column(f"pixel_{i}").to_numpy() for i in range(64)], axis=1)
    model = fit_classifier(build_model({"type": "mlp", "in_features": 64, "hidden": [32], "num_classes": 10}), x, table.column("label").to_numpy(), epochs=3)
    path = tmp_path / "teacher.pt"
    torch.jit.script(model).save(str(path))
    out = tmp_path / "run"
    report = run_distill(
        load_config(
            ["--limit", "300", "--epochs", "2", "--num-workers", "1", "--no-baseline", "--output", str(out), "--teacher-kind", "Pretrained",
             "--set", f"teacher.params={{path: {path}, num_classes: 10}}"]
        )
    )
    assert report["teachers"] == [] and not (out / "teachers").exists()
    assert report["teacher"]["label"] == "Pretrained teacher" and report["teacher"]["kind"] == "Pretrained"
    assert report["teacher"]["params"] == sum(p.numel() for p in model.parameters())
    assert "| Pretrained teacher" in (out / "report.md").read_text()


def test_use_gpu_without_gpus_fails_at_once(ray_session, tmp_path):
    with pytest.raises(RunError, match=r"student\.use_gpu \(--use-gpu\) asks for 1 GPU\(s\) but the Ray cluster has 0"):
        run_distill(load_config(["--use-gpu", "--output", str(tmp_path / "run")]))
    with pytest.raises(RunError, match=r"soft_targets\.num_gpus \(--teacher-gpus\) asks for 0\.5 GPU\(s\) but the Ray cluster has 0"):
        run_distill(load_config(["--teacher-gpus", "0.5", "--teacher-cpus", "0", "--output", str(tmp_path / "run")]))
    assert not (tmp_path / "run" / "teachers").exists()


def test_a_memory_bank_strategy_indexes_by_id_across_the_whole_train_split(ray_session, tmp_path):
    # Train ids are not 0..rows-1 (the split is by id hash): CRD's bank must span the largest id.
    report = run_distill(load_config(["--limit", "300", "--teacher-epochs", "2", "--epochs", "1", "--num-workers", "1",
                                      "--strategy", "ContrastiveBased", "--no-baseline", "--output", str(tmp_path / "run")]))  # fmt: skip
    assert report["student"]["kd"]["ce_weight"] == 1.0 and report["soft_targets"] is None
    assert 0.0 <= report["student"]["kd"]["accuracy"] <= 1.0
