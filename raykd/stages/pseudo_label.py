"""Batch pseudo-labeling: teachers trained on scarce labels label the rest, a student learns from both.

Stages, per seed (`pseudo_label.seeds`, default `[seed]`):

1. data: the labeled inputs (embedded digits or `data.path` Parquet), loaded and split once by id
   hash; a stratified `pseudo_label.label_fraction` of the train split keeps its labels (drawn per
   seed). The unlabeled pool is the rest of the train split with labels hidden (the demo: their
   true labels score the pseudo-labels), or `pseudo_label.unlabeled` (Parquet with the labeled
   data's feature columns, with or without ids, or a folder of PNG/JPEG images).
2. teachers: an ensemble trained on the labeled rows only as Ray tasks (or `teacher.checkpoint`).
3. pseudo_labels: the unlabeled pool streamed through the teacher actor pool by `generate_parts`
   with a `PseudoLabelEncoder` (resumable, exactly once); then `accepted` from
   `pseudo_label.threshold` and/or `pseudo_label.per_class`, written with the scores to
   <output>/pseudo_labels.parquet.
4. students: the same student (Ray Train, labels only) on the labeled rows alone, then on labeled
   rows + accepted pseudo-labels; both scored on the test split.

Several seeds repeat stages 1b-4 under <output>/seed-N and the report gives mean ± std.
Writes <output>/report.json and <output>/report.md and prints the table.

The Ray Data batch function `keep_ids` lives here, in an importable module, so Ray workers import
it by name.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from raykd.config import PseudoLabelConfig
from raykd.data import InputSpec, Inputs, read_inputs, resolve_inputs
from raykd.data.images import is_image_folder, read_image_folder
from raykd.data.inputs import parquet_files
from raykd.report import markdown_table, pct
from raykd.shuffle import hash_join
from raykd.soft_targets import PseudoLabelEncoder, generate_parts, read_pseudo_labels, shuffle_partitions, teacher_fingerprint, with_accepted
from raykd.stages.data import Data, check_data, load_data
from raykd.stages.run import Run, RunError, open_run
from raykd.stages.student import train_student
from raykd.stages.teachers import prepare_teacher
from raykd.teachers import build_from_config

__all__ = [
    "ROWS",
    "check_teacher_checkpoint",
    "check_unlabeled",
    "format_table",
    "keep_ids",
    "known_labels",
    "labeled_subset",
    "mean_std",
    "pseudo_label_summary",
    "run_pseudo_label",
    "run_seed",
    "with_pseudo_labels",
]


# ----------------------------------------------------------------------------- pure helpers


def labeled_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask keeping round(fraction * n_c) (at least 1) rows of every class c, drawn by `seed`."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        keep[rng.permutation(rows)[: max(1, round(fraction * len(rows)))]] = True
    return keep


def keep_ids(batch: dict[str, np.ndarray], ids: np.ndarray) -> dict[str, np.ndarray]:
    """Ray Data batch function: the rows whose id is in `ids`."""
    keep = np.isin(batch["id"], ids)
    return {k: v[keep] for k, v in batch.items()}


def with_pseudo_labels(unlabeled_ds, chosen: pa.Table):
    """The rows of `unlabeled_ds` whose id is in `chosen` (`id`, `pseudo_label`), as `id`, `x`,
    `label` (other columns, e.g. an image `path`, are dropped): a hash join in Ray tasks whose partitions
    grow with the rows (`shuffle_partitions`), so no task holds every chosen id."""
    import ray.data

    labels = ray.data.from_arrow(pa.table({"id": chosen.column("id").cast(pa.int64()), "label": chosen.column("pseudo_label").cast(pa.int64())}))
    partitions = shuffle_partitions(unlabeled_ds.count())  # the larger side: every chosen id is one of its rows
    return hash_join(unlabeled_ds.select_columns(["id", "x"]), labels, partitions)


def check_unlabeled(path: str, inputs: Inputs) -> Inputs | None:
    """Before Ray starts: the unlabeled Parquet's columns resolved against the labeled data's
    features (ids from the id column, or row positions), or None for an image folder."""
    if is_image_folder(path):
        side = math.isqrt(inputs.num_features)
        if side * side != inputs.num_features:
            raise ValueError(
                f"pseudo_label.unlabeled {path!r} is an image folder, but images need a square model input "
                f"and the labeled data has {inputs.num_features} features"
            )
        return None
    spec = InputSpec(path, inputs.spec.id_column, None, inputs.feature_columns, inputs.image_shape)
    return resolve_inputs(spec)


def check_teacher_checkpoint(checkpoint: str, num_features: int) -> None:
    """Before Ray starts: every member of a given teacher checkpoint takes the data's features."""
    from raykd.teachers.checkpoint import load_members

    for m in load_members(checkpoint)[0]:
        if m.spec.get("in_features") not in (None, num_features):
            raise RunError(f"teacher.checkpoint (--teachers) member {m.name!r} takes {m.spec['in_features']} features but the data has {num_features}")


def known_labels(inputs: Inputs, label_column: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, labels) sorted by id when the unlabeled Parquet (resolved as `inputs`) carries
    `label_column`, to score the pseudo-labels; None otherwise. Positional ids number the rows
    in the order `read_inputs` does: files in sorted path order, rows in file order."""
    path = inputs.spec.path
    if path is None:
        return None
    try:
        schema = pads.dataset(path, format="parquet").schema
    except (pa.ArrowInvalid, OSError):
        return None
    if label_column not in schema.names:
        return None
    if inputs.positional_ids:
        labels = np.concatenate(
            [pq.ParquetFile(f).read(columns=[label_column]).column(0).to_numpy() for f in parquet_files(path)]
        ).astype(np.int64)
        return np.arange(len(labels), dtype=np.int64), labels
    table = pads.dataset(path, format="parquet").to_table(columns=[inputs.id_column, label_column]).sort_by(inputs.id_column)
    return table.column(0).to_numpy().astype(np.int64), table.column(1).to_numpy().astype(np.int64)


def pseudo_label_summary(table: pa.Table, truth: tuple[np.ndarray, np.ndarray] | None, num_classes: int) -> dict[str, Any]:
    """Acceptance, per-class counts, and (when true labels are known) accuracy of all vs accepted."""
    predicted = table.column("pseudo_label").to_numpy()
    accepted = table.column("accepted").to_numpy(zero_copy_only=False)
    rows = len(predicted)
    summary: dict[str, Any] = {
        "rows": rows,
        "accepted": int(accepted.sum()),
        "acceptance_rate": float(accepted.mean()) if rows else 0.0,
        "accepted_per_class": np.bincount(predicted[accepted], minlength=num_classes).tolist(),
        "mean_confidence": float(table.column("confidence").to_numpy().mean()) if rows else None,
        "mean_disagreement": float(table.column("disagreement").to_numpy().mean()) if rows else None,
        "disagreement": "fraction of ensemble members whose argmax differs from the ensemble's",
        "member_kl": "mean over members of KL(p_ensemble || p_member), nats",
        "accuracy_all": None,
        "accuracy_accepted": None,
    }
    if truth is not None and rows and len(truth[0]):
        ids = table.column("id").to_numpy()
        pos = np.clip(np.searchsorted(truth[0], ids), 0, len(truth[0]) - 1)
        found = truth[0][pos] == ids
        correct = (predicted == truth[1][pos]) & found
        if found.any():
            summary["accuracy_all"] = float(correct[found].mean())
            scored = accepted & found
            summary["accuracy_accepted"] = float(correct[scored].mean()) if scored.any() else None
    return summary


def mean_std(values: list[float | None]) -> dict[str, float | None]:
    xs = [v for v in values if v is not None]
    if not xs:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(xs)), "std": float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0}


# ----------------------------------------------------------------------------- the table


ROWS = [
    ("teacher_accuracy", "teacher ensemble, test accuracy"),
    ("pseudo_accuracy_all", "pseudo-labels, accuracy (all)"),
    ("pseudo_accuracy_accepted", "pseudo-labels, accuracy (accepted)"),
    ("acceptance_rate", "acceptance rate"),
    ("student_labeled_only", "student, labeled rows only (test)"),
    ("student_with_pseudo", "student, labeled + pseudo (test)"),
    ("gain", "gain"),
    ("seconds", "seconds (whole seed)"),
]


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key == "seconds":
        return f"{value:.0f}s"
    if key == "gain":
        return f"{100 * value:+.2f} pp"
    return pct(value)


def format_table(report: dict[str, Any]) -> str:
    """A Markdown table: one column per seed, then mean ± std when there are several."""
    seeds, summary = report["seeds"], report["summary"]
    rows = [["metric", *(f"seed {s}" for s in seeds)] + (["mean ± std"] if len(seeds) > 1 else [])]
    for key, label in ROWS:
        stat = summary[key]
        row = [label, *(_cell(key, v) for v in stat["values"])]
        if len(seeds) > 1:
            row.append("—" if stat["mean"] is None else f"{_cell(key, stat['mean'])} ± {_cell(key, stat['std']).lstrip('+')}")
        rows.append(row)
    first = report["runs"][0]
    labels = first["pseudo_labels"]
    selection = " and ".join(
        s
        for s in (
            f"confidence >= {labels['threshold']}" if labels["threshold"] is not None else "",
            f"top {labels['per_class']} per class" if labels["per_class"] else "",
        )
        if s
    ) or "accept all"
    data = first["data"]
    return "\n".join(
        [
            markdown_table(rows),
            "",
            f"data: {data['train']} train rows, {data['labeled']} labeled, {data['unlabeled']} pseudo-labeled ({data['unlabeled_source']}); test {data['test']}",
            f"selection: {selection}; disagreement = {labels['disagreement']}",
            f"total seconds: {report['seconds']['total']:.0f}",
        ]
    )


# ----------------------------------------------------------------------------- the run


def run_pseudo_label(cfg: PseudoLabelConfig, name: str = "pseudo_label") -> dict[str, Any]:
    """Every seed in `cfg.pseudo_label.seeds or [cfg.seed]`; returns (and writes) the combined report."""
    p = cfg.pseudo_label
    seeds = list(p.seeds or [cfg.seed])
    # Every input checked before Ray starts: ids/labels/features, unreadable files, image folders.
    inputs = check_data(cfg.data)
    unlabeled_inputs = check_unlabeled(p.unlabeled, inputs) if p.unlabeled else None
    if cfg.teacher.checkpoint:
        check_teacher_checkpoint(cfg.teacher.checkpoint, inputs.num_features)
    run = open_run(cfg, name)
    data = load_data(run, inputs)  # loaded and split once; each seed draws its own labeled subset
    runs = []
    for seed in seeds:
        seed_cfg = cfg.model_copy(update={"seed": seed})
        # One seed writes straight into the run directory; several get a Run of their own each
        # (teachers/, students and pseudo-labels under seed-N), all on the same data.
        seed_run = Run(seed_cfg, run.out, run.location) if len(seeds) == 1 else open_run(seed_cfg, f"{name} seed {seed}", out=run.at(f"seed-{seed}"))
        runs.append(run_seed(seed_run, data, seed, unlabeled_inputs))
    metrics = [r["metrics"] for r in runs]
    report = {
        "seeds": seeds,
        "summary": {key: {**mean_std([m[key] for m in metrics]), "values": [m[key] for m in metrics]} for key, _ in ROWS},
        "runs": runs,
        "config": cfg.model_dump(mode="json"),
        "seconds": run.total(),
    }
    table = format_table(report)
    images = [s[k]["curves_png"] for s in (r["student"] for r in runs) if s for k in ("labeled_only", "with_pseudo")]
    run.report(report, "raykd pseudo-labeling", table, images)
    return report


def run_seed(run: Run, data: Data, seed: int, unlabeled_inputs: Inputs | None) -> dict[str, Any]:
    """Stages 1b-4 for one seed, writing under `run.out`; returns the seed's report entry."""
    cfg = run.cfg
    p = cfg.pseudo_label  # type: ignore[attr-defined]
    train, test = data.train, data.test
    num_classes = data.num_classes

    # 1b. This seed's labeled subset of the train split; the unlabeled pool.
    with run.stage("data", f"{p.label_fraction:.0%} of the train split labeled, seed {seed}") as summary:
        labeled = labeled_subset(train["label"], p.label_fraction, seed)
        labeled_ds = data.splits["train"].map_batches(keep_ids, batch_format="numpy", fn_kwargs={"ids": train["id"][labeled]}).materialize()
        columns: tuple[str, ...] = ("id", "x")
        if p.unlabeled is None:
            truth: tuple[np.ndarray, np.ndarray] | None = (train["id"][~labeled], train["label"][~labeled])
            unlabeled_ds = data.splits["train"].map_batches(keep_ids, batch_format="numpy", fn_kwargs={"ids": truth[0]}).select_columns(["id", "x"])
        elif unlabeled_inputs is None:
            truth = None
            unlabeled_ds, columns = read_image_folder(p.unlabeled, data.num_features), ("id", "x", "path")
        else:
            truth = known_labels(unlabeled_inputs, cfg.data.label_column)
            unlabeled_ds = read_inputs(unlabeled_inputs)
        unlabeled_ds = unlabeled_ds.materialize()
        summary.update({"labeled": int(labeled.sum()), "unlabeled": unlabeled_ds.count()})

    # 2. Teachers: an ensemble trained on the labeled rows only (Ray tasks), or loaded.
    teacher = prepare_teacher(run, data, labeled=labeled, seed=seed)

    # 3. Pseudo-labels: the teacher actor pool writes exactly-once parts; selection is a pure function after.
    st = cfg.soft_targets
    with run.stage("pseudo_labels", f"{teacher.label}, {st.pool_size} actor(s)") as summary:
        ensemble = build_from_config(teacher.config)
        encoder = PseudoLabelEncoder(teacher_fingerprint(ensemble), num_classes, ensemble.describe())
        labeling = generate_parts(
            unlabeled_ds,
            functools.partial(build_from_config, teacher.config),
            encoder,
            run.at("pseudo_labels"),
            batch_size=st.batch_size,
            pool_size=st.pool_size,
            num_cpus=st.num_cpus,
            num_gpus=st.num_gpus,
            columns=columns,
            requirements=ensemble.requirements(),
        )
        table = with_accepted(read_pseudo_labels(labeling.path), threshold=p.threshold, per_class=p.per_class)
        pseudo_path = run.out / "pseudo_labels.parquet"
        pq.write_table(table, pseudo_path)
        pseudo = pseudo_label_summary(table, truth, num_classes)
        pseudo.update({"path": run.where(pseudo_path), "parts": labeling.path, "new_rows": labeling.new_rows, "threshold": p.threshold, "per_class": p.per_class})
        summary.update({"rows": pseudo["rows"], "accepted": pseudo["accepted"], "accuracy_accepted": pct(pseudo["accuracy_accepted"])})

    # 4. Students: the same student on labeled rows alone, then with the accepted pseudo-labels.
    student: dict[str, Any] | None = None
    if p.students:
        chosen = table.filter(table.column("accepted"))
        with_pseudo_ds = labeled_ds.union(with_pseudo_labels(unlabeled_ds, chosen)).materialize() if chosen.num_rows else labeled_ds
        # The two fits are independent and mostly wait on Ray Train's start-up and polling, so they
        # run side by side (Ray Train supports a trainer per driver thread, as Tune does).
        with run.stage("students", "labeled rows only | labeled + accepted pseudo-labels, side by side"), ThreadPoolExecutor(max_workers=2) as pool:
            labeled_only_future = pool.submit(train_student, run, data, "student_labeled_only", None, train_ds=labeled_ds, seed=seed)
            with_pseudo_future = pool.submit(train_student, run, data, "student_with_pseudo", None, train_ds=with_pseudo_ds, seed=seed)
            labeled_only, with_pseudo = labeled_only_future.result(), with_pseudo_future.result()
        student = {
            "params": labeled_only["params"],
            "rows": {"labeled_only": int(labeled.sum()), "with_pseudo": int(labeled.sum()) + pseudo["accepted"]},
            "labeled_only": labeled_only,
            "with_pseudo": with_pseudo,
            "gain": with_pseudo["accuracy"] - labeled_only["accuracy"],
        }

    report: dict[str, Any] = {
        "seed": seed,
        "output": run.location,
        "data": {
            "source": data.source,
            "ids": "row positions (no id column)" if data.inputs.positional_ids else "id column",
            "unlabeled_source": p.unlabeled or f"train split minus the {p.label_fraction:.0%} labeled rows (labels hidden)",
            "unlabeled_ids": None if unlabeled_inputs is None else ("row positions (no id column)" if unlabeled_inputs.positional_ids else "id column"),
            "train": len(train["id"]),
            "labeled": int(labeled.sum()),
            "unlabeled": pseudo["rows"],
            "val": data.sizes()["val"],
            "test": len(test["id"]),
        },
        "teachers": teacher.member_rows,
        "ensemble": {**teacher.describe(), "combine": getattr(ensemble, "combine", None)},
        "pseudo_labels": pseudo,
        "student": student,
        "seconds": run.total(),
    }
    report["metrics"] = {
        "teacher_accuracy": teacher.accuracy,
        "pseudo_accuracy_all": pseudo["accuracy_all"],
        "pseudo_accuracy_accepted": pseudo["accuracy_accepted"],
        "acceptance_rate": pseudo["acceptance_rate"],
        "student_labeled_only": student["labeled_only"]["accuracy"] if student else None,
        "student_with_pseudo": student["with_pseudo"]["accuracy"] if student else None,
        "gain": student["gain"] if student else None,
        "seconds": report["seconds"]["total"],
    }
    return report
