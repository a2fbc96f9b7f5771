"""RGB image folders without Ray: the header scan's one-line errors, the transforms, the digits writer."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from raykd.config import ConfigError, load_config
from raykd.data.digits_images import write_digits_image_folder
from raykd.data.image_transforms import eval_transform
from raykd.data.images import scan_image_folder
from raykd.stages.data import check_data

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_digits_image_folder(tmp_path_factory.mktemp("digits"), size=12, per_class=3)


def test_digits_folder_scans_as_ten_sorted_classes_of_rgb_images(folder):
    scanned = scan_image_folder(folder, image_size=16)
    assert scanned.classes == tuple(str(d) for d in range(10)) and len(scanned.files) == 30
    assert scanned.num_features == 3 * 16 * 16 and not scanned.skipped
    with Image.open(folder / scanned.files[0]) as image:
        assert image.mode == "RGB" and image.size == (12, 12)


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "copy")


def test_bad_folders_fail_with_one_line_naming_the_file(folder, tmp_path):
    root = _copy(folder, tmp_path)
    (root / "3" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"^data\.path: .*3/broken\.png is not a readable image.*data\.bad_images=skip") as err:
        scan_image_folder(root, 16)
    assert "\n" not in str(err.value)
    assert scan_image_folder(root, 16, bad_images="skip").skipped == ("3/broken.png",)
    (root / "3" / "broken.png").unlink()
    Image.new("L", (12, 12)).save(root / "4" / "gray.png")
    with pytest.raises(ValueError, match=r"mixes grayscale \(.*4/gray\.png\) and colour"):
        scan_image_folder(root, 16)
    (root / "4" / "gray.png").unlink()
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*/empty has no images"):
        scan_image_folder(root, 16)


def test_check_data_turns_folder_errors_into_config_errors(folder, tmp_path):
    root = _copy(folder, tmp_path)
    (root / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty has no images"):
        check_data(load_config(["--data", str(root)]).data)


def test_eval_transform_resizes_the_shorter_side_crops_the_centre_and_normalises():
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, 10:30] = 255  # the centre 20 columns are white: the crop keeps them (edges blend under antialiasing)
    x = eval_transform([image], 10, MEAN, STD).reshape(3, 10, 10)
    assert np.allclose(x[:, :, 1:-1], (1 - 0.5) / 0.25, atol=1e-4) and (x[:, :, [0, -1]] > 0).all()

