"""Replayable augmented views: parameters from (id, view, seed) alone, pixels re-made exactly."""

from __future__ import annotations

import numpy as np
import pytest

from raykd.data.augment import ViewSpec, apply_views, expand_views, view_params


def test_view_ids_and_parameters_are_deterministic_and_keyed():
    spec = ViewSpec(views=3, pad=1, seed=5)
    params = view_params(np.array([10, 11]), spec)
    assert params["id"].tolist() == [30, 31, 32, 33, 34, 35]
    assert params["sample_id"].tolist() == [10, 10, 10, 11, 11, 11]
    assert params["view"].tolist() == [0, 1, 2, 0, 1, 2]
    again = view_params(np.array([11]), spec)
    for name in ("aug_seed", "crop_top", "crop_left", "flip"):
        np.testing.assert_array_equal(again[name], params[name][3:])  # independent of batch order
    assert params["crop_top"][0] == 1 and params["crop_left"][0] == 1  # view 0 is the plain image
    assert set(params["crop_top"].tolist()) <= {0, 1, 2}
    assert not params["flip"].any()  # flips only when asked for


def test_apply_views_shifts_and_flips_like_a_hand_made_crop():
    image = np.arange(9, dtype=np.float32).reshape(1, 9)  # 3x3: [[0,1,2],[3,4,5],[6,7,8]]
    params = {"crop_top": np.array([0]), "crop_left": np.array([2]), "flip": np.array([False])}
    # pad 1 then crop rows 0..2, cols 2..4: a shift down by one and left by one
    expected = np.array([[0, 0, 0], [1, 2, 0], [4, 5, 0]], dtype=np.float32).reshape(1, 9)
    np.testing.assert_array_equal(apply_views(image, params, pad=1), expected)
    params["flip"] = np.array([True])
    np.testing.assert_array_equal(apply_views(image, params, pad=1), expected.reshape(1, 3, 3)[:, :, ::-1].reshape(1, 9))
    plain = {"crop_top": np.array([1]), "crop_left": np.array([1]), "flip": np.array([False])}
    np.testing.assert_array_equal(apply_views(image, plain, pad=1), image)


def test_expand_views_repeats_other_columns_and_rejects_bad_input():
    batch = {"id": np.array([1, 2]), "x": np.random.default_rng(0).random((2, 64), dtype=np.float32), "label": np.array([7, 3])}
    out = expand_views(batch, ViewSpec(views=2))
    assert out["label"].tolist() == [7, 7, 3, 3]
    np.testing.assert_array_equal(out["x"][0], batch["x"][0])  # view 0 is the plain image
    replay = apply_views(batch["x"][[0, 0, 1, 1]], out, pad=1)
    np.testing.assert_array_equal(replay, out["x"])
    with pytest.raises(ValueError, match="views must be >= 1"):
        ViewSpec(views=0)
    with pytest.raises(ValueError, match="not a square"):
        apply_views(np.zeros((1, 10), dtype=np.float32), out, pad=1)
