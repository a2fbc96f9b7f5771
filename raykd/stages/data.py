"""Stage 1, data: the embedded digits, the user's Parquet or image folder, split by a hash of the id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import copy

import numpy as np

from raykd.config import ConfigError, DataConfig
from raykd.data import InputSpec, Inputs, read_inputs, resolve_inputs, split_inputs, to_numpy
from raykd.data.image_parquet import ImageParquet, read_image_parquet, scan_image_parquet
from raykd.data.images import ImageFolder, is_image_folder, read_labeled_images, scan_image_folder
from raykd.data.text_inputs import TextInputs, read_text, scan_text, with_tokenizer
from raykd.models import default_student, default_teacher_members, feature_stats
from raykd.models.defaults import RGB_STUDENT, RGB_TEACHER_MEMBERS, TEXT_STUDENT, TEXT_TEACHER_HEAD
from raykd.stages.run import Run, say
from raykd.teachers.transformer import packaged_minilm_dir

__all__ = ["Data", "check_data", "default_architectures", "load_data", "model_spec"]


@dataclass
class Data:
    """The splits as Ray Datasets (materialized), the small train/test arrays, and their sizes."""

    inputs: Inputs | ImageFolder | ImageParquet | TextInputs
    splits: dict[str, Any]
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    standardize: bool
    input_stats: tuple[list[float], list[float]] | None
    """The train split's feature mean and std, when features are standardized."""
    task = "classify"
    """Labelled inputs, scored by accuracy (`raykd.stages.text.TextData` is the "embed" task)."""

    @property
    def pad_token_id(self) -> int | None:
        """The pad id of text inputs (padded token ids); None for features."""
        return self.inputs.pad_token_id if isinstance(self.inputs, TextInputs) else None

    @property
    def num_features(self) -> int:
        return self.inputs.num_features

    @property
    def num_classes(self) -> int:
        return int(self.inputs.num_classes)

    @property
    def source(self) -> str:
        path = self.inputs.spec.path
        return "sklearn digits (embedded)" if path is None else str(path)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train["id"]), "val": int(self.splits["val"].count()), "test": len(self.test["id"])}


def check_data(cfg: DataConfig) -> Inputs | ImageFolder | ImageParquet | TextInputs:
    """Columns, ids, labels and image shape checked from the files' schema (an image folder: from
    its files' headers; text: from its files), before any Ray work."""
    try:
        if cfg.text_column is not None:
            spec = InputSpec(cfg.path, cfg.id_column, cfg.label_column)
            return scan_text(spec, cfg.text_column, cfg.max_length, cfg.limit)
        if cfg.path is not None and cfg.image_column is not None:
            return scan_image_parquet(cfg.path, cfg.image_column, cfg.label_column, cfg.id_column, cfg.image_size)
        if cfg.path is not None and is_image_folder(cfg.path):
            return scan_image_folder(cfg.path, cfg.image_size, cfg.bad_images)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return resolve_inputs(
        InputSpec(
            cfg.path,
            cfg.id_column,
            cfg.label_column,
            tuple(cfg.feature_columns) if cfg.feature_columns else None,
            tuple(cfg.image_shape) if cfg.image_shape else None,
        )
    )


def load_data(run: Run, inputs: Inputs | ImageFolder | ImageParquet | TextInputs | None = None) -> Data:
    cfg = run.cfg.data
    inputs = inputs or check_data(cfg)
    with run.stage("data", inputs.spec.path or "embedded digits") as summary:
        if isinstance(inputs, ImageFolder):
            ds = read_labeled_images(inputs, cfg.image_mean, cfg.image_std, cfg.limit)
            summary.update({"classes_from": "subfolder names", "skipped_images": len(inputs.skipped)})
            if inputs.skipped:
                say(f"data: skipped {len(inputs.skipped)} unreadable image(s), e.g. {inputs.skipped[0]} (data.bad_images=skip)")
        elif isinstance(inputs, ImageParquet):
            ds = read_image_parquet(inputs, cfg.image_mean, cfg.image_std, cfg.bad_images, cfg.limit)
        elif isinstance(inputs, TextInputs):
            inputs = with_tokenizer(inputs, run.cfg.teacher.params.get("model_dir") or str(packaged_minilm_dir()))
            ds = read_text(inputs)  # `limit` was applied when the files were scanned
            summary.update({"classes_from": "sorted label names" if inputs.classes else "integer labels", "max_length": inputs.max_length})
        else:
            if inputs.positional_ids:
                say("data: no id column, so ids are row positions (stable while the files are unchanged)")
            ds = read_inputs(inputs, cfg.limit)
        splits = split_inputs(ds, cfg.split_seed, cfg.val_fraction, cfg.test_fraction)
        splits = {name: ds.materialize() for name, ds in splits.items()}
        train, test = to_numpy(splits["train"]), to_numpy(splits["test"])
        stats = None
        standardize = cfg.standardize and not isinstance(inputs, TextInputs)  # token ids are not standardized
        if standardize:
            mean, std = feature_stats(train["x"])
            stats = (mean.tolist(), std.tolist())
        data = Data(inputs, splits, train, test, standardize, stats)
        summary.update(data.sizes())
        if isinstance(inputs, ImageParquet):
            skipped = min(inputs.num_rows, cfg.limit or inputs.num_rows) - sum(data.sizes().values())
            summary["skipped_images"] = skipped
            if skipped:
                say(f"data: skipped {skipped} undecodable image(s) in {inputs.image_column} (data.bad_images=skip)")
        summary.update({"features": data.num_features, "classes": data.num_classes})
    return data


def model_spec(data: Data, architecture: dict[str, Any]) -> dict[str, Any]:
    """A full spec from an architecture without sizes: sizes and standardization come from the data."""
    return {**architecture, "standardize": data.standardize, "in_features": data.num_features, "num_classes": data.num_classes}


def default_architectures(data: Data) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(teacher members, student) that fit the data: CIFAR ResNets for RGB images, CNNs
    for other image-shaped inputs, MLPs for flat features; for text a head on the Transformer
    teacher's embedding, and a copy of its blocks with a classifier as the student."""
    if isinstance(data.inputs, TextInputs):
        return [copy.deepcopy(TEXT_TEACHER_HEAD)], {**TEXT_STUDENT, "teacher_dir": data.inputs.tokenizer_dir}
    if isinstance(data.inputs, (ImageFolder, ImageParquet)):
        return copy.deepcopy(RGB_TEACHER_MEMBERS), copy.deepcopy(RGB_STUDENT)
    return default_teacher_members(data.inputs.image_shape), default_student(data.inputs.image_shape)
