"""The throughput options of the soft-target stage give the same soft targets as the plain path,
and bad settings or inputs fail before any teacher runs."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from raykd.models import build_model
from raykd.soft_targets import (
    SoftTargetMeta,
    TeacherActor,
    TopKEncoder,
    generate_soft_targets,
    list_parts,
    teacher_fingerprint,
    validate_exactly_once,
)
from raykd.soft_targets.actor import autocast_context, pick_threads
from raykd.soft_targets.store import write_part
from raykd.teachers import build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members

FEATURES = 8


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    spec = {"type": "mlp", "in_features": FEATURES, "hidden": [32], "num_classes": 10}
    torch.manual_seed(0)
    directory = save_members(tmp_path_factory.mktemp("teacher"), [MemberCheckpoint("teacher", spec, build_model(spec))])
    config = {"kind": "NeuralNetwork", "checkpoint": str(directory)}
    model = build_from_config(config)
    meta = SoftTargetMeta(teacher=model.describe(), teacher_hash=teacher_fingerprint(model), num_classes=10, k=4)
    return functools.partial(build_from_config, config), meta


@pytest.fixture
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _batch(rows: int, start: int = 0) -> dict[str, np.ndarray]:
    x = np.random.default_rng(start).standard_normal((rows, FEATURES), dtype=np.float32)
    x.flags.writeable = False  # what zero_copy_batch=True hands the actor
    return {"id": np.arange(start, start + rows), "x": x}


def _read(directory) -> pa.Table:
    return pq.ParquetDataset([p.path for p in list_parts(directory)]).read().sort_by("id")


# --- the actor, without Ray ---------------------------------------------------------------------
def test_actor_threads_default_to_the_cores_shared_by_the_replicas(teacher, tmp_path, keep_torch_threads):
    factory, meta = teacher
    cores = pick_threads(None)
    assert pick_threads(None, replicas_per_node=2) == max(1, cores // 2) and pick_threads(3) == 3
    TeacherActor(factory, TopKEncoder(meta), str(tmp_path), device="cpu", replicas_per_node=1)
    assert torch.get_num_threads() == cores
    TeacherActor(factory, TopKEncoder(meta), str(tmp_path), device="cpu", threads=1)
    assert torch.get_num_threads() == 1


def test_actor_reads_read_only_batches_and_writes_one_part_per_batch(teacher, tmp_path, keep_torch_threads):
    factory, meta = teacher
    actor = TeacherActor(factory, TopKEncoder(meta), str(tmp_path), device="cpu", threads=1, compression="lz4")
    batch = _batch(32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "array is not writable" warning for zero-copy views
        summary = actor(batch)
    assert summary["rows"].tolist() == [32] and len(list_parts(tmp_path)) == 1
    table = _read(tmp_path)
    logits = factory().predict(torch.from_numpy(batch["x"].copy())).logits
    expected_indices = logits.topk(4, dim=1).indices
    got = np.stack(table.column("topk_indices").to_numpy(zero_copy_only=False)).astype(np.int64)
    np.testing.assert_array_equal(got, expected_indices.numpy())
    torch.testing.assert_close(torch.from_numpy(table.column("logsumexp").to_numpy()), torch.logsumexp(logits, 1))
    empty = actor({"id": np.zeros(0, dtype=np.int64), "x": np.zeros((0, FEATURES), dtype=np.float32)})
    assert len(empty["rows"]) == 0 and len(list_parts(tmp_path)) == 1


def test_bf16_autocast_on_cpu_keeps_the_top_classes(teacher, tmp_path, keep_torch_threads):
    factory, meta = teacher
    batch = _batch(64)
    fp32 = TeacherActor(factory, TopKEncoder(meta), str(tmp_path / "fp32"), device="cpu", threads=1, precision="fp32")
    bf16 = TeacherActor(factory, TopKEncoder(meta), str(tmp_path / "bf16"), device="cpu", threads=1, precision="bf16")
    for actor, d in ((fp32, "fp32"), (bf16, "bf16")):
        (tmp_path / d).mkdir()
        actor(batch)
    a, b = _read(tmp_path / "fp32"), _read(tmp_path / "bf16")
    top1_a = np.stack(a.column("topk_indices").to_numpy(zero_copy_only=False))[:, 0]
    top1_b = np.stack(b.column("topk_indices").to_numpy(zero_copy_only=False))[:, 0]
    assert (top1_a == top1_b).mean() >= 0.9


def test_precision_and_compression_are_checked():
    assert isinstance(autocast_context(torch.device("cpu"), "bf16"), torch.autocast)
    assert not isinstance(autocast_context(torch.device("cpu"), "auto"), torch.autocast)  # CPU stays fp32
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\), got 'fp8'"):
        autocast_context(torch.device("cpu"), "fp8")
    with pytest.raises(ValueError, match=r"compression must be one of .*got 'brotli'"):
        write_part(pa.table({"id": [1]}), ".", compression="brotli")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_path_stages_through_pinned_memory_and_writes_every_row(teacher, tmp_path):
    factory, meta = teacher
    actor = TeacherActor(factory, TopKEncoder(meta), str(tmp_path), device="cuda", precision="fp32")
    x = actor.to_device(_batch(16)["x"])
    assert x.is_cuda and actor._local.pinned.is_pinned()
    actor(_batch(16))
    actor(_batch(8, start=16))  # a smaller batch reuses the buffer
    assert _read(tmp_path).num_rows == 24


# --- errors before any teacher runs -------------------------------------------------------------
def test_k_larger_than_the_class_count_is_refused_when_the_metadata_is_built():
    with pytest.raises(ValueError, match=r"soft_targets.k must be in \[1, num_classes=10\], got 11"):
        SoftTargetMeta(teacher={}, teacher_hash="x", num_classes=10, k=11)
    with pytest.raises(ValueError, match=r"got 0"):
        SoftTargetMeta(teacher={}, teacher_hash="x", num_classes=10, k=0)


@pytest.mark.ray
def test_inputs_without_ids_are_refused_before_the_teachers_start(ray_session, teacher, tmp_path):
    import ray.data

    factory, meta = teacher
    no_ids = ray.data.from_items([{"x": np.zeros(FEATURES, dtype=np.float32)} for _ in range(4)])
    with pytest.raises(ValueError, match=r"inputs have no 'id' column \(columns: \['x'\]\).*unique integer id"):
        generate_soft_targets(no_ids, factory, tmp_path / "soft", meta)
    float_ids = ray.data.from_items([{"id": 0.5, "x": np.zeros(FEATURES, dtype=np.float32)}])
    with pytest.raises(ValueError, match=r"'id' must hold integers, got double"):
        generate_soft_targets(float_ids, factory, tmp_path / "soft", meta)
    with pytest.raises(TypeError, match=r"inputs must be a Ray Dataset"):
        generate_soft_targets({"id": np.arange(3)}, factory, tmp_path / "soft", meta)
    assert not list_parts(tmp_path / "soft")


# --- the options through a real actor pool ------------------------------------------------------
@pytest.mark.ray
def test_every_throughput_option_writes_the_same_soft_targets(ray_session, teacher, tmp_path):
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    factory, meta = teacher
    rows = 300
    x = np.random.default_rng(1).standard_normal((rows, FEATURES), dtype=np.float32)
    blocks = [pa.table({"id": np.arange(s, min(s + 70, rows)), "x": ArrowTensorArray.from_numpy(x[s : s + 70])}) for s in range(0, rows, 70)]
    ds = ray.data.from_arrow(blocks).materialize()
    plain = generate_soft_targets(ds, factory, tmp_path / "plain", meta, batch_size=64, threads=1, max_concurrent_calls=1)
    tuned = generate_soft_targets(
        ds, factory, tmp_path / "tuned", meta, batch_size=50, pool_size=2, num_cpus=0.25, threads=1,
        compression="lz4", max_concurrent_calls=3,
    )  # fmt: skip
    assert plain.rows == tuned.rows == rows and plain.new_rows == tuned.new_rows == rows
    validate_exactly_once(tmp_path / "tuned", np.arange(rows))
    a, b = _read(tmp_path / "plain"), _read(tmp_path / "tuned")
    for column in ("id", "topk_values", "topk_indices"):
        assert a.column(column).equals(b.column(column)), column
    np.testing.assert_allclose(a.column("logsumexp").to_numpy(), b.column("logsumexp").to_numpy(), rtol=1e-5)
