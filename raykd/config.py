"""One typed run config (pydantic v2): YAML file + flags + `--set a.b.c=value`, checked before Ray.

`RunConfig` holds every section of a distillation run; the pseudo-labeling, born-again and
transformer-distill runs extend it with a section of their own. Every level forbids unknown keys, every field has a type
and a range, and the components a run names (strategy, teacher kind, model specs) are checked
against what their constructors take. Every error names the dotted path, the flag that sets it
where there is one, and the value received, e.g.
`student.epochs (--epochs): Input should be a valid integer, got a number with a fractional part; got 10.5`.
"""

from __future__ import annotations

import argparse
import copy
import inspect
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from raykd import storage
from raykd.schedules import PROGRESSIVE_DISTILLATION, Schedule

__all__ = [
    "BornAgainConfig",
    "BornAgainSection",
    "ConfigError",
    "DataConfig",
    "FineTuneConfig",
    "PseudoLabelConfig",
    "PseudoLabelSection",
    "RunConfig",
    "SoftTargetConfig",
    "StrategyConfig",
    "StudentConfig",
    "TEXT_STRATEGIES",
    "TeacherConfig",
    "TextSection",
    "TrackingConfig",
    "TransformerDistillConfig",
    "add_config_arguments",
    "config_from_args",
    "load_config",
]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the dotted path, the flag and the value."""


class Section(BaseModel):
    # Lax mode on purpose: YAML 1.1 reads `1e-3` as a string and `no` as a boolean word, and both
    # should mean what a person meant; fractional ints, words for numbers and unknown keys are refused.
    model_config = ConfigDict(extra="forbid", validate_default=True)


ModelSpec = dict[str, Any]


class DataConfig(Section):
    path: str | None = None
    """Parquet file or directory of numeric feature columns and a label, or a folder of images with one
    subfolder per class (torchvision's ImageFolder layout), or with `text_column` Parquet or JSON
    Lines of texts and a label; None: the embedded digits."""
    id_column: str | None = None
    """Integer id column; None uses a column named `id` if there is one, else each row's position."""
    label_column: str = "label"
    feature_columns: list[str] | None = None
    """Default: every numeric column but the id and the label."""
    image_shape: tuple[int, int] | None = None
    """(H, W) when the features are a flattened image (enables CNN defaults); the digits are 8×8."""
    image_column: str | None = None
    """A Parquet column of encoded images (PNG/JPEG bytes, or a `{bytes, path}` struct as Hugging
    Face datasets write them): the inputs are those images, in RGB, not numeric feature columns."""
    image_size: int = Field(32, ge=8)
    """Side of the square RGB images an image folder (one subfolder per class) or `image_column` is
    resized and centre-cropped to; ignored for feature Parquet and the digits."""
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    """Per-channel normalisation of image-folder pixels in [0, 1] (default: ImageNet's statistics)."""
    text_column: str | None = None
    """A column of texts (Parquet or JSON Lines): the inputs are those texts, tokenised with the
    Transformer teacher's tokenizer; the label column holds integers 0..C-1 or class names (mapped
    to ids in sorted order). The teacher kind is then Transformer (the default Ensemble switches)."""
    max_length: int = Field(64, ge=8, le=512)
    """Tokens per text for `text_column` inputs, [CLS] and [SEP] included; longer texts are cut."""
    bad_images: Literal["error", "skip"] = "error"
    """An image folder's unreadable files: stop naming the first, or skip them (the data stage counts them)."""
    standardize: bool = True
    """Standardize features with the train split's mean/std, stored in every model's checkpoint
    (never token ids: ignored for `text_column` inputs)."""
    split_seed: int = 0
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    limit: int | None = Field(None, ge=50)
    """Use only the first N rows (quick runs and tests)."""

    @model_validator(mode="after")
    def _check(self) -> "DataConfig":
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(f"val_fraction + test_fraction must leave >= 10% for training, got {self.val_fraction + self.test_fraction}")
        return self


class FineTuneConfig(Section):
    """How the teachers stage fine-tunes the Transformer teacher on text inputs: the whole encoder
    and a new classification head, on the train split's token ids, as one Ray task; AdamW with a
    linear warmup and decay (Devlin et al. 2019's BERT recipe)."""

    epochs: int = Field(4, ge=1)
    lr: float = Field(1e-4, gt=0, le=1e-2)
    """Peak learning rate of every weight, encoder and head (5e-5 left MiniLM under-fitted after 4
    epochs of the README's text demo: 74.83 % test, 1e-4 is the default)."""
    batch_size: int = Field(16, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.1, ge=0, lt=1)
    """Fraction of the steps over which the learning rate rises to `lr`."""
    num_cpus: float = Field(2, gt=0)
    """CPUs of the fine-tuning task (its torch threads); at most the cluster's."""


class TeacherConfig(Section):
    kind: str = "Ensemble"
    """A `TeacherModelType` name."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Arguments of the kind's `from_config` (e.g. `combine: vote`, or `path:` for Pretrained)."""
    checkpoint: str | None = None
    """A directory of teacher weights written by raykd; None trains members (for kinds that wrap
    trained weights) from `members`."""
    members: list[ModelSpec] | None = None
    """Architecture specs (without sizes) of the members to train; None: defaults that fit the data
    (CNNs for image-shaped inputs, MLPs for flat features)."""
    layers: list[str] | None = None
    """Teacher features for feature strategies; default: the first member's last feature layers."""
    epochs: int = Field(30, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(64, ge=1)
    """Training of members (and of a text teacher's linear probe): epochs, Adam's lr and L2 term, batch."""
    text_training: Literal["fine_tune", "linear_probe"] = "fine_tune"
    """Text inputs (data.text_column): fine-tune the Transformer teacher's encoder with a new
    classification head (`fine_tune`), or train a linear head of `members` on its frozen pooled
    embedding (`linear_probe`: cheaper, weaker). A model_dir that holds a classifier is used as is."""
    fine_tune: FineTuneConfig = Field(default_factory=FineTuneConfig)


class SoftTargetConfig(Section):
    k: int | None = Field(None, ge=1)
    """Classes kept per sample; None keeps all."""
    batch_size: int = Field(4096, ge=1)
    """Rows per teacher call and per part file: thousands keep the teacher busy."""
    pool_size: int = Field(1, ge=1)
    """Teacher actors (replicas) in the pool."""
    num_cpus: float = Field(0.5, ge=0)
    """CPUs per teacher actor: fractional on small machines so the read tasks never starve; 0 for
    an actor that a GPU carries (Ray Data reserves 1 CPU per actor unless told)."""
    num_gpus: float = Field(0.0, ge=0)
    """GPUs per teacher actor, fractional to share one GPU between replicas; `batch_size` is always
    an explicit integer, which Ray Data requires of GPU actors."""
    decode: Literal["renormalize", "residual"] = "renormalize"
    """Top-k decoding for the KD loss: renormalize over the k classes, or residual (spread the
    missing probability mass over the other classes, from the stored logsumexp)."""
    views: int = Field(1, ge=1)
    """Augmented views per train image (1: the plain image only). With more, view 0 is the plain
    image and the others shifted (and with `flip` mirrored) copies, their parameters drawn from
    (sample id, view, `seed`) and stored beside each view's targets; the student replays each
    stored view (`raykd.soft_targets.views`). Needs image inputs and a teacher whose targets are stored."""
    pad: int = Field(1, ge=0)
    """Views shift the image by up to `pad` pixels (zero-padded, cropped back; CIFAR uses 4 on 32×32)."""
    flip: bool = False
    """Views are also mirrored left-right at random (CIFAR's flip; not for digits or text in images)."""


class StrategyConfig(Section):
    name: str = "ResponseBased"
    """A registered strategy (`raykd.strategies.available()`)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Constructor arguments; each strategy keeps its paper's defaults for the rest."""


class StudentConfig(Section):
    model: ModelSpec | None = None
    """Architecture spec without sizes; None: a default that fits the data."""
    layers: list[str] | None = None
    """Student features for feature strategies; default: the model's `feature_layers`."""
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    teacher_in_workers: bool = False
    """Run the teacher inside each Ray Train worker on every batch (online mode) instead of reading
    stored soft targets; strategies that need teacher features always do."""
    ce_weight: float | None = Field(None, ge=0)
    """Weight of a cross-entropy term on the labels added to the strategy's loss. None: 1.0 for
    strategies whose loss uses neither logits nor labels (feature-only, as the CRD benchmark's
    γ=1), else 0 (the strategy already has its own label term); the value used is in the report."""
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(32, ge=1)
    """Per worker."""
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(0.5, gt=0)
    checkpoint_every: int = Field(1, ge=1)
    keep_best: int = Field(1, ge=1)
    early_stopping: bool = False
    min_delta: float = Field(0.001, ge=0)
    patience: int = Field(5, ge=1)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    """Values that move during training, by name: `lr`, or a parameter of the strategy
    (temperature, alpha, a loss weight), each a `raykd.schedules.Schedule`, e.g.
    `{temperature: {kind: linear, start: 8, end: 2}, lr: {kind: cosine, start: 3e-3, end: 1e-5, warmup: 2}}`;
    a number is a constant. `ProgressiveDistillation` names the tutorial's preset: temperature
    10 → 1 and alpha 0.5 → 1 in 5 stages. The current values are in each epoch's metrics."""
    max_failures: int = Field(0, ge=0)
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: the student's forward and loss run under bfloat16 autocast (CUDA, or CPUs with bf16
    kernels); weights and optimizer state stay fp32."""
    zero_stage: Literal[0, 2, 3] = 0
    """DeepSpeed ZeRO for a student too large for one device: 2 shards its optimizer state and
    gradients over the workers, 3 its parameters too; 0 is plain DDP (needs the deepspeed extra)."""
    cache_shards: bool | None = None
    """Keep worker shards in memory after the first epoch; None: only if the train split < 512 MiB."""
    baseline: bool = True
    """Also train the same student on labels only, for comparison."""

    @field_validator("strategy", mode="before")
    @classmethod
    def _name_only(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("schedules", mode="before")
    @classmethod
    def _presets_and_constants(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value != "ProgressiveDistillation":
                raise ValueError(f"{value!r} is not a schedule preset; the preset is 'ProgressiveDistillation', or give a mapping of name → schedule")
            return copy.deepcopy(PROGRESSIVE_DISTILLATION)
        if isinstance(value, dict):
            return {k: {"kind": "constant", "start": v} if isinstance(v, (int, float, str)) and not isinstance(v, bool) else v for k, v in value.items()}
        return value


class TrackingConfig(Section):
    progress: Literal["auto", "on", "off"] = "auto"
    """Ray Data progress bars: auto shows them when stdout is a terminal."""
    wandb: bool = True
    """Log each student's per-epoch metrics as a wandb run in its directory."""
    wandb_mode: Literal["offline", "online", "disabled"] | None = None
    """None: the WANDB_MODE environment variable, else offline (no key, no network)."""
    project: str = "raykd"
    tags: list[str] = Field(default_factory=list)


class RunConfig(Section):
    data: DataConfig = Field(default_factory=DataConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    soft_targets: SoftTargetConfig = Field(default_factory=SoftTargetConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    seed: int = 0
    """Seeds teacher member i with seed+i and the student with seed."""
    output: str | None = None
    """Run directory, a local path or a URI (s3://bucket/run, gs://...); default a new folder under runs/."""

    # flag -> dotted path; one table drives the parser and the error messages.
    FLAG_PATHS: ClassVar[dict[str, str]] = {
        "--data": "data.path",
        "--id-column": "data.id_column",
        "--label-column": "data.label_column",
        "--image-shape": "data.image_shape",
        "--image-size": "data.image_size",
        "--image-column": "data.image_column",
        "--text-column": "data.text_column",
        "--max-length": "data.max_length",
        "--limit": "data.limit",
        "--teachers": "teacher.checkpoint",
        "--teacher-kind": "teacher.kind",
        "--teacher-epochs": "teacher.epochs",
        "--k": "soft_targets.k",
        "--pool-size": "soft_targets.pool_size",
        "--teacher-cpus": "soft_targets.num_cpus",
        "--teacher-gpus": "soft_targets.num_gpus",
        "--decode": "soft_targets.decode",
        "--views": "soft_targets.views",
        "--strategy": "student.strategy.name",
        "--temperature": "student.strategy.params.temperature",
        "--alpha": "student.strategy.params.alpha",
        "--epochs": "student.epochs",
        "--batch-size": "student.batch_size",
        "--lr": "student.lr",
        "--weight-decay": "student.weight_decay",
        "--num-workers": "student.num_workers",
        "--cpus-per-worker": "student.cpus_per_worker",
        "--max-failures": "student.max_failures",
        "--seed": "seed",
        "--output": "output",
    }
    SWITCHES: ClassVar[dict[str, tuple[str, Any]]] = {
        "--use-gpu": ("student.use_gpu", True),
        "--no-baseline": ("student.baseline", False),
    }
    COMMAND: ClassVar[str] = "run"

    @model_validator(mode="after")
    def _text_teacher(self) -> "RunConfig":
        # Text is read with a tokenizer, which only the Transformer teacher has: the default
        # ensemble of raykd networks stands for "the default teacher" there.
        t = self.teacher
        if self.data.text_column is not None and t.kind == "Ensemble" and t.members is None:
            t.kind = "Transformer"
        return self

    def check(self) -> "RunConfig":
        """The checks that need the registries: strategy and teacher parameters, model specs."""
        from raykd import teachers

        if self.output is not None and (why := storage.check_location(self.output)):
            _fail("output (--output)", self.output, why)
        if self.data.path is not None and not Path(self.data.path).exists():
            _fail("data.path", self.data.path, "does not exist; give a Parquet file or directory, or an image folder")
        check_strategy("student.strategy", self.student.strategy.name, self.student.strategy.params)
        if self.teacher.kind not in teachers.available():
            _fail("teacher.kind", self.teacher.kind, f"is not a teacher kind; choose one of {teachers.available()}")
        accepted = teachers.config_params(self.teacher.kind)
        if accepted is not None:
            for key in self.teacher.params:
                if key not in accepted or key in ("checkpoint", "layers"):
                    where = "teacher.checkpoint / teacher.layers" if key in ("checkpoint", "layers") else f"one of {sorted(set(accepted) - {'checkpoint', 'layers'})}"
                    _fail(f"teacher.params.{key}", self.teacher.params[key], f"is not a parameter of teacher kind {self.teacher.kind}; use {where}")
        if self.teacher.checkpoint is not None and not storage.is_dir(self.teacher.checkpoint):
            _fail("teacher.checkpoint", self.teacher.checkpoint, "is not a directory of teacher weights")
        for i, spec in enumerate(self.teacher.members or []):
            check_model_spec(f"teacher.members[{i}]", spec)
        if self.student.model is not None:
            check_model_spec("student.model", self.student.model)
        for key, schedule in self.student.schedules.items():
            check_schedule(f"student.schedules.{key}", key, schedule, self.student.strategy)
        if self.soft_targets.num_cpus == 0 and self.soft_targets.num_gpus == 0:
            # An actor that asks for nothing is placed without limit: every replica on one node.
            _fail("soft_targets.num_cpus", 0, "with soft_targets.num_gpus (--teacher-gpus) 0 leaves teacher actors no resource; give them some CPU or a GPU")
        check_teaching(self.teacher, self.student)
        if self.student.zero_stage:
            check_zero(self.student)
        if self.data.text_column is not None:
            check_text(self)
        if self.soft_targets.views > 1:
            check_views(self)
        return self


class PseudoLabelSection(Section):
    unlabeled: str | None = None
    """Parquet (the labeled data's feature columns, with or without ids) or an image folder; None:
    the train split's rows outside the labeled fraction, labels hidden (the demo)."""
    label_fraction: float = Field(0.1, gt=0, le=1)
    """Share of the train split that keeps its labels, stratified by class."""
    threshold: float | None = Field(0.5, ge=0, le=1)
    """Accept pseudo-labels with confidence >= threshold. On the digits demo coverage beats purity:
    0.5 accepts ~98% at ~97% correct and gains more than 0.9 (81% accepted, 99.6% correct)."""
    per_class: int | None = Field(None, ge=1)
    """Accept at most this many pseudo-labels per predicted class (the most confident)."""
    seeds: list[int] | None = None
    """Repeat the whole run per seed (draws the labeled subset, seeds teachers and students); None: [seed]."""
    students: bool = True
    """Train and compare the two students (off: pseudo-label only)."""

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
            raise ValueError("must list distinct integers")
        return seeds


def _pseudo_label_student() -> StudentConfig:
    return StudentConfig(num_workers=1, baseline=False)


class PseudoLabelConfig(RunConfig):
    """A run whose teachers learn from a labeled fraction and label the rest (or `unlabeled`)."""

    teacher: TeacherConfig = Field(default_factory=lambda: TeacherConfig(epochs=60))
    student: StudentConfig = Field(default_factory=_pseudo_label_student)
    pseudo_label: PseudoLabelSection = Field(default_factory=PseudoLabelSection)

    FLAG_PATHS: ClassVar[dict[str, str]] = {
        **{f: p for f, p in RunConfig.FLAG_PATHS.items() if not p.startswith(("student.strategy", "soft_targets.k", "soft_targets.decode"))},
        "--unlabeled": "pseudo_label.unlabeled",
        "--label-fraction": "pseudo_label.label_fraction",
        "--threshold": "pseudo_label.threshold",
        "--per-class": "pseudo_label.per_class",
        "--seeds": "pseudo_label.seeds",
    }
    SWITCHES: ClassVar[dict[str, tuple[str, Any]]] = {
        "--use-gpu": ("student.use_gpu", True),
        "--no-students": ("pseudo_label.students", False),
    }
    COMMAND: ClassVar[str] = "pseudo-label"

    def check(self) -> "PseudoLabelConfig":
        super().check()
        p = self.pseudo_label
        if p.unlabeled is None and p.label_fraction == 1.0:
            _fail("pseudo_label.label_fraction", 1.0, "keeps every train label, so nothing is left to pseudo-label; lower it or set pseudo_label.unlabeled")
        if p.unlabeled is not None and not Path(p.unlabeled).exists():
            _fail("pseudo_label.unlabeled", p.unlabeled, "does not exist; give a Parquet file/directory or an image folder")
        if self.teacher.kind != "Ensemble":
            _fail("teacher.kind", self.teacher.kind, "must be Ensemble for pseudo-labeling (its members' disagreement is a score)")
        return self


class BornAgainSection(Section):
    generations: int = Field(3, ge=1)
    """Generation 0 learns from the labels, every later one from the frozen previous one."""


def _born_again_student() -> StudentConfig:
    # BAN's loss is the teacher's distribution only: T=1, alpha=1 (Furlanello et al. 2018).
    return StudentConfig(strategy=StrategyConfig(params={"temperature": 1.0, "alpha": 1.0}), epochs=30, baseline=False)


class BornAgainConfig(RunConfig):
    """Born-Again Networks: generations of one architecture, each the teacher of the next."""

    student: StudentConfig = Field(default_factory=_born_again_student)
    born_again: BornAgainSection = Field(default_factory=BornAgainSection)

    FLAG_PATHS: ClassVar[dict[str, str]] = {
        **{f: p for f, p in RunConfig.FLAG_PATHS.items() if not p.startswith(("teacher.", "soft_targets.k"))},
        "--generations": "born_again.generations",
    }
    SWITCHES: ClassVar[dict[str, tuple[str, Any]]] = {"--use-gpu": ("student.use_gpu", True)}
    COMMAND: ClassVar[str] = "born-again"

    def check(self) -> "BornAgainConfig":
        super().check()
        if self.student.strategy.name not in ("ResponseBased", "DecoupledKD"):
            _fail("student.strategy.name", self.student.strategy.name, "must be a logit strategy (ResponseBased or DecoupledKD): a generation teaches the next through its logits")
        return self


class TextSection(Section):
    sentences: int | None = Field(None, ge=50)
    """Use only the first N of the shuffled packaged sentences (quick runs and tests); None: all (~40k)."""
    max_length: int = Field(64, ge=8, le=512)
    """Tokens per sentence, [CLS] and [SEP] included; longer sentences are cut."""
    val_sentences: int = Field(512, ge=8)
    """Held out for each epoch's validation cosine, which picks the best checkpoint."""
    test_sentences: int = Field(512, ge=8)
    """Held out for the report's embedding cosine: never trained or validated on."""


# Sentence-embedding losses and how they meet the teacher: the first three read its stored pooled
# embedding as a one-layer output (or, with student.teacher_in_workers, its token states); the
# attention-map loss needs its attention maps, so its teacher always runs in the workers.
TEXT_STRATEGIES = ("HiddenStateDistillation", "ProgressiveDistillation", "DistilBERT", "AttentionBased")


def _transformer_student() -> StudentConfig:
    # The measured recipe (README, transformer section): a copy student on the stored pooled
    # embeddings, Adam at 5e-4, 5% warm-up then cosine decay, per step, batches of 64 sentences.
    return StudentConfig(
        model={"type": "copy_transformer", "layers": [4, 5], "embedding_dim": 64, "max_positions": 128},
        strategy=StrategyConfig(name="HiddenStateDistillation"),
        ce_weight=0.0, epochs=2, batch_size=64, lr=5e-4, weight_decay=0.0, num_workers=1, cpus_per_worker=1.0, baseline=False,
        schedules={"lr": {"kind": "cosine", "start": 5e-4, "end": 1e-6, "warmup": 0.1, "per": "step"}},
    )  # fmt: skip


class TransformerDistillConfig(RunConfig):
    """A Transformer teacher's sentence embeddings into a smaller transformer, on packaged text.

    `student.model` is a `copy_transformer` spec; which outputs it returns (`hidden_states`,
    `attentions`) follows the strategy and is resolved here, as is `student.teacher_in_workers`
    (always on for AttentionBased). Every student is scored by the cosine of its embedding to the
    teacher's on `text.test_sentences` held-out sentences.
    """

    data: DataConfig = Field(default_factory=lambda: DataConfig(standardize=False))
    teacher: TeacherConfig = Field(default_factory=lambda: TeacherConfig(kind="Transformer"))
    soft_targets: SoftTargetConfig = Field(default_factory=lambda: SoftTargetConfig(k=1, batch_size=128))
    student: StudentConfig = Field(default_factory=_transformer_student)
    text: TextSection = Field(default_factory=TextSection)

    FLAG_PATHS: ClassVar[dict[str, str]] = {
        **{f: p for f, p in RunConfig.FLAG_PATHS.items() if not p.startswith(("data.", "teacher.", "soft_targets.k", "soft_targets.decode", "student.strategy.params."))},
        "--sentences": "text.sentences",
        "--max-length": "text.max_length",
        "--split-seed": "data.split_seed",
    }
    SWITCHES: ClassVar[dict[str, tuple[str, Any]]] = {
        "--use-gpu": ("student.use_gpu", True),
        "--teacher-in-workers": ("student.teacher_in_workers", True),
    }
    COMMAND: ClassVar[str] = "transformer-distill"

    @model_validator(mode="after")
    def _resolve_student(self) -> "TransformerDistillConfig":
        attention = self.student.strategy.name == "AttentionBased"
        self.student.teacher_in_workers = self.student.teacher_in_workers or attention
        if isinstance(self.student.model, dict) and self.student.model.get("type") == "copy_transformer":
            online = self.student.teacher_in_workers
            self.student.model = {**self.student.model, "hidden_states": online and not attention, "attentions": online and attention}
        return self

    def check(self) -> "TransformerDistillConfig":
        model = self.student.model or {}
        if model.get("type") != "copy_transformer":  # before the generic spec check, which would name a stray key
            _fail("student.model", self.student.model, "must be a copy_transformer spec (its width and tokenizer are the teacher's)")
        super().check()
        if self.data.path is not None:
            _fail("data.path", self.data.path, "must be unset: the sentences come from the installed packages (raykd.data.text)")
        if self.data.standardize:
            _fail("data.standardize", True, "must be false: token ids are not standardized")
        if self.teacher.kind != "Transformer":
            _fail("teacher.kind", self.teacher.kind, "must be Transformer (a Hugging Face encoder from a local directory)")
        for key in ("max_length", "output_hidden_states", "output_attentions"):
            if key in self.teacher.params:
                _fail(f"teacher.params.{key}", self.teacher.params[key], "is set by the run: text.max_length, and token outputs only when the teacher runs in the workers")
        strategy = self.student.strategy
        if strategy.name not in TEXT_STRATEGIES:
            _fail("student.strategy.name", strategy.name, f"is not a sentence-embedding strategy; choose one of {list(TEXT_STRATEGIES)}")
        if strategy.name == "DistilBERT" and strategy.params.get("alpha_mlm", 2.0):
            _fail("student.strategy.params.alpha_mlm", strategy.params.get("alpha_mlm", 2.0), "must be 0: DistilBERT's MLM term needs masked-token labels, and sentences have none")
        if strategy.name == "AttentionBased" and strategy.params.get("mode") == "feature":
            _fail("student.strategy.params.mode", "feature", "must be transformer or auto: the text run compares attention maps")
        if self.student.ce_weight != 0:
            _fail("student.ce_weight", self.student.ce_weight, "must be 0: sentences have no labels")
        lr = self.student.schedules.get("lr")
        if lr is not None and lr.start != self.student.lr:
            # The default recipe schedules the learning rate per step: a changed student.lr alone would be ignored.
            _fail("student.lr", self.student.lr, f"differs from student.schedules.lr.start ({lr.start:g}), which sets the learning rate at every step; set student.schedules.lr.start instead")
        if self.student.baseline:
            _fail("student.baseline", True, "must be false: there are no labels for a labels-only student")
        if self.text.max_length > model.get("max_positions", 128):
            _fail("text.max_length", self.text.max_length, f"exceeds the student's student.model.max_positions ({model.get('max_positions', 128)})")
        return self


def _fail(path: str, value: Any, message: str) -> None:
    raise ConfigError(f"{path}: {value!r} {message}")


def check_strategy(path: str, name: str, params: dict[str, Any]) -> None:
    """The strategy exists, takes every parameter given, and accepts their values."""
    from raykd import strategies

    if name not in strategies.available():
        _fail(f"{path}.name", name, f"is not a strategy; choose one of {strategies.available()}")
    signature = inspect.signature(strategies.STRATEGIES.get(name))
    takes = [n for n, p in signature.parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for key in params:
        if key not in takes:
            _fail(f"{path}.params.{key}", params[key], f"is not a parameter of strategy {name}; it takes {takes}")
    # Data-dependent arguments (a memory bank's size) are filled by the student stage; a stand-in
    # lets the constructor check every value the user gave.
    stand_ins = {"n_data": 1 + int(params.get("nce_k", 1))} if "n_data" in takes and "n_data" not in params else {}
    try:
        strategies.build(name, **stand_ins, **params)
    except (TypeError, ValueError) as err:
        # Constructors name the argument first ("alpha must be in [0, 1], got 1.5"): point at it.
        key = str(err).split(" ", 1)[0]
        where = f"{path}.params.{key}" if key in params else f"{path}.params"
        raise ConfigError(f"{where}: strategy {name} refuses it: {err}") from None


def check_schedule(path: str, key: str, schedule: Schedule, strategy: StrategyConfig) -> None:
    """`lr` stays > 0; a strategy parameter must exist and its constructor must accept both ends."""
    from raykd import strategies

    if key == "lr":
        if min(schedule.endpoints()) <= 0:
            _fail(path, schedule.to_dict(), "must stay > 0 (a learning rate)")
        return
    takes = [n for n in inspect.signature(strategies.STRATEGIES.get(strategy.name)).parameters if n not in ("pairs", "n_data")]
    if key not in takes:
        _fail(path, schedule.to_dict(), f"schedules {key!r}, which is not a parameter of strategy {strategy.name}; schedule lr or one of {takes}")
    for end in schedule.endpoints():
        try:
            check_strategy(path, strategy.name, {**strategy.params, key: end})
        except ConfigError as err:
            raise ConfigError(f"{path}: {schedule.to_dict()} reaches {key}={end}, which {strategy.name} refuses: {str(err).rsplit('refuses it: ', 1)[-1]}") from None


def check_teaching(teacher: TeacherConfig, student: StudentConfig) -> None:
    """A teacher that acts during training fits the student's strategy and its own params hold."""
    from raykd import strategies
    from raykd.teachers.adaptive import AdaptiveWeights
    from raykd.teachers.curriculum import check_pacing
    from raykd.train.teaching import IN_LOOP_PARAMS, in_loop_kind

    kind = in_loop_kind(teacher.kind, teacher.params)
    if kind is None:
        return
    name = student.strategy.name
    cls = strategies.STRATEGIES.get(name)
    chosen = {k: teacher.params[k] for k in IN_LOOP_PARAMS[kind] if k in teacher.params}
    try:
        if kind == "Adaptive":
            AdaptiveWeights(2, **{"num_samples": 1, **chosen})
        elif kind == "Curriculum":
            check_pacing(**chosen)
        elif kind == "EMA" and not 0 < float(chosen["ema_decay"]) < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {chosen['ema_decay']}")
    except (TypeError, ValueError) as err:
        raise ConfigError(f"teacher.params: teacher kind {teacher.kind} refuses it: {err}") from None
    if kind == "Adaptive" and not cls.weighs_samples:
        weighing = [n for n in strategies.available() if strategies.STRATEGIES.get(n).weighs_samples]
        _fail("student.strategy.name", name, f"has no per-sample form for the Adaptive teacher's weights; choose one of {weighing}")
    if kind == "Curriculum" and student.cache_shards is False:
        _fail("student.cache_shards", False, "must not be false with a Curriculum teacher: each epoch picks rows of the shard held in memory")
    if kind == "EMA" and teacher.checkpoint is not None:
        _fail("teacher.checkpoint", teacher.checkpoint, "and teacher.params.ema_decay name two Self teachers (a saved generation, the mean teacher); give one")
    if kind == "Online" and {"features", "attentions", "hidden_states"} & set(cls.requires):
        _fail("student.strategy.name", name, "needs teacher features, which the Online teacher's peers do not give; choose a logit strategy")


def check_text(cfg: RunConfig) -> None:
    """Text inputs go through the Transformer teacher's tokenizer into a transformer student."""
    data, teacher = cfg.data, cfg.teacher
    if data.path is None:
        _fail("data.text_column", data.text_column, "needs data.path (--data): a Parquet or JSON Lines file or directory of texts")
    if data.image_column is not None:
        _fail("data.image_column", data.image_column, "and data.text_column name two kinds of input; give one")
    if teacher.kind != "Transformer":
        _fail("teacher.kind", teacher.kind, "must be Transformer for text inputs (data.text_column): its tokenizer reads the texts")
    for key in ("max_length", "output_hidden_states", "output_attentions"):
        if key in teacher.params:
            _fail(f"teacher.params.{key}", teacher.params[key], "is set by the run for text inputs: data.max_length (--max-length), and no token outputs")
    if teacher.text_training == "fine_tune" and teacher.members is not None:
        _fail("teacher.members", teacher.members, "are heads on the frozen embedding, which teacher.text_training=fine_tune does not train; set it to linear_probe or drop them")
    model = cfg.student.model or {"type": "copy_transformer"}  # the default text student
    if model.get("type") == "copy_transformer" and data.max_length > model.get("max_positions", 128):
        _fail("data.max_length", data.max_length, f"exceeds the student's student.model.max_positions ({model.get('max_positions', 128)})")


def check_views(cfg: RunConfig) -> None:
    """Views are images' shifts, labelled once by a fixed teacher and stored: refuse runs where no
    stored target would carry them (the image shape itself is checked with the data)."""
    from raykd import strategies
    from raykd.train.teaching import in_loop_kind

    views, student, teacher = cfg.soft_targets.views, cfg.student, cfg.teacher
    fix = "set soft_targets.views=1 (--views 1)"
    if cfg.COMMAND in ("pseudo-label", "transformer-distill"):
        _fail("soft_targets.views", views, f"applies to the soft targets of raykd run, born-again and search, not raykd {cfg.COMMAND}; {fix}")
    if cfg.data.text_column is not None:
        _fail("soft_targets.views", views, f"shifts images, and data.text_column gives texts; {fix}")
    needs = {"features", "attentions", "hidden_states"} & set(strategies.STRATEGIES.get(student.strategy.name).requires)
    kind = in_loop_kind(teacher.kind, teacher.params)
    why = (
        f"strategy {student.strategy.name} needs teacher features, so the teacher runs in the student's workers on plain images" if needs
        else "student.teacher_in_workers runs the teacher on plain images in the student's workers" if student.teacher_in_workers
        else f"the {kind} teacher trains with the student, so no stored target stands for it" if kind in ("Online", "EMA")
        else "the Adaptive teacher's per_sample table is indexed by sample id, not view" if kind == "Adaptive" and teacher.params.get("mode") == "per_sample"
        else None
    )  # fmt: skip
    if why:
        _fail("soft_targets.views", views, f"needs stored soft targets, but {why}; {fix}")


def check_zero(student: StudentConfig) -> None:
    """ZeRO needs DeepSpeed, and shards the student alone: no teacher features trained beside it."""
    import importlib.util

    from raykd import strategies

    if importlib.util.find_spec("deepspeed") is None:
        _fail("student.zero_stage", student.zero_stage, "needs DeepSpeed: pip install 'raykd[deepspeed]', or set it to 0")
    if {"features", "attentions", "hidden_states"} & set(strategies.STRATEGIES.get(student.strategy.name).requires):
        _fail("student.zero_stage", student.zero_stage, f"shards the student alone, but {student.strategy.name} trains modules on teacher features beside it; use zero_stage 0")


def check_model_spec(path: str, spec: Any) -> None:
    from raykd.models import ARCHITECTURES

    if not isinstance(spec, dict) or spec.get("type") not in ARCHITECTURES:
        _fail(path, spec, f"must be a mapping with type in {sorted(ARCHITECTURES)}")
    takes = set(inspect.signature(ARCHITECTURES[spec["type"]]).parameters) - {"in_features", "num_classes"}
    unknown = sorted(set(spec) - takes - {"type"})
    if unknown:
        _fail(f"{path}.{unknown[0]}", spec[unknown[0]], f"is not an argument of model type {spec['type']!r}; it takes {sorted(takes)} (sizes come from the data)")
    # Architectures by name (CIFAR ResNets, torchvision) or directory (huggingface) say why a
    # spec cannot build before Ray starts.
    check_spec = getattr(ARCHITECTURES[spec["type"]], "check_spec", None)
    if check_spec is not None and (why := check_spec(spec)) is not None:
        key = getattr(ARCHITECTURES[spec["type"]], "spec_field", "name")
        _fail(f"{path}.{key}", spec.get(key), why)


def _format(error: dict[str, Any], flags: dict[str, str], cls: type[BaseModel]) -> str:
    path = ".".join(str(p) for p in error["loc"])
    flag = flags.get(".".join(str(p) for p in error["loc"] if not isinstance(p, int)))  # seeds.1 → --seeds
    where = f"{path} ({flag})" if flag else path
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; known keys here: {_known(cls, error['loc'][:-1])}"
    return f"{where}: {error['msg']}; got {error['input']!r}"


def _known(cls: type[BaseModel], loc: tuple) -> list[str]:
    model: Any = cls
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}))


def validate(cls: type[RunConfig], raw: dict[str, Any]) -> RunConfig:
    """`raw` (merged YAML and flags) as a checked `cls`, or a ConfigError naming every bad field."""
    flags = {path: flag for flag, path in cls.FLAG_PATHS.items()} | {path: flag for flag, (path, _) in cls.SWITCHES.items()}
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of sections, got {type(raw).__name__}")
    try:
        cfg = cls.model_validate(_merge(cls().model_dump(), raw))
    except ValidationError as err:
        raise ConfigError("\n".join(_format(e, flags, cls) for e in err.errors(include_url=False))) from None
    try:
        return cfg.check()
    except ConfigError as err:
        path, _, rest = str(err).partition(":")
        flag = flags.get(path)
        raise ConfigError(f"{path} ({flag}):{rest}" if flag else str(err)) from None


def _merge(defaults: Any, raw: Any) -> Any:
    """`raw` over the config class's own defaults (an extension's defaults hold when a user sets
    another field of the same section). A component named anew starts from its own defaults:
    another strategy's parameters are not carried over."""
    if not isinstance(defaults, dict) or not isinstance(raw, dict):
        return raw
    if "name" in defaults and "params" in defaults and "name" in raw and raw["name"] != defaults["name"]:
        return raw
    return {**defaults, **{k: _merge(defaults[k], v) if k in defaults else v for k, v in raw.items()}}


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    *sections, key = path.split(".")
    target = raw
    for s in sections:
        node = target.setdefault(s, {})
        if isinstance(node, str):  # `strategy: Hybrid` then `--set student.strategy.params...`
            node = target[s] = {"name": node}
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: cannot set inside {'.'.join(sections)}, which is {node!r}")
        target = node
    target[key] = value


def add_config_arguments(parser: argparse.ArgumentParser, cls: type[RunConfig]) -> None:
    """`--config`, `--set`, and one flag per entry of `cls.FLAG_PATHS` / `cls.SWITCHES`."""
    parser.add_argument("--config", metavar="YAML", help="YAML file with the config's sections")
    parser.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE",
        help="override any field by its dotted path, e.g. --set student.strategy.params.temperature=2 (value read as YAML)",
    )
    for flag, path in cls.FLAG_PATHS.items():
        parser.add_argument(flag, default=None, metavar="VALUE", help=f"sets {path}")
    for flag, (path, value) in cls.SWITCHES.items():
        parser.add_argument(flag, action="store_const", const=value, default=None, help=f"sets {path} to {value}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def config_from_args(args: argparse.Namespace, cls: type[RunConfig]) -> RunConfig:
    """YAML file, then `--set`, then flags (the most specific wins); validated as `cls`."""
    raw: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"--config: {args.config!r} is not a file")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"--config: {args.config} is not valid YAML (only plain values are read): {err}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"--config: {args.config} must hold a mapping of sections, got {type(raw).__name__}")
    for item in args.set:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"--set takes PATH=VALUE, e.g. student.lr=1e-3; got {item!r}")
        _set(raw, path.strip(), yaml.safe_load(text))
    for flag, path in cls.FLAG_PATHS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            _set(raw, path, _flag_value(path, value))
    for flag, (path, _) in cls.SWITCHES.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            _set(raw, path, value)
    return validate(cls, raw)


def _flag_value(path: str, text: str) -> Any:
    if path.endswith(".seeds"):
        return [s.strip() for s in text.split(",") if s.strip()]
    if path.endswith(".image_shape"):
        return [s.strip() for s in text.replace("x", ",").split(",")]  # 8x8 or 8,8
    if text.lower() in ("none", "null"):
        return None  # an optional field switched off, e.g. --threshold none
    if path.startswith("student.strategy.params."):
        return yaml.safe_load(text)  # no field type to coerce into: numbers as YAML reads them
    return text


def load_config(argv: list[str] | None = None, cls: type[RunConfig] = RunConfig) -> RunConfig:
    """Parse `argv` as the flags of `cls`'s command and return the checked config (ConfigError otherwise)."""
    parser = argparse.ArgumentParser(prog=f"raykd {cls.COMMAND}", add_help=False)
    add_config_arguments(parser, cls)
    return config_from_args(parser.parse_args(argv), cls)
