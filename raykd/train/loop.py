"""The per-worker training loop of a student (runs inside Ray Train workers).

Pure-torch helpers (`student_loss`, `evaluate`) carry the maths; `train_student_loop` only adds
Ray Train's data shards, reporting and checkpoints around them.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
import time
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raykd import strategies
from raykd.models import build_model
from raykd.outputs import FeatureExtractor, ModelOutput
from raykd.soft_targets.codec import decode_topk
from raykd.train.checkpoint import load_training_state, read_checkpoint, save_student
from raykd.train.job import StudentJob
from raykd.train.session import Session, TrainSession
from raykd.train.early_stopping import EarlyStopping
from raykd.train import zero
from raykd.train.teaching import build_teaching
from raykd.tokens import token_inputs

__all__ = ["train_student_loop", "student_loss", "default_ce_weight", "evaluate", "evaluate_embedding", "needs_online_teacher"]

ONLINE_NEEDS = {"features", "attentions", "hidden_states"}


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) or zero.is_engine(module) else module


def needs_online_teacher(strategy: nn.Module | None) -> bool:
    return strategy is not None and bool(ONLINE_NEEDS & set(getattr(_unwrap(strategy), "requires", ())))


def student_loss(
    student: nn.Module,
    strategy: nn.Module | None,
    batch: dict[str, torch.Tensor],
    num_classes: int,
    teacher: nn.Module | None = None,
    decode: str = "renormalize",
    ce_weight: float = 0.0,
    teacher_out: ModelOutput | None = None,
    sample_weight: torch.Tensor | None = None,
    pad_token_id: int | None = None,
) -> dict[str, torch.Tensor]:
    """The loss of one batch and its parts: `distill` (the strategy on student vs teacher outputs)
    plus `ce_weight` times cross-entropy on the labels; without a strategy, cross-entropy alone.
    The teacher's outputs are `teacher_out` when given, else `teacher` runs on the batch, else the
    batch's stored soft targets are decoded. `sample_weight` (B,) weighs each sample's distillation
    term (strategies with `weighs_samples`). With `pad_token_id` (inputs are padded token ids) a
    strategy that takes an `attention_mask` gets it. `agreement` is the batch's top-1 agreement
    with the teacher, where both give class logits; `student_logits` (detached) are for the caller."""
    out = student(batch["x"])
    student_out = out if isinstance(out, ModelOutput) else ModelOutput(logits=out)
    if strategy is None:
        ce = F.cross_entropy(student_out.logits, batch["label"])
        return {"loss": ce, "ce": ce, "student_logits": student_out.logits.detach()}
    if teacher_out is None:
        teacher_out = teacher.predict(batch["x"]) if teacher is not None else stored_teacher_output(batch, num_classes, decode)
    requires = getattr(_unwrap(strategy), "requires", frozenset())
    extras: dict[str, torch.Tensor] = {"index": batch["id"]} if "index" in requires else {}
    if sample_weight is not None:
        if not getattr(_unwrap(strategy), "weighs_samples", False):
            raise ValueError(f"strategy {type(_unwrap(strategy)).__name__} takes no per-sample weights")
        extras["sample_weight"] = sample_weight
    if pad_token_id is not None and "attention_mask" in inspect.signature(_unwrap(strategy).forward).parameters:
        extras["attention_mask"] = token_inputs(batch["x"], pad_token_id)["attention_mask"]  # as the models cut it
    distill = strategy(student_out, teacher_out, batch.get("label"), **extras)
    parts = {"loss": distill, "distill": distill, "student_logits": student_out.logits.detach()}
    if ce_weight:
        parts["ce"] = F.cross_entropy(student_out.logits, batch["label"])
        parts["loss"] = distill + ce_weight * parts["ce"]
    if "label" in batch and teacher_out.logits is not None and teacher_out.logits.shape == student_out.logits.shape:
        # top-1 agreement with the teacher on this batch (a measurement: no gradient)
        parts["agreement"] = (student_out.logits.detach().argmax(-1) == teacher_out.logits.argmax(-1)).float().mean()
    return parts


def stored_teacher_output(batch: dict[str, torch.Tensor], num_classes: int, decode: str) -> ModelOutput:
    """The teacher's logits of a batch, decoded from its stored top-k soft-target columns; for an
    embedding teacher (only a `features` column), its stored pooled embedding as logits and feature."""
    if "topk_values" not in batch and "features" in batch:
        embedding = batch["features"].float()
        return ModelOutput(logits=embedding, features=OrderedDict(embedding=embedding))
    logsumexp = batch.get("logsumexp")
    return ModelOutput(logits=decode_topk(batch["topk_values"], batch["topk_indices"], num_classes, mode=decode, logsumexp=logsumexp))


def default_ce_weight(strategy: nn.Module | None) -> float:
    """1.0 for a strategy whose loss uses neither logits nor labels (a feature-only loss carries no
    label signal; the CRD benchmark adds CE with γ=1), else 0: the strategy has its own label term."""
    if strategy is None:
        return 1.0
    return 0.0 if {"logits", "labels"} & set(getattr(_unwrap(strategy), "requires", ())) else 1.0


ECE_BINS = 15


@torch.inference_mode()
def evaluate(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Accuracy, mean cross-entropy and expected calibration error over all batches.

    ECE (Guo et al. 2017, "On Calibration of Modern Neural Networks"): the confidence-weighted gap
    between accuracy and mean confidence over 15 equal-width confidence bins.
    """
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    bins = torch.zeros(3, ECE_BINS, dtype=torch.float64)  # count, confidence sum, correct sum
    for batch in batches:
        out = model(batch["x"])
        logits = out.logits if isinstance(out, ModelOutput) else out
        loss_sum += float(F.cross_entropy(logits, batch["label"], reduction="sum"))
        confidence, predicted = logits.float().softmax(-1).max(-1)
        hit = predicted == batch["label"]
        correct += int(hit.sum())
        total += len(batch["label"])
        index = (confidence * ECE_BINS).long().clamp_(max=ECE_BINS - 1).cpu()
        for row, values in enumerate((torch.ones_like(confidence), confidence, hit.double())):
            bins[row].index_add_(0, index, values.double().cpu())
    model.train()
    if total == 0:
        raise ValueError("the validation split is empty; lower the split fractions' sum or add data")
    ece = float((bins[1] - bins[2]).abs().sum() / total)
    return {"accuracy": correct / total, "loss": loss_sum / total, "ece": ece}


@torch.inference_mode()
def evaluate_embedding(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Mean cosine between the model's output embedding and the teacher's (`features`) over all rows."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        out = model(batch["x"])
        embedding = out.logits if isinstance(out, ModelOutput) else out
        total += float(F.cosine_similarity(embedding.float(), batch["features"].float(), dim=-1).sum())
        count += len(batch["x"])
    model.train()
    if count == 0:
        raise ValueError("the validation split is empty; hold out more sentences")
    return {"cosine": total / count}


class ShardBatches:
    """A worker's batches for each epoch: streamed from its Ray Data shard, or cached.

    Streaming re-reads the shard every epoch (any size, but each epoch pays Ray Data's start-up);
    caching keeps the shard as tensors after the first epoch and reshuffles them in memory with a
    seeded permutation, for shards that fit in worker memory. Both give every worker the same
    number of batches, since Ray Train splits the train set into equal shards.
    """

    def __init__(self, shard, batch_size: int, device: torch.device, seed: int, cache: bool, shuffle: bool = True) -> None:
        self.shard, self.batch_size, self.device, self.seed = shard, batch_size, device, seed
        self.cache, self.shuffle = cache, shuffle
        self._tensors: dict[str, torch.Tensor] | None = None
        self._streaming = False

    def _stream(self, epoch: int) -> Iterable[dict[str, torch.Tensor]]:
        shuffle = {"local_shuffle_buffer_size": 4 * self.batch_size, "local_shuffle_seed": self.seed + epoch} if self.shuffle else {}
        return self.shard.iter_torch_batches(batch_size=self.batch_size, device=self.device, **shuffle)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The whole shard as tensors (read once, then kept): only for cached shards."""
        if not self.cache:
            raise RuntimeError("the shard is streamed; set student.cache_shards: true to hold it in memory")
        if self._tensors is None:
            parts = list(self.shard.iter_torch_batches(batch_size=4096, device=self.device))
            tensors = {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}
            # Rows arrive in the order Ray Data's join produced them, which varies run to run: by
            # id, the seeded shuffles repeat whatever that order was.
            by_id = torch.argsort(tensors["id"]) if tensors else None
            self._tensors = {k: v[by_id] for k, v in tensors.items()}
        return self._tensors

    def epoch(self, epoch: int, rows: torch.Tensor | None = None) -> Iterable[dict[str, torch.Tensor]]:
        """The epoch's batches; `rows` (positions in the shard) limits them to those rows, shuffled."""
        if rows is not None and not self.cache:
            raise RuntimeError("an epoch over chosen rows (a curriculum) needs student.cache_shards: true")
        if not self.cache:
            if self._streaming:
                raise RuntimeError(
                    "a second pass over the shard started while one is running (a strategy's prepare() "
                    "step); set student.cache_shards: true so the shard is held in memory"
                )
            self._streaming = True
            try:
                yield from self._stream(epoch)
            finally:
                self._streaming = False
            return
        tensors = self.tensors()
        if not tensors:
            return
        chosen = torch.arange(len(tensors["id"])) if rows is None else rows.cpu()
        n = len(chosen)
        order = chosen[torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + epoch))] if self.shuffle else chosen
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size].to(self.device)
            yield {k: v[idx] for k, v in tensors.items()}


def _plain(module: nn.Module) -> nn.Module:
    """The student model itself, under DDP and a FeatureExtractor."""
    target = _unwrap(module)
    return target.model if isinstance(target, FeatureExtractor) else target


def train_student_loop(config: dict[str, Any]) -> None:
    """A student's training: `config["job"]` (a `StudentJob`) run where `config["session"]` says
    (a `TrialSession`), else in a Ray Train worker."""
    from raykd.models import set_input_stats
    from raykd.teachers import build_from_config

    job: StudentJob = config["job"]
    session: Session = config.get("session") or TrainSession()
    cfg = job.config
    # Ray Train 2.60 sets the workers' root logger to INFO and logs every report and checkpoint
    # through loggers named by file path, which its LoggingConfig does not reach; the driver prints
    # one line per epoch instead.
    logging.getLogger().setLevel(logging.WARNING)
    rank, world = session.world_rank, session.world_size
    torch.manual_seed(job.seed)
    np.random.seed(job.seed)

    strategy = strategies.build(job.strategy, **job.strategy_params) if job.strategy else None
    online = strategy is not None and job.teacher_config is not None  # the teacher runs here, per batch
    # Hooked features for the strategy; an embedding student returns its token states and
    # attention maps itself, and stored embeddings stand in for the teacher's pooled output.
    features = needs_online_teacher(strategy) and job.task == "classify"
    base = build_model(job.model_spec)
    if job.input_stats is not None:
        set_input_stats(base, *job.input_stats)
    student: nn.Module = FeatureExtractor(base, job.student_layers) if features else base
    if features and job.teacher_config is None and job.teaching != "EMA":
        raise ValueError(f"strategy {job.strategy} needs teacher features; the run has no teacher to run in the workers")
    teacher = build_from_config(job.teacher_config) if online else None
    # DDP, or a DeepSpeed engine made with the optimizer below (ZeRO shards what DDP replicates).
    device = session.device
    student = student.to(device) if cfg.zero_stage else session.prepare(student)
    if teacher is not None:
        teacher.to(device)

    def teacher_logits(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return teacher.predict(batch["x"]).logits if teacher is not None else stored_teacher_output(batch, job.num_classes, job.decode).logits

    teaching = build_teaching(
        job.teaching if strategy is not None else None, job.teaching_params, teacher, _plain(student),
        teacher_logits, job.num_classes, job.student_layers if features else (),
    )  # fmt: skip

    stopper = EarlyStopping(cfg.min_delta, cfg.patience) if cfg.early_stopping else None
    start_epoch, resumed = 0, {}
    checkpoint = session.checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            weights, state = read_checkpoint(ckpt_dir)
            resumed = load_training_state(ckpt_dir)
        _plain(student).load_state_dict(weights)
        start_epoch = int(state["epoch"]) + 1
        if stopper is not None and "early_stopping" in state:
            stopper.load_state_dict(state["early_stopping"])
        if "teaching" in resumed:
            teaching.load_state_dict(resumed["teaching"])

    optimizer: torch.optim.Optimizer | None = None
    train_batches = ShardBatches(session.dataset("train"), cfg.batch_size, device, job.seed, job.cache_shards)
    val_batches = ShardBatches(session.dataset("val"), 1024, device, job.seed, job.cache_shards, shuffle=False)

    def loss_of(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if strategy is None:
            return student_loss(student, None, batch, job.num_classes)
        teacher_out = teaching.teacher_output(batch)
        if teacher_out is None:
            teacher_out = stored_teacher_output(batch, job.num_classes, job.decode)
        weight = teaching.sample_weight(batch, teacher_out)
        return student_loss(student, strategy, batch, job.num_classes, None, job.decode, job.ce_weight, teacher_out, weight, job.pad_token_id)

    def scheduled(progress: float) -> dict[str, float]:
        """Sets the learning rate and the strategy's scheduled parameters for this point of training."""
        values = {key: schedule.value(progress, cfg.epochs) for key, schedule in job.schedules.items()}
        for key, value in values.items():
            if key == "lr":
                for group in optimizer.param_groups if optimizer is not None else ():
                    group["lr"] = value
            elif strategy is not None:
                setattr(_unwrap(strategy), key, value)
        return values

    for epoch in range(start_epoch, cfg.epochs):
        if strategy is not None and hasattr(_unwrap(strategy), "set_epoch"):
            _unwrap(strategy).set_epoch(epoch)
        sums: dict[str, float] = {}
        batches, samples, epoch_start = 0, 0, time.perf_counter()
        at_start = scheduled(float(epoch))
        for batch in train_batches.epoch(epoch, teaching.rows(epoch, train_batches.tensors)):
            if optimizer is None:
                # Strategies may build their modules from the first batch's shapes: materialise
                # them before the optimizer is made, so it trains them with the student.
                if strategy is not None:
                    with torch.no_grad():
                        loss_of(batch)
                    if teacher is not None or teaching.network is not None:
                        _unwrap(strategy).prepare(lambda: [teaching.teacher_output(b) for b in train_batches.epoch(0)])
                    if world > 1 and any(True for _ in strategy.parameters()):
                        # Some parts train only in some phases (a frozen paraphraser): let DDP skip them.
                        strategy = session.prepare(strategy, find_unused_parameters=True)
                    if "strategy" in resumed:
                        _unwrap(strategy).load_state_dict(resumed["strategy"])
                params = list(student.parameters()) + (list(strategy.parameters()) if strategy is not None else [])
                optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
                if cfg.zero_stage:
                    if strategy is not None and any(True for _ in strategy.parameters()):
                        raise ValueError(
                            f"student.zero_stage: strategy {job.strategy} trains modules of its own, and ZeRO shards the "
                            "student alone; use zero_stage 0 or a strategy without modules (ResponseBased, DecoupledKD, ...)"
                        )
                    student = zero.wrap(student, optimizer, cfg.zero_stage, cfg.batch_size)
                    optimizer = student.optimizer
                    if checkpoint is not None:
                        with checkpoint.as_directory() as ckpt_dir:
                            zero.load_shard(student, ckpt_dir, rank, world)
                elif "optimizer" in resumed:
                    optimizer.load_state_dict(resumed["optimizer"])
            scheduled(epoch + min(batches / job.steps_per_epoch, 0.999))
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                parts = loss_of(batch)
            logits = parts.pop("student_logits")
            if cfg.zero_stage:
                student.backward(parts["loss"])
                student.step()
            else:
                parts["loss"].backward()
                optimizer.step()
            parts.update(teaching.after_step(batch, logits))
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach() if isinstance(value, torch.Tensor) else value)
            batches += 1
            samples += len(batch["id"])

        val = (evaluate_embedding if job.task == "embed" else evaluate)(student, val_batches.epoch(epoch))
        taught = teaching.end_epoch(lambda model: evaluate(model, val_batches.epoch(epoch)))
        metrics = {
            "epoch": epoch,
            **{key: total / max(1, batches) for key, total in sums.items()},
            "samples_per_worker": samples,
            **{f"val_{key}": value for key, value in val.items()},
            **{key: value for key, value in at_start.items() if key != "lr"},
            "lr": at_start.get("lr", cfg.lr),
            **taught,
            "epoch_seconds": time.perf_counter() - epoch_start,
        }
        stop = stopper.step(metrics[job.score_metric]) if stopper else False
        last = stop or epoch == cfg.epochs - 1
        due = (epoch + 1) % cfg.checkpoint_every == 0 or last
        # ZeRO: every worker takes part in gathering the weights and writes its optimizer shard.
        weights = zero.full_state_dict(student) if cfg.zero_stage and due else None
        with tempfile.TemporaryDirectory() as tmp:
            if due and rank == 0:
                state = dict(metrics, strategy=job.strategy, **({"early_stopping": stopper.state_dict()} if stopper else {}))
                save_student(
                    tmp, _plain(student), job.model_spec, state, None if cfg.zero_stage else optimizer,
                    _unwrap(strategy) if strategy is not None else None, teaching.state_dict(), weights,
                )  # fmt: skip
            if due and cfg.zero_stage:
                zero.save_shard(student, tmp, rank)
            session.report(metrics, tmp if due and (rank == 0 or cfg.zero_stage) else None)
        if stop:
            break
