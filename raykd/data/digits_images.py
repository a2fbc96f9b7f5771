"""An offline RGB image-folder dataset derived from the embedded digits (no download).

The 1,797 scikit-learn 8×8 digits, upscaled to `size`×`size` and drawn in one of six colours
(chosen by the image's index) on black, written as PNGs under `root/<digit>/<index>.png`: the
ImageFolder layout a user brings. It is the digits in colour, not a natural-image benchmark.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

__all__ = ["write_digits_image_folder"]

# Six saturated colours, so the three channels carry different intensities.
PALETTE = np.array([[1, 0.2, 0.2], [0.2, 1, 0.2], [0.3, 0.4, 1], [1, 1, 0.2], [1, 0.3, 1], [0.2, 1, 1]], dtype=np.float32)


def write_digits_image_folder(root: str | Path, size: int = 32, per_class: int | None = None) -> Path:
    """Write the digits as RGB PNGs under `root/<label>/<index>.png`; `per_class` keeps the first N of each digit."""
    from PIL import Image

    root = Path(root)
    bunch = load_digits()
    counts: dict[int, int] = {}
    for index, (pixels, label) in enumerate(zip(bunch.images, bunch.target)):
        if per_class is not None and counts.get(int(label), 0) >= per_class:
            continue
        counts[int(label)] = counts.get(int(label), 0) + 1
        rgb = (pixels[..., None] / 16.0 * PALETTE[index % len(PALETTE)] * 255).round().astype(np.uint8)
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb, "RGB").resize((size, size), Image.BILINEAR).save(folder / f"{index:04d}.png")
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m raykd.data.digits_images", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder to write (created)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    parser.add_argument("--per-class", type=int, default=None, help="keep the first N images of each digit")
    args = parser.parse_args(argv)
    print(write_digits_image_folder(args.root, args.size, args.per_class))


if __name__ == "__main__":
    main()
