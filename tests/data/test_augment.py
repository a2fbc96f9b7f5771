"""Replayable augmented views: parameters from (id, view, seed) alone, pixels re-made exactly."""

from __future__ import annotations

import numpy as np
import pytest

from raykd.config import ConfigError, load_config
from raykd.data import write_breast_cancer_parquet
from raykd.data.augment import ViewSpec, apply_views, expand_views, view_params
from raykd.data.digits_images import write_digits_image_folder
from raykd.stages.data import check_data
from raykd.stages.soft_targets import view_spec

GRAY = ViewSpec(channels=1)


def test_view_ids_and_parameters_are_deterministic_and_keyed():
    spec = ViewSpec(channels=1, views=3, pad=1, seed=5)
    params = view_params(np.array([10, 11]), spec)
    assert params["sample_id"].tolist() == [10, 10, 10, 11, 11, 11]
    assert params["view"].tolist() == [0, 1, 2, 0, 1, 2]
    assert len(set(params["id"].tolist())) == 6 and (params["id"] >= 0).all()
    again = view_params(np.array([11]), spec)
    for name in ("id", "aug_seed", "crop_top", "crop_left", "flip"):
        np.testing.assert_array_equal(again[name], params[name][3:])  # independent of batch order
    assert params["crop_top"][0] == 1 and params["crop_left"][0] == 1  # view 0 is the plain image
    assert set(params["crop_top"].tolist()) <= {0, 1, 2}
    assert not params["flip"].any()  # flips only when asked for


def test_view_ids_of_63_bit_path_hashes_do_not_overflow():
    # Image folders key samples by 63-bit path hashes: sample_id·V + view would wrap around.
    ids = np.array([2**63 - 1, 2**63 - 2, 2**62 + 7], dtype=np.int64)
    params = view_params(ids, ViewSpec(channels=3, views=4))
    assert len(set(params["id"].tolist())) == 12 and (params["id"] >= 0).all()


def test_apply_views_shifts_and_flips_like_a_hand_made_crop():
    image = np.arange(9, dtype=np.float32).reshape(1, 9)  # 3x3: [[0,1,2],[3,4,5],[6,7,8]]
    params = {"crop_top": np.array([0]), "crop_left": np.array([2]), "flip": np.array([False])}
    # pad 1 then crop rows 0..2, cols 2..4: a shift down by one and left by one
    expected = np.array([[0, 0, 0], [1, 2, 0], [4, 5, 0]], dtype=np.float32).reshape(1, 9)
    np.testing.assert_array_equal(apply_views(image, params, GRAY), expected)
    params["flip"] = np.array([True])
    np.testing.assert_array_equal(apply_views(image, params, GRAY), expected.reshape(1, 3, 3)[:, :, ::-1].reshape(1, 9))
    plain = {"crop_top": np.array([1]), "crop_left": np.array([1]), "flip": np.array([False])}
    np.testing.assert_array_equal(apply_views(image, plain, GRAY), image)


def test_rgb_views_shift_and_flip_every_channel_alike():
    rgb = ViewSpec(channels=3, views=5, pad=2, flip=True, seed=3)
    rng = np.random.default_rng(0)
    x = rng.random((4, 3 * 6 * 6), dtype=np.float32)  # channel-major, as the image transforms write it
    out = expand_views({"id": np.arange(4), "x": x, "label": np.arange(4)}, rgb)
    # Each channel equals the single-channel view of that channel under the same parameters.
    per_channel = [apply_views(np.repeat(x.reshape(4, 3, 36)[:, c], 5, axis=0), out, ViewSpec(channels=1, pad=2)) for c in range(3)]
    np.testing.assert_array_equal(out["x"].reshape(20, 3, 36), np.stack(per_channel, axis=1))
    np.testing.assert_array_equal(out["x"][::5], x)  # view 0 is the plain image
    np.testing.assert_array_equal(apply_views(np.repeat(x, 5, axis=0), out, rgb), out["x"])  # replay: same pixels
    assert out["flip"].any() and not out["flip"][::5].any()
    with pytest.raises(ValueError, match=r"square images of 3 channel\(s\); 64 features is not 3·side²"):
        apply_views(np.zeros((1, 64), dtype=np.float32), out, rgb)


def test_expand_views_repeats_other_columns_and_rejects_bad_input():
    batch = {"id": np.array([1, 2]), "x": np.random.default_rng(0).random((2, 64), dtype=np.float32), "label": np.array([7, 3])}
    out = expand_views(batch, ViewSpec(channels=1, views=2))
    assert out["label"].tolist() == [7, 7, 3, 3]
    np.testing.assert_array_equal(out["x"][0], batch["x"][0])  # view 0 is the plain image
    replay = apply_views(batch["x"][[0, 0, 1, 1]], out, GRAY)
    np.testing.assert_array_equal(replay, out["x"])
    with pytest.raises(ValueError, match="views must be >= 1"):
        ViewSpec(channels=1, views=0)
    with pytest.raises(ValueError, match="not 1·side²"):
        apply_views(np.zeros((1, 10), dtype=np.float32), out, GRAY)


def test_views_take_their_channels_from_the_data_and_refuse_flat_features(tmp_path):
    cfg = load_config(["--views", "3", "--set", "soft_targets.flip=true"])
    assert view_spec(cfg, check_data(cfg.data)) == ViewSpec(channels=1, views=3, pad=1, flip=True, seed=0)  # the 8x8 digits
    folder = write_digits_image_folder(tmp_path / "digits", size=12, per_class=2)
    cfg = load_config(["--data", str(folder), "--views", "2"])
    assert view_spec(cfg, check_data(cfg.data)).channels == 3
    assert view_spec(load_config(["--data", str(folder)]), None) is None  # one view: nothing to check

    table = write_breast_cancer_parquet(tmp_path / "cancer.parquet")
    cfg = load_config(["--data", str(table), "--views", "2"])
    with pytest.raises(ConfigError, match=r"^soft_targets\.views: 2 shifts images, but .*cancer\.parquet has flat features; .*soft_targets\.views=1$") as err:
        view_spec(cfg, check_data(cfg.data))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^soft_targets\.views \(--views\): 2 needs stored soft targets, but strategy ContrastiveBased needs teacher features"):
        load_config(["--views", "2", "--strategy", "ContrastiveBased"])
