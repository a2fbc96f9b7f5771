"""Pseudo-labels: encoder columns against hand and independent computation, selection, and
exact-once output through the teacher actor pool."""

from __future__ import annotations

import functools
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from raykd.data import InputSpec, read_inputs, resolve_inputs, to_numpy
from raykd.models import build_model
from raykd.models.fit import fit_classifier
from raykd.soft_targets import (
    PSEUDO_LABEL_COLUMNS,
    PseudoLabelEncoder,
    SoftTargetMeta,
    generate_parts,
    generate_soft_targets,
    list_parts,
    read_pseudo_labels,
    select_pseudo_labels,
    teacher_fingerprint,
    validate_exactly_once,
    with_accepted,
)
from raykd.teachers import EnsembleTeacher, NeuralNetworkTeacher, build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members


def _linear(weight, bias) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


def _encode(teacher, x: np.ndarray) -> pa.Table:
    encoder = PseudoLabelEncoder(teacher_fingerprint(teacher), teacher.num_classes)
    return encoder({"id": np.arange(len(x), dtype=np.int64), "x": x}, torch.as_tensor(x), teacher)


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


# ----------------------------------------------------------------------------- the encoder


def test_hand_computed_two_member_mean_probs():
    # Input 0, so each member's logits are its bias: probabilities (3/4, 1/4) and (1/3, 2/3).
    eye = [[1.0, 0.0], [0.0, 1.0]]
    members = [
        NeuralNetworkTeacher(_linear(eye, [math.log(3), 0.0]), num_classes=2),
        NeuralNetworkTeacher(_linear(eye, [0.0, math.log(2)]), num_classes=2),
    ]
    table = _encode(EnsembleTeacher(members, combine="mean_probs"), np.zeros((1, 2), dtype=np.float32))
    p = np.array([(3 / 4 + 1 / 3) / 2, (1 / 4 + 2 / 3) / 2])  # ensemble = mean of probabilities
    assert table.column_names == list(PSEUDO_LABEL_COLUMNS)
    assert _column(table, "pseudo_label").tolist() == [0]
    np.testing.assert_allclose(_column(table, "confidence"), [p[0]], rtol=1e-6)
    np.testing.assert_allclose(_column(table, "entropy"), [-(p * np.log(p)).sum()], rtol=1e-5)
    np.testing.assert_allclose(_column(table, "disagreement"), [0.5])  # the second member votes 1
    kl = np.mean([(p * np.log(p / q)).sum() for q in ([3 / 4, 1 / 4], [1 / 3, 2 / 3])])
    np.testing.assert_allclose(_column(table, "member_kl"), [kl], rtol=1e-4)


def test_columns_match_an_independent_numpy_computation():
    rng = np.random.default_rng(0)
    layers = [_linear(rng.normal(size=(5, 4)).tolist(), rng.normal(size=5).tolist()) for _ in range(3)]
    teacher = EnsembleTeacher([NeuralNetworkTeacher(layer, num_classes=5) for layer in layers])  # mean_logits
    x = rng.normal(size=(32, 4)).astype(np.float32)
    table = _encode(teacher, x)

    member_logits = np.stack([x @ l.weight.detach().numpy().T + l.bias.detach().numpy() for l in layers])  # (K, B, C)

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(member_logits.mean(0)), softmax(member_logits)
    label = p.argmax(-1)
    assert table.schema.field("pseudo_label").type == pa.int64()
    assert all(table.schema.field(c).type == pa.float32() for c in PSEUDO_LABEL_COLUMNS[2:])
    np.testing.assert_array_equal(_column(table, "id"), np.arange(32))
    np.testing.assert_array_equal(_column(table, "pseudo_label"), label)
    np.testing.assert_allclose(_column(table, "confidence"), p.max(-1), rtol=1e-5)
    np.testing.assert_allclose(_column(table, "entropy"), -(p * np.log(p)).sum(-1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_column(table, "disagreement"), (q.argmax(-1) != label).mean(0))
    np.testing.assert_allclose(_column(table, "member_kl"), (p * (np.log(p) - np.log(q))).sum(-1).mean(0), rtol=1e-3, atol=1e-6)
    assert (_column(table, "entropy") <= math.log(5) + 1e-6).all()


def test_vote_combine_keeps_every_column_finite_and_a_single_teacher_never_disagrees():
    rng = np.random.default_rng(1)
    members = [NeuralNetworkTeacher(_linear(rng.normal(size=(4, 3)).tolist(), [0.0] * 4), num_classes=4) for _ in range(3)]
    x = rng.normal(size=(16, 3)).astype(np.float32)
    voted = _encode(EnsembleTeacher(members, combine="vote"), x)
    for name in PSEUDO_LABEL_COLUMNS[2:]:
        assert np.isfinite(_column(voted, name)).all(), name
    shares = np.array([1 / 3, 2 / 3, 1.0])  # vote confidence is a vote share of 3 members
    assert np.abs(_column(voted, "confidence")[:, None] - shares).min(1).max() < 1e-6

    single = _encode(members[0], x)
    np.testing.assert_array_equal(_column(single, "disagreement"), 0.0)
    np.testing.assert_allclose(_column(single, "member_kl"), 0.0, atol=1e-6)


def test_encoder_refuses_a_teacher_with_another_class_count_and_copies_extra_columns():
    teacher = NeuralNetworkTeacher(_linear([[1.0], [2.0], [3.0]], [0.0] * 3), num_classes=3)
    x = np.ones((2, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="teacher predicts 3 classes but the pseudo-label metadata says 10"):
        PseudoLabelEncoder("hash", 10)({"id": np.arange(2), "x": x}, torch.as_tensor(x), teacher)
    batch = {"id": np.arange(2), "x": x, "path": np.array(["a.png", "b/c.png"], dtype=object)}
    table = PseudoLabelEncoder("hash", 3)(batch, torch.as_tensor(x), teacher)
    assert table.column("path").to_pylist() == ["a.png", "b/c.png"]


# ----------------------------------------------------------------------------- selection


def test_threshold_is_inclusive_and_none_accepts_everything():
    conf = np.array([0.2, 0.5, 0.9, 0.49999])
    labels = np.zeros(4, dtype=np.int64)
    assert select_pseudo_labels(labels, conf, threshold=0.5).tolist() == [False, True, True, False]
    assert select_pseudo_labels(labels, conf, threshold=0.0).all()
    assert select_pseudo_labels(labels, conf, threshold=1.0).sum() == 0
    assert select_pseudo_labels(labels, conf).all()


def test_per_class_quota_takes_the_most_confident_breaks_ties_by_id_and_keeps_small_classes():
    ids = np.array([10, 11, 12, 13, 14, 15, 16, 17])
    labels = np.array([0, 0, 0, 0, 1, 2, 2, 2])
    conf = np.array([0.9, 0.7, 0.9, 0.95, 0.3, 0.6, 0.6, 0.6])
    mask = select_pseudo_labels(labels, conf, per_class=2, ids=ids)
    # class 0: 13 (0.95), then the 0.9 tie between 10 and 12 goes to the smaller id 10;
    # class 1 has one candidate (kept); class 2 is a three-way tie: ids 15 and 16.
    assert ids[mask].tolist() == [10, 13, 14, 15, 16]
    order = np.random.default_rng(0).permutation(len(ids))
    shuffled = select_pseudo_labels(labels[order], conf[order], per_class=2, ids=ids[order])
    assert sorted(ids[order][shuffled].tolist()) == ids[mask].tolist()
    assert select_pseudo_labels(labels, conf, per_class=100, ids=ids).all()


def test_threshold_and_quota_together_and_empty_inputs():
    labels = np.array([0, 0, 0, 1, 1])
    conf = np.array([0.99, 0.98, 0.4, 0.3, 0.97])
    assert select_pseudo_labels(labels, conf, threshold=0.5, per_class=1).tolist() == [True, False, False, False, True]
    assert select_pseudo_labels(labels, conf, threshold=0.999, per_class=1).sum() == 0
    assert select_pseudo_labels(np.zeros(0, np.int64), np.zeros(0), per_class=3).shape == (0,)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"threshold": 1.5}, r"threshold must be in \[0, 1\], got 1.5"), ({"threshold": -0.1}, r"got -0.1"), ({"per_class": 0}, r"per_class quota must be >= 1, got 0")],
)
def test_selection_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_pseudo_labels(np.zeros(2, np.int64), np.ones(2), **kwargs)


def test_with_accepted_adds_a_boolean_column():
    table = pa.table({"id": [3, 1, 2], "pseudo_label": [0, 0, 1], "confidence": pa.array([0.8, 0.8, 0.1], pa.float32())})
    out = with_accepted(table, per_class=1)
    assert out.schema.field("accepted").type == pa.bool_()
    assert out.column("accepted").to_pylist() == [False, True, True]  # the 0.8 tie goes to id 1
    assert with_accepted(out, threshold=0.5).column("accepted").to_pylist() == [True, True, False]


# ----------------------------------------------------------------------------- through the actor pool


def _teacher_dir(root, arrays, seed: int) -> str:
    members = []
    for i, hidden in enumerate([[32], [16]]):
        spec = {"type": "mlp", "in_features": 64, "hidden": hidden, "num_classes": 10}
        torch.manual_seed(seed + i)
        members.append(MemberCheckpoint(f"member{i}", spec, fit_classifier(build_model(spec), arrays["x"], arrays["label"], epochs=3, seed=seed + i)))
    return str(save_members(root / f"teachers-{seed}", members))


def _ensemble(directory: str):
    return build_from_config({"kind": "Ensemble", "checkpoint": directory})


def _factory(directory: str):
    """What the actors get: a library function (test-module functions do not import in workers)."""
    return functools.partial(build_from_config, {"kind": "Ensemble", "checkpoint": directory})


def _encoder(directory: str) -> PseudoLabelEncoder:
    teacher = _ensemble(directory)
    return PseudoLabelEncoder(teacher_fingerprint(teacher), 10, teacher.describe())


@pytest.fixture(scope="module")
def labeled(ray_session, tmp_path_factory):
    """200 digits pseudo-labeled once through the actor pool: (dataset, arrays, teacher dir, output dir, run)."""
    ds = read_inputs(resolve_inputs(InputSpec()), limit=200).materialize()
    arrays = to_numpy(ds)
    root = tmp_path_factory.mktemp("pseudo")
    teacher_dir = _teacher_dir(root, arrays, seed=0)
    out = root / "pseudo"
    run = generate_parts(ds, _factory(teacher_dir), _encoder(teacher_dir), out, batch_size=64)
    return ds, arrays, teacher_dir, out, run


@pytest.mark.ray
def test_actor_pool_writes_each_id_once_with_the_encoders_values(labeled):
    _, arrays, teacher_dir, out, run = labeled
    assert (run.rows, run.new_rows) == (200, 200)
    table = read_pseudo_labels(out)
    assert table.column_names == list(PSEUDO_LABEL_COLUMNS)
    assert validate_exactly_once(out, arrays["id"]) == 200
    np.testing.assert_array_equal(table.column("id").to_numpy(), arrays["id"])
    direct = _encode(_ensemble(teacher_dir), arrays["x"])
    for name in PSEUDO_LABEL_COLUMNS[1:]:
        np.testing.assert_allclose(table.column(name).to_numpy(), direct.column(name).to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.ray
def test_an_interrupted_run_labels_only_the_missing_ids(labeled, tmp_path):
    ds, arrays, teacher_dir, done, _ = labeled
    out = shutil.copytree(done, tmp_path / "pseudo")
    lost = Path(list_parts(out)[0].path)
    lost_rows = pq.read_metadata(lost).num_rows
    lost.unlink()
    again = generate_parts(ds, _factory(teacher_dir), _encoder(teacher_dir), out, batch_size=64)
    assert again.new_rows == lost_rows and validate_exactly_once(out, arrays["id"]) == 200


@pytest.mark.ray
def test_a_directory_of_another_teacher_or_format_is_refused_with_how_to_start_fresh(labeled, tmp_path):
    ds, arrays, teacher_dir, out, _ = labeled
    other = _teacher_dir(tmp_path, arrays, seed=5)
    before = sorted(p.base_name for p in list_parts(out))
    with pytest.raises(ValueError, match=r"different teacher.*teacher_hash.*Start fresh by deleting that directory or choose another --output"):
        generate_parts(ds, _factory(other), _encoder(other), out, batch_size=100)
    meta = SoftTargetMeta(teacher={}, teacher_hash=_encoder(teacher_dir).metadata["teacher_hash"], num_classes=10, k=10)
    with pytest.raises(ValueError, match=r"refusing to mix them.*Start fresh"):
        generate_soft_targets(ds, _factory(teacher_dir), out, meta)
    assert sorted(p.base_name for p in list_parts(out)) == before
