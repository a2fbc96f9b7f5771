"""Stage 4, a student on Ray Train, then scored on the test split."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch

from raykd import strategies
from raykd.config import StrategyConfig, StudentConfig
from raykd.models import build_model, count_parameters
from raykd.models.fit import accuracy, predict_logits
from raykd.stages.data import Data, default_architectures, model_spec
from raykd.stages.run import Run, say
from raykd.stages.soft_targets import SoftTargets
from raykd.stages.teachers import TeacherStage
from raykd.train import StudentJob, default_ce_weight, evaluate_embedding, fit_student, load_student, needs_online_teacher
from raykd.train.teaching import in_loop_kind, trained_teacher
from raykd.train.tracking import WandbRun

__all__ = ["train_student", "strategy_arguments", "default_teacher_layers"]

# Ray Data re-reads a streamed shard every epoch; shards smaller than this stay in worker memory.
CACHE_BELOW_BYTES = 512 * 2**20


MEMORY_BANK_LIMIT = 16 * 2**30
"""Bytes of memory banks a strategy may ask for before the run is refused (sparse or hashed ids)."""


def strategy_arguments(strategy: StrategyConfig, n_data: int) -> dict[str, Any]:
    """The user's parameters, plus the memory-bank size `n_data` (train ids lie in [0, n_data)) for
    strategies with a bank over the training set (they declare `index` in `requires`); their
    negatives (`nce_k`) cannot outnumber the bank."""
    params = dict(strategy.params)
    if "index" in strategies.STRATEGIES.get(strategy.name).requires:
        bank = 2 * n_data * int(params.get("feat_dim", 128)) * 4  # a float32 bank per side
        if bank > MEMORY_BANK_LIMIT:
            raise ValueError(
                f"{strategy.name} keeps a memory bank row per train id, and these ids reach {n_data - 1:,} "
                f"({bank / 2**30:,.0f} GiB of banks): it needs ids numbering the samples 0..N-1 (an image folder's ids "
                "are hashes of its paths); give the data an integer id column, or pick another strategy"
            )
        params.setdefault("n_data", n_data)
        params["nce_k"] = min(int(params.get("nce_k", 16384)), n_data - 1)
    return params


def default_teacher_layers(teacher: TeacherStage, student_layers: list[str]) -> list[str]:
    """The first member's layers of the same names as the student's where it has them all, else
    its last len(student_layers) feature layers; qualified by member for an Ensemble."""
    if not teacher.members:
        raise ValueError("the teacher has no members of raykd's own architectures; set teacher.layers for feature strategies")
    available = list(getattr(teacher.members[0].model, "feature_layers", []))
    names = student_layers if set(student_layers) <= set(available) else available[-len(student_layers) :]
    if len(names) != len(student_layers):
        raise ValueError(
            f"the first teacher member has feature layers {available}, fewer than the student's {student_layers}; set teacher.layers"
        )
    return [f"{teacher.members[0].name}.{n}" for n in names] if teacher.kind == "Ensemble" else names


def _steps_per_epoch(cfg: StudentConfig, train_ds: Any, data: Data) -> int:
    """Batches per worker per epoch: Ray Train splits the train set into equal shards."""
    rows = len(data.train["id"]) if train_ds is data.splits["train"] else train_ds.count()
    return max(1, math.ceil(rows // cfg.num_workers / cfg.batch_size))


def train_student(
    run: Run,
    data: Data,
    name: str,
    strategy: StrategyConfig | None,
    teacher: TeacherStage | None = None,
    soft: SoftTargets | None = None,
    train_ds: Any = None,
    seed: int | None = None,
    in_tune: Literal["callback", "trial"] | None = None,
) -> dict[str, Any]:
    """One student: with `strategy` on the train split joined with its soft targets (or with the
    teacher run inside each worker, for strategies that need its features), or on labels only
    (`strategy=None`, on `train_ds` when given). `data` may also be a `raykd.stages.text.TextData`
    (task "embed": no labels; the teacher's stored embeddings stand in for its outputs unless
    `student.teacher_in_workers`; scored by the embedding cosine to the teacher's on the test
    split). Returns its report entry. `in_tune`: the student is a Ray Tune trial's, and each epoch
    goes to Tune as well (`raykd.train.fit_student`)."""
    cfg = run.cfg.student
    seed = run.cfg.seed if seed is None else seed
    spec = model_spec(data, cfg.model or default_architectures(data)[1])
    # A memory bank is indexed by sample id (CRD), so it spans the largest train id, not the row count.
    params = strategy_arguments(strategy, int(data.train["id"].max()) + 1) if strategy else {}
    built = strategies.build(strategy.name, **params) if strategy else None
    ce_weight = cfg.ce_weight if strategy and cfg.ce_weight is not None else default_ce_weight(built)
    layers = cfg.layers or list(build_model(spec).feature_layers)
    teaching = in_loop_kind(teacher.kind, teacher.config) if strategy is not None and teacher is not None else None
    teacher_config = None
    if teaching == "EMA":
        pass  # the student's own moving average, built in the workers
    elif needs_online_teacher(built) and data.task == "classify":
        assert teacher is not None, "a feature strategy needs the run's teacher"
        teacher_config = {**teacher.config, "layers": run.cfg.teacher.layers or default_teacher_layers(teacher, layers)}
    elif strategy is not None and (cfg.teacher_in_workers or teaching == "Online"):
        assert teacher is not None, "student.teacher_in_workers needs the run's teacher"
        teacher_config = dict(teacher.config)
    stored = teacher_config is None and teaching != "EMA"
    if strategy is not None and stored and soft is None and train_ds is None:
        raise ValueError(f"strategy {strategy.name} learns from stored soft targets; run the soft-target stage first")
    if train_ds is None:
        train_ds = soft.train if soft is not None and stored else data.splits["train"]
    views = soft.views if soft is not None and train_ds is soft.train else 1  # rows per train sample
    job = StudentJob(
        config=cfg,
        model_spec=spec,
        num_classes=data.num_classes,
        strategy=strategy.name if strategy else None,
        strategy_params=params,
        ce_weight=ce_weight,
        seed=seed,
        decode=run.cfg.soft_targets.decode,
        cache_shards=cfg.cache_shards if cfg.cache_shards is not None else views * data.splits["train"].size_bytes() < CACHE_BELOW_BYTES,
        input_stats=data.input_stats,
        student_layers=tuple(layers),
        teacher_config=teacher_config,
        # The labels-only baseline shares the learning-rate schedule only.
        schedules={k: v for k, v in cfg.schedules.items() if strategy is not None or k == "lr"},
        steps_per_epoch=_steps_per_epoch(cfg, train_ds, data) if any(s.per == "step" for s in cfg.schedules.values()) else 1,
        teaching=teaching,
        teaching_params=dict(teacher.config) if teaching else {},
        task=data.task,
        pad_token_id=data.pad_token_id,
    )
    what = f"{strategy.name}{' ' + str(strategy.params) if strategy.params else ''}" if strategy else "labels only"
    what += f", {teacher.kind} teacher acting in the loop" if teaching else ""
    what += f", {views} stored views per image" if views > 1 else ""
    extra = f" + {ce_weight:g}·CE" if strategy and ce_weight else ""
    with run.stage(name, f"{what}{extra}, {cfg.num_workers} Ray Train worker(s), {cfg.epochs} epochs") as summary:
        tracking = run.cfg.tracking
        tracker = WandbRun(
            run.out / name, tracking.project, f"{run.out.name}/{name}", tracking.tags,
            {"student": name, **run.cfg.model_dump(mode="json")}, tracking.wandb_mode,
        ) if tracking.wandb else None  # fmt: skip
        fit = fit_student(
            job, train_ds, data.splits["val"], name=name, storage_path=run.at("checkpoints"), run_dir=run.out / name, emit=say, tracker=tracker,
            in_tune=in_tune,
        )
        model, _ = load_student(fit.best_checkpoint)
        trained = trained_teacher(teaching, teacher_config, spec, fit.best_checkpoint)
        if data.task == "embed":
            test = [{k: torch.as_tensor(data.test[k][i : i + 256]) for k in ("x", "features")} for i in range(0, len(data.test["x"]), 256)]
            score = {"embedding_cosine": evaluate_embedding(model, test)["cosine"], "val_cosine": fit.best_score}
        else:
            score = {"accuracy": accuracy(predict_logits(model, data.test["x"]), data.test["label"]), "val_accuracy": fit.best_val_accuracy}
        result = {
            "strategy": strategy.name if strategy else None,
            "strategy_params": dict(strategy.params) if strategy else {},
            "ce_weight": ce_weight,
            **score,
            "epochs": fit.epochs,
            "epoch_seconds": float(fit.last_metrics.get("epoch_seconds", float("nan"))),
            "fit_seconds": round(fit.seconds, 2),
            "params": count_parameters(model),
            "model": spec,
            "checkpoint": fit.best_checkpoint,
            "metrics_csv": fit.metrics_csv,
            "curves_png": fit.curves_png,
            "wandb": tracker.path if tracker else None,
            "teaching": teaching,
            # A teacher that trained with the student, as the kept checkpoint left it.
            "teacher_accuracy": accuracy(predict_logits(trained, data.test["x"]), data.test["label"]) if trained is not None else None,
        }
        if data.task == "embed":
            summary.update({"test_embedding_cosine": f"{result['embedding_cosine']:.4f}", "best_val_cosine": f"{fit.best_score:.4f}"})
        else:
            summary.update({"test_accuracy": f"{100 * result['accuracy']:.2f}%", "best_val": f"{100 * fit.best_val_accuracy:.2f}%"})
        summary["curves"] = str(Path(fit.curves_png).relative_to(run.out))
    return result
