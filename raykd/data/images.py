"""Image folders as model inputs: unlabeled (`id`, `x`, `path`; grayscale, for pseudo-labeling) or
labeled, one subfolder per class as torchvision's ImageFolder lays it out (`id`, `x`, `label`; RGB).

A labeled folder is scanned on the driver from file headers only (class folders, modes, sizes),
so bad input fails before Ray starts; decoding and transforms run in Ray Data tasks and scale
with the cluster's CPUs.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from raykd.data.image_transforms import eval_transform

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageFolder",
    "RGBSquares",
    "is_image_folder",
    "pack_images",
    "path_id",
    "read_image_folder",
    "read_labeled_images",
    "scan_image_folder",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def is_image_folder(path: str | Path) -> bool:
    path = Path(path)
    if not path.is_dir():
        return False
    files = [f for f in path.rglob("*") if f.is_file()]
    return any(f.suffix.lower() in IMAGE_SUFFIXES for f in files) and not any(f.suffix == ".parquet" for f in files)


def path_id(relative_path: str) -> int:
    """A stable non-negative int64 id for a file: the first 63 bits of sha1 of its relative path."""
    return int.from_bytes(hashlib.sha1(relative_path.encode()).digest()[:8], "big") >> 1


def pack_images(batch: dict[str, np.ndarray], root: str) -> dict[str, np.ndarray]:
    """`image` (B, H, W) uint8 + `path` -> `id` (hash of the path under root), `x` (B, H*W) in [0, 1], `path`."""
    images = np.stack(list(batch["image"])) if batch["image"].dtype == object else batch["image"]
    relative = [os.path.relpath(str(p), root) if os.path.isabs(str(p)) else str(p) for p in batch["path"]]
    return {
        "id": np.array([path_id(r) for r in relative], dtype=np.int64),
        "x": images.reshape(len(images), -1).astype(np.float32) / 255.0,
        "path": np.array(relative, dtype=object),
    }


def read_image_folder(path: str | Path, in_features: int):
    """A folder of PNG/JPEG files as a Ray Dataset of `id`, `x`, `path`: grayscale, resized to the
    model's square input (side = sqrt(in_features)), flattened, scaled to [0, 1]."""
    import ray.data

    side = math.isqrt(in_features)
    ds = ray.data.read_images(str(path), size=(side, side), mode="L", include_paths=True, file_extensions=[s[1:] for s in IMAGE_SUFFIXES])
    return ds.map_batches(pack_images, batch_format="numpy", fn_kwargs={"root": str(Path(path).resolve())})


class RGBSquares:
    """Inputs decoded to `image_size`×`image_size` RGB, flattened channel-major into `x`."""

    image_size: int

    @property
    def num_features(self) -> int:
        return 3 * self.image_size * self.image_size

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)


@dataclass(frozen=True)
class ImageFolder(RGBSquares):
    """A scanned class-per-subfolder image folder: what the data stage and the models need to know.

    Duck-types `raykd.data.Inputs` for the stages (`num_features`, `num_classes`, `image_shape`, ids
    from a hash of each file's path under `root`, as unlabeled folders have them)."""

    root: str
    classes: tuple[str, ...]
    files: tuple[str, ...]
    """Readable image files, paths relative to `root`, sorted."""
    image_size: int
    skipped: tuple[str, ...] = field(default=())
    """Unreadable files left out (`bad_images: skip`)."""
    positional_ids = False
    id_column = "id"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def spec(self):
        from raykd.data.inputs import InputSpec

        return InputSpec(self.root, image_shape=self.image_shape)


def _mode(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # reads the header only
            return "RGB" if image.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr") else "grayscale"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"{path} is not a readable image ({type(err).__name__}: {err})") from None


def scan_image_folder(path: str | Path, image_size: int, bad_images: str = "error") -> ImageFolder:
    """Check a class-per-subfolder image folder; each problem is one line naming the file or folder.

    Classes are the subfolder names, sorted (as ImageFolder numbers them). Refused: a class folder
    without images, an unreadable file (unless `bad_images="skip"`, which counts it), and a folder
    mixing grayscale and colour images (converting one silently would hide a data mistake)."""
    root = Path(path).resolve()
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
    if len(classes) < 2:
        raise ValueError(f"data.path: {path} needs one subfolder of images per class (at least 2), found {classes}; lay it out as root/<class>/<image>.png")
    files, skipped, modes = [], [], {}
    for name in classes:
        found = sorted(f for f in (root / name).rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(f"data.path: class folder {root / name} has no images ({', '.join(IMAGE_SUFFIXES)}); add images or remove the folder")
        for file in found:
            try:
                modes.setdefault(_mode(file), file)
            except ValueError as err:
                if bad_images != "skip":
                    raise ValueError(f"data.path: {err}; remove it, or set data.bad_images=skip to skip unreadable files") from None
                skipped.append(file.relative_to(root).as_posix())
                continue
            files.append(file.relative_to(root).as_posix())
    if len(modes) > 1:
        raise ValueError(
            f"data.path: {path} mixes grayscale ({modes['grayscale']}) and colour ({modes['RGB']}) images; "
            "convert them to one mode (e.g. PIL's Image.convert('RGB'))"
        )
    return ImageFolder(str(root), tuple(classes), tuple(files), image_size, tuple(skipped))


def _label_images(
    batch: dict[str, np.ndarray], root: str, classes: Sequence[str], size: int, mean: Sequence[float], std: Sequence[float]
) -> dict[str, np.ndarray]:
    """Runs in Ray Data tasks: decoded RGB `image` + `path` → `id`, `x` (eval transform), `label`."""
    relative = [os.path.relpath(str(p), root) if os.path.isabs(str(p)) else str(p) for p in batch["path"]]
    index = {name: i for i, name in enumerate(classes)}
    return {
        "id": np.array([path_id(r) for r in relative], dtype=np.int64),
        "x": eval_transform(list(batch["image"]), size, mean, std),
        "label": np.array([index[Path(r).parts[0]] for r in relative], dtype=np.int64),
    }


def read_labeled_images(folder: ImageFolder, mean: Sequence[float], std: Sequence[float], limit: int | None = None):
    """A Ray Dataset of `id`, `x` (3·size² floats: resized, centre-cropped, normalised) and `label`."""
    import ray.data

    files = [str(Path(folder.root) / f) for f in folder.files]
    if limit is not None:  # a spread over the classes: the first N files in hash order, not in class order
        files = sorted(files, key=lambda f: path_id(os.path.relpath(f, folder.root)))[:limit]
    # Images of different sizes decode to separate arrays; the transform makes them one size.
    ds = ray.data.read_images(files, mode="RGB", include_paths=True)
    kwargs = {"root": folder.root, "classes": folder.classes, "size": folder.image_size, "mean": tuple(mean), "std": tuple(std)}
    return ds.map_batches(_label_images, batch_format="numpy", fn_kwargs=kwargs)
