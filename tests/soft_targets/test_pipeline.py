"""The soft-target stage on a real local Ray: exact-once Parquet, decodable values, resume, refusal."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from raykd.data import InputSpec, read_inputs, resolve_inputs, to_numpy
from raykd.models import build_model
from raykd.models.fit import fit_classifier
from raykd.soft_targets import (
    SoftTargetMeta,
    decode_topk,
    generate_soft_targets,
    list_parts,
    read_ids,
    teacher_fingerprint,
    validate_exactly_once,
)
from raykd.teachers import build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def digits_slice(ray_session):
    ds = read_inputs(resolve_inputs(InputSpec()), limit=240).materialize()
    return ds, to_numpy(ds)


def _teacher_dir(tmp_path, arrays, seed: int):
    members = []
    for i, hidden in enumerate([[32], [16, 16]]):
        spec = {"type": "mlp", "in_features": 64, "hidden": hidden, "num_classes": 10}
        torch.manual_seed(seed + i)
        model = fit_classifier(build_model(spec), arrays["x"], arrays["label"], epochs=3, seed=seed + i)
        members.append(MemberCheckpoint(f"member{i}", spec, model))
    return save_members(tmp_path / f"teachers-{seed}", members)


def load_ensemble(directory):
    return build_from_config({"kind": "Ensemble", "checkpoint": str(directory)})


def ensemble_factory(directory):
    """A picklable factory that Ray workers can import (test modules are not on their path)."""
    return functools.partial(build_from_config, {"kind": "Ensemble", "checkpoint": str(directory)})


def _meta(teacher, k):
    return SoftTargetMeta(teacher=teacher.describe(), teacher_hash=teacher_fingerprint(teacher), num_classes=10, k=k)


def test_every_id_exactly_once_and_values_decode_to_the_teachers_top_k(digits_slice, tmp_path):
    ds, arrays = digits_slice
    teacher_dir = _teacher_dir(tmp_path, arrays, seed=0)
    teacher = load_ensemble(teacher_dir)
    out = tmp_path / "soft"
    run = generate_soft_targets(ds, ensemble_factory(teacher_dir), out, _meta(teacher, 3), batch_size=64)
    assert (run.rows, run.new_rows) == (240, 240)

    table = pq.read_table(list_parts(out)[0].path)
    meta = json.loads(table.schema.metadata[b"raykd.soft_targets"])
    assert (meta["num_classes"], meta["k"], meta["logits"]) == (10, 3, "raw")
    assert meta["teacher"]["kind"] == "Ensemble" and len(meta["teacher"]["members"]) == 2
    assert str(table.schema.field("topk_values").type) == "fixed_size_list<element: halffloat>[3]"
    assert str(table.schema.field("topk_indices").type) == "fixed_size_list<element: uint8>[3]"

    ids = read_ids(out)
    assert sorted(ids.tolist()) == sorted(arrays["id"].tolist())
    full = pq.ParquetDataset([p.path for p in list_parts(out)]).read().sort_by("id")
    values = torch.from_numpy(np.stack(full.column("topk_values").to_numpy(zero_copy_only=False)).astype(np.float32))
    indices = torch.from_numpy(np.stack(full.column("topk_indices").to_numpy(zero_copy_only=False)).astype(np.int64))
    expected = teacher.predict(torch.from_numpy(arrays["x"])).logits
    top_values, top_indices = expected.topk(3, dim=1)
    torch.testing.assert_close(indices, top_indices)
    torch.testing.assert_close(values, top_values, atol=2e-2, rtol=1e-3)
    dense = decode_topk(values, indices, 10)
    assert torch.isinf(dense).sum(dim=1).eq(7).all()


def test_rerun_writes_only_what_is_missing(digits_slice, tmp_path):
    ds, arrays = digits_slice
    teacher_dir = _teacher_dir(tmp_path, arrays, seed=0)
    factory = ensemble_factory(teacher_dir)
    meta = _meta(load_ensemble(teacher_dir), 10)
    out = tmp_path / "soft"
    generate_soft_targets(ds, factory, out, meta, batch_size=64)
    parts = list_parts(out)
    lost = Path(parts[0].path)
    lost_rows = pq.read_metadata(lost).num_rows
    lost.unlink()
    (out / ".tmp-interrupted.parquet").write_bytes(b"partial write of a killed actor")
    run = generate_soft_targets(ds, factory, out, meta, batch_size=64)
    assert run.new_rows == lost_rows and run.rows == 240
    assert validate_exactly_once(out, arrays["id"]) == 240
    again = generate_soft_targets(ds, factory, out, meta, batch_size=64)
    assert again.new_rows == 0


def test_a_different_teacher_is_refused_and_nothing_is_lost(digits_slice, tmp_path):
    ds, arrays = digits_slice
    first = _teacher_dir(tmp_path, arrays, seed=0)
    second = _teacher_dir(tmp_path, arrays, seed=7)
    out = tmp_path / "soft"
    generate_soft_targets(ds, ensemble_factory(first), out, _meta(load_ensemble(first), 10))
    before = sorted(p.base_name for p in list_parts(out))
    with pytest.raises(ValueError, match=r"different teacher.*refusing to mix them.*deleting that directory"):
        generate_soft_targets(ds, ensemble_factory(second), out, _meta(load_ensemble(second), 10))
    assert sorted(p.base_name for p in list_parts(out)) == before


def test_validation_reports_duplicates_and_missing_ids(digits_slice, tmp_path):
    ds, arrays = digits_slice
    teacher_dir = _teacher_dir(tmp_path, arrays, seed=0)
    out = tmp_path / "soft"
    factory, meta = ensemble_factory(teacher_dir), _meta(load_ensemble(teacher_dir), 10)
    generate_soft_targets(ds, factory, out, meta, batch_size=64)
    first = Path(list_parts(out)[0].path)
    copied = np.sort(pq.read_table(first, columns=["id"]).column("id").to_numpy())
    (out / "part-copy.parquet").write_bytes(first.read_bytes())
    with pytest.raises(ValueError, match=rf"not exact: 0 ids missing, {len(copied)} duplicated.*duplicated {re.escape(str(copied[:5].tolist()))}"):
        validate_exactly_once(out, arrays["id"])
    with pytest.raises(ValueError, match=r"not exact: 1 ids missing.*e\.g\. missing \[10000\]"):
        validate_exactly_once(out, np.append(arrays["id"], 10_000))
    # Input ids seen twice are refused (counted in Ray) before any teacher starts.
    (out / "part-copy.parquet").unlink()
    with pytest.raises(ValueError, match=r"input ids are not unique \(240 ids appear more than once"):
        generate_soft_targets(ds.union(ds), factory, out, meta, batch_size=64)
