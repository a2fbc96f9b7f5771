"""Teachers that act during training: Adaptive, Curriculum, Online (DML) and the mean teacher.

The unit tests check each teaching's rule on tensors (the Adaptive sums across two real gloo
processes); the Ray Train tests run the main job's stages with each kind and compare the per-epoch
metrics with a fixed teacher's run of the same seed and data.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from raykd.config import ConfigError, load_config
from raykd.outputs import ModelOutput
from raykd.strategies import build
from raykd.strategies.functional import soft_kl
from raykd.teachers.adaptive import AdaptiveWeights
from raykd.train.checkpoint import load_training_state
from raykd.train.teaching import CurriculumTeaching, EmaTeaching


def test_sample_weights_scale_each_samples_distillation_term():
    torch.manual_seed(0)
    s, t, y = torch.randn(2, 5), torch.randn(2, 5), torch.tensor([1, 3])
    kd = soft_kl(s, t, 4.0) * 16.0  # per-sample T²·KL
    weighted = build("ResponseBased", temperature=4.0, alpha=1.0)(ModelOutput(logits=s), ModelOutput(logits=t), y, sample_weight=torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(weighted, kd[0])  # (2·kd0 + 0·kd1) / 2
    dkd = build("DecoupledKD", ce_weight=0.0)
    full = dkd(ModelOutput(logits=s), ModelOutput(logits=t), y)
    torch.testing.assert_close(dkd(ModelOutput(logits=s), ModelOutput(logits=t), y, sample_weight=torch.ones(2)), full)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        dkd(ModelOutput(logits=s), ModelOutput(logits=t), y, sample_weight=torch.ones(3))


def _adaptive_worker(rank: int, port: int, out: str) -> None:
    from raykd.train.teaching import AdaptiveTeaching

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    teaching = AdaptiveTeaching(None, AdaptiveWeights(3, mode="per_sample", num_samples=4, momentum=0.0))
    # Worker 0 sees samples 0, 1 (class 0 right, class 1 wrong); worker 1 sees 2, 3 (class 2 wrong twice over).
    logits = torch.tensor([[5.0, 0, 0], [5.0, 0, 0]]) if rank == 0 else torch.tensor([[5.0, 0, 0], [0, 5.0, 0]])
    batch = {"label": torch.tensor([0, 1]) if rank == 0 else torch.tensor([2, 2]), "id": torch.tensor([0, 1]) if rank == 0 else torch.tensor([2, 3])}
    teaching.after_step(batch, logits)
    summary = teaching.end_epoch(lambda model: {})
    torch.save({"class_weight": teaching.weights.class_weight, "sample_weight": teaching.weights.sample_weight, "summary": summary}, f"{out}/{rank}.pt")
    dist.destroy_process_group()


def test_adaptive_weights_agree_across_workers_and_follow_the_union_of_their_errors(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_adaptive_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    first, second = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    torch.testing.assert_close(first["class_weight"], second["class_weight"])
    torch.testing.assert_close(first["sample_weight"], second["sample_weight"])
    # One combined table: the same as one worker observing all four samples.
    alone = AdaptiveWeights(3, mode="per_sample", num_samples=4, momentum=0.0)
    alone.observe(torch.tensor([[5.0, 0, 0], [5.0, 0, 0], [5.0, 0, 0], [0, 5.0, 0]]), torch.tensor([0, 1, 2, 2]), torch.arange(4))
    alone.end_epoch()
    torch.testing.assert_close(first["class_weight"], alone.class_weight)
    torch.testing.assert_close(first["sample_weight"], alone.sample_weight)
    assert first["class_weight"][0] < first["class_weight"][1] == first["class_weight"][2]  # class 0 never wrong
    assert first["sample_weight"][0] < first["sample_weight"][1]


def test_curriculum_rows_are_the_teachers_easiest_then_all():
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    margin = torch.tensor([8.0, 1.0, 6.0, 0.5, 4.0, 2.0, 7.0, 3.0])  # teacher logit margin on the label: easy = large
    logits = torch.zeros(8, 3).scatter(1, labels[:, None], margin[:, None])
    shard = {"id": torch.arange(8), "label": labels, "logits": logits}
    teaching = CurriculumTeaching(None, lambda batch: batch["logits"], pacing="linear", start_fraction=0.25, full_at_epoch=2)
    assert teaching.rows(0, lambda: shard).tolist() == [0, 6]  # the two largest margins
    assert teaching.end_epoch(lambda model: {}) == {"curriculum_fraction": 0.25}
    assert teaching.rows(1, lambda: shard).tolist() == [0, 6, 2, 4, 7]  # ceil(0.625 · 8) = 5, easy → hard
    assert sorted(teaching.rows(2, lambda: shard).tolist()) == list(range(8))


def test_mean_teacher_moves_toward_the_student_at_its_decay():
    student = torch.nn.Linear(2, 2)
    teaching = EmaTeaching(student, ema_decay=0.9)
    start = teaching.network.weight.detach().clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    teaching.after_step({}, torch.zeros(1, 2))  # the first update copies the student, as AveragedModel does
    torch.testing.assert_close(teaching.network.weight, student.weight)
    with torch.no_grad():
        student.weight.add_(1.0)
    teaching.after_step({}, torch.zeros(1, 2))
    torch.testing.assert_close(teaching.network.weight, 0.9 * (start + 1.0) + 0.1 * student.weight)


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["teacher.kind=Adaptive", "student.strategy=FeatureBased"], "student.strategy.name.*per-sample form"),
        (["teacher.kind=Curriculum", "student.cache_shards=false"], "student.cache_shards"),
        (["teacher.kind=Curriculum", "teacher.params.pacing=fast"], "teacher.params.*pacing must be one of"),
        (["teacher.kind=Online", "student.strategy=AttentionBased"], "teacher features"),
        (["teacher.kind=Self", "teacher.params.ema_decay=1.0"], "ema_decay must be in"),
        (["teacher.kind=Adaptive", "teacher.params.momentum=1.5"], "momentum must be in"),
    ],
)
def test_in_loop_teachers_refuse_what_they_cannot_do(sets, match):
    with pytest.raises(ConfigError, match=match):
        load_config([a for s in sets for a in ("--set", s)])


def _metrics(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


FLAGS = ["--limit", "400", "--teacher-epochs", "2", "--epochs", "3", "--num-workers", "1", "--no-baseline"]
"""One worker: its shard is the whole train split, so runs compare row for row (with several,
which rows each worker gets follows Ray Data's join order)."""


@pytest.fixture(scope="module")
def fixed_run(ray_session, tmp_path_factory):
    """The main job's stages with a fixed ensemble teacher: the data, teachers and soft targets the
    in-loop kinds reuse, and the student every kind is compared with."""
    from raykd.stages import run_soft_targets, train_student

    cfg = load_config([*FLAGS, "--output", str(tmp_path_factory.mktemp("fixed"))])
    run, data, teacher, soft = run_soft_targets(cfg, "fixed")
    fixed = train_student(run, data, "student_kd", cfg.student.strategy, teacher, soft)
    return run, data, soft, _metrics(fixed["metrics_csv"])


def _taught(fixed_run, out: Path, *sets: str) -> tuple[dict, list[dict[str, float]]]:
    """The fixed run's student again, its teacher (the fixed run's members) acting during training."""
    from raykd.stages import open_run, prepare_teacher, train_student

    run, data, soft, _ = fixed_run
    cfg = load_config([*FLAGS, "--output", str(out), "--teachers", str(run.out / "teachers"), *(a for s in sets for a in ("--set", s))])
    taught = open_run(cfg, "taught")
    student = train_student(taught, data, "student_kd", cfg.student.strategy, prepare_teacher(taught, data), soft)
    return student, _metrics(student["metrics_csv"])


def _run(out: Path, *sets: str) -> tuple[dict, list[dict[str, float]]]:
    from raykd.stages import run_distill

    report = run_distill(load_config([*FLAGS, "--output", str(out), *(a for s in sets for a in ("--set", s))]))
    return report, _metrics(out / "student_kd" / "metrics.csv")


@pytest.mark.ray
def test_adaptive_teacher_reweights_the_loss_from_the_second_epoch(fixed_run, tmp_path):
    _, data, _, fixed = fixed_run
    student, adaptive = _taught(fixed_run, tmp_path / "adaptive", "teacher.kind=Adaptive", "teacher.params.mode=per_sample")
    assert student["teaching"] == "Adaptive"
    # Epoch 0 weighs every sample 1: the same losses as the fixed teacher's run, to the bit.
    assert adaptive[0]["distill"] == fixed[0]["distill"] and adaptive[0]["val_accuracy"] == fixed[0]["val_accuracy"]
    assert adaptive[1]["distill"] != fixed[1]["distill"]
    assert all(r["adaptive_max_weight"] > 1.0 > r["adaptive_min_weight"] for r in adaptive)
    state = load_training_state(student["checkpoint"])["teaching"]["adaptive"]
    assert state["sample_weight"].numel() >= len(data.train["id"])  # one weight per train id
    assert int(state["epochs_seen"]) == 3 and state["sample_weight"].mean().item() == pytest.approx(1.0)


@pytest.mark.ray
def test_curriculum_teacher_paces_the_rows_each_worker_trains_on(fixed_run, tmp_path):
    fixed = fixed_run[3]
    _, paced = _taught(fixed_run, tmp_path / "curriculum", "teacher.kind=Curriculum", "teacher.params.full_at_epoch=2")
    shard = fixed[0]["samples_per_worker"]
    assert [r["curriculum_fraction"] for r in paced] == [0.25, 0.625, 1.0]
    assert [r["samples_per_worker"] for r in paced] == [math.ceil(0.25 * shard), math.ceil(0.625 * shard), shard]
    # The easiest quarter first: the teacher's soft targets agree with the labels there, so the
    # student's loss on them is not the fixed run's full-data loss.
    assert paced[0]["distill"] != fixed[0]["distill"]


@pytest.mark.ray
def test_online_peers_train_with_the_student_and_are_scored_as_they_end(ray_session, tmp_path):
    report, online = _run(tmp_path / "online", "teacher.kind=Online")
    assert report["soft_targets"] is None and report["teachers"] == []
    assert "peer_loss" in online[0] and online[-1]["teacher_val_accuracy"] > online[0]["teacher_val_accuracy"]
    teacher = report["teacher"]
    assert teacher["accuracy"] == report["student"]["kd"]["teacher_accuracy"] > 0.5  # fresh peers start near 10%
    state = load_training_state(report["student"]["kd"]["checkpoint"])["teaching"]
    assert state["steps"] == 3 * online[0]["samples_per_worker"] // 32 + 3 * (online[0]["samples_per_worker"] % 32 > 0)


@pytest.mark.ray
def test_mean_teacher_is_the_students_moving_average(ray_session, tmp_path):
    report, ema = _run(tmp_path / "ema", "teacher.kind=Self", "teacher.params.ema_decay=0.9")
    assert report["teacher"]["params"] == report["student"]["kd"]["params"]  # the student's own architecture
    assert all(0.0 < r["teacher_val_accuracy"] <= 1.0 for r in ema)
    assert not math.isnan(report["teacher"]["accuracy"])
    assert "ema" in load_training_state(report["student"]["kd"]["checkpoint"])["teaching"]
