"""View-keyed soft targets on a real local Ray: the student's replayed pixels are the teacher's."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from raykd.data import InputSpec, read_inputs, resolve_inputs, to_numpy
from raykd.data.augment import ViewSpec, apply_views
from raykd.models import build_model
from raykd.soft_targets import SoftTargetMeta, decode_topk, read_soft_targets, teacher_fingerprint
from raykd.soft_targets.views import generate_view_targets, join_views
from raykd.teachers import build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members

pytestmark = pytest.mark.ray


def test_replayed_views_get_the_targets_the_teacher_gave_them(ray_session, tmp_path):
    spec_model = {"type": "mlp", "in_features": 64, "hidden": [16], "num_classes": 10}
    torch.manual_seed(0)
    save_members(tmp_path / "t", [MemberCheckpoint("member0", spec_model, build_model(spec_model).eval())])
    config = {"kind": "Ensemble", "checkpoint": str(tmp_path / "t")}
    teacher = build_from_config(config)
    ds = read_inputs(resolve_inputs(InputSpec()), limit=64).materialize()
    spec = ViewSpec(channels=1, views=3, pad=1, flip=True, seed=1)
    meta = SoftTargetMeta(teacher=teacher.describe(), teacher_hash=teacher_fingerprint(teacher), num_classes=10, k=10)
    run = generate_view_targets(ds, functools.partial(build_from_config, config), tmp_path / "soft", meta, spec, batch_size=50)
    assert run.rows == 64 * 3
    again = generate_view_targets(ds, functools.partial(build_from_config, config), tmp_path / "soft", meta, spec, batch_size=50)
    assert (again.rows, again.new_rows) == (64 * 3, 0)  # resumed: every view's part is already there
    with pytest.raises(ValueError, match="different teacher or format .*'views'"):  # views of another spec never mix in
        generate_view_targets(ds, functools.partial(build_from_config, config), tmp_path / "soft", meta, ViewSpec(channels=1, views=2), batch_size=50)

    soft, _ = read_soft_targets(run.path)
    joined = to_numpy(join_views(ds, soft, spec, expected_rows=64 * 3))
    assert sorted(joined["id"].tolist()) == sorted(set(joined["id"].tolist()))
    targets = decode_topk(torch.as_tensor(joined["topk_values"]), torch.as_tensor(joined["topk_indices"]), 10)
    logits = teacher.predict(torch.as_tensor(joined["x"])).logits
    torch.testing.assert_close(targets, logits.half().float(), atol=2e-3, rtol=2e-3)

    plain = to_numpy(ds)
    views = joined["view"]
    originals = plain["x"][np.searchsorted(plain["id"], joined["sample_id"])]
    np.testing.assert_array_equal(joined["x"][views == 0], originals[views == 0])
    assert (joined["x"][views > 0] != originals[views > 0]).any(axis=1).mean() > 0.5
    np.testing.assert_array_equal(joined["x"], apply_views(originals, joined, spec))
