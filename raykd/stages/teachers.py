"""Stage 2, teachers: train the members a teacher kind wraps, or take the teacher the user brings."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raykd import storage
from raykd.data import to_numpy
from raykd.data.text_inputs import TextInputs
from raykd.models import build_model, count_parameters
from raykd.models.fit import accuracy, predict_logits
from raykd.stages.data import Data, default_architectures, model_spec
from raykd.stages.run import Run, RunError, say
from raykd.teachers import build_from_config, config_params
from raykd.teachers.registry import TEACHERS
from raykd.teachers.checkpoint import MemberCheckpoint, load_members, save_members
from raykd.teachers.train import train_members
from raykd.teachers.transformer import is_sequence_classifier
from raykd.train.teaching import in_loop_kind, teacher_network_in_loop

__all__ = ["TeacherStage", "prepare_teacher", "trains_members"]


@dataclass
class TeacherStage:
    config: dict[str, Any]
    """What `teachers.build_from_config` takes: each soft-target actor builds its replica from it."""
    label: str
    """How tables name the teacher, e.g. `ensemble (mean_logits)` or `Pretrained teacher`."""
    kind: str
    params: int
    accuracy: float
    members: list[MemberCheckpoint]
    """Members trained (or loaded) by this run; empty for a teacher the user brings."""
    member_rows: list[dict[str, Any]]
    checkpoint: str | None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "params": self.params, "accuracy": self.accuracy, "checkpoint": self.checkpoint}


def trains_members(kind: str, params: dict[str, Any]) -> bool:
    """Kinds that wrap trained weights read them from `checkpoint` (the Transformer kind: its
    classification head, unless its model is a classifier already); the rest (Pretrained) bring
    their own model through their params, and nothing is trained for them."""
    accepted = config_params(kind)
    if kind == "Transformer" and is_sequence_classifier(params.get("model_dir")):
        return False
    return accepted is not None and "checkpoint" in accepted and "checkpoint" not in params


class _Embedder:
    """A Ray Data actor: the bare Transformer teacher's pooled embedding of each row's token ids."""

    def __init__(self, config: dict[str, Any]) -> None:
        torch.set_num_threads(1)  # actors share few cores
        self.teacher = build_from_config(config)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"id": batch["id"], "embedding": self.teacher.predict(batch["x"]).logits.numpy()}


def _text_embeddings(run: Run, data: Data, config: dict[str, Any]) -> tuple[np.ndarray, int]:
    """What a text teacher's head learns from: the train split's pooled embeddings (rows in id
    order, as `data.train`), computed once in an actor pool sized like the soft-target stage's."""
    import ray.data

    st = run.cfg.soft_targets
    encoder = {k: v for k, v in config.items() if k != "checkpoint"}
    embedded = data.splits["train"].map_batches(
        _Embedder, fn_constructor_kwargs={"config": encoder}, compute=ray.data.ActorPoolStrategy(size=st.pool_size),
        num_cpus=st.num_cpus, num_gpus=st.num_gpus, batch_size=st.batch_size, batch_format="numpy",
    )  # fmt: skip
    x = to_numpy(embedded)["embedding"]
    return x, int(x.shape[1])


def _text_teacher_params(run: Run) -> dict[str, Any]:
    """The Transformer teacher of text inputs: unnormalised mean-pooled embeddings (a linear head
    learns faster on them) of `data.max_length` tokens, without token outputs."""
    return {"normalize": False, **run.cfg.teacher.params, "max_length": run.cfg.data.max_length, "output_hidden_states": False, "output_attentions": False}


def _fine_tune(run: Run, data: Data, labeled: np.ndarray | None, seed: int) -> str:
    """The text teacher fine-tuned whole (encoder and a new classification head) on the train
    split's token ids in one Ray task, saved at `<run>/teachers` as a Hugging Face sequence
    classifier with its tokenizer: the Transformer teacher loads it as is, on any node."""
    import ray
    import transformers

    ft = run.cfg.teacher.fine_tune
    spec = {"type": "huggingface", "model_dir": data.inputs.tokenizer_dir, "pretrained": True, "in_features": data.num_features, "num_classes": data.num_classes}
    x, y = data.train["x"], data.train["label"]
    if labeled is not None:
        x, y = x[labeled], y[labeled]
    cpus = min(ft.num_cpus, ray.cluster_resources().get("CPU", 1.0))  # more than the cluster has would wait forever
    say(f"teachers: fine-tuning {spec['model_dir']} on {len(y)} texts, {ft.epochs} epoch(s) of {-(-len(y) // ft.batch_size)} steps, {cpus:g} CPU(s)")
    [member] = train_members(
        [spec], x, y, epochs=ft.epochs, lr=ft.lr, weight_decay=ft.weight_decay, batch_size=ft.batch_size, seed=seed,
        num_cpus=cpus, options={"decoupled": True, "warmup": ft.warmup, "log": lambda line: say(f"teachers: fine-tuning {line}")},
    )  # fmt: skip
    directory = run.at("teachers")
    with tempfile.TemporaryDirectory(prefix="raykd-teacher-") as tmp:
        member.model.save_pretrained(tmp, data.inputs.classes)
        with storage.local_dir(member.model.model_dir) as source:
            transformers.AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(tmp)
        storage.make_dir(directory)  # a local destination is not created by the copy
        storage.publish(Path(tmp), directory)
    return directory


def _trains_with_student(run: Run, data: Data, seed: int) -> TeacherStage:
    """Online peers (fresh from the teacher's architecture, or warm-started from teacher.checkpoint)
    and the mean teacher train with the student: nothing to train here, and their test accuracy is
    known only after the student's run."""
    cfg = run.cfg.teacher
    config: dict[str, Any] = {"kind": cfg.kind, **cfg.params}
    if in_loop_kind(cfg.kind, cfg.params) == "EMA":
        spec = model_spec(data, run.cfg.student.model or default_architectures(data)[1])
        return TeacherStage(config, f"Self teacher (EMA of the student, decay {cfg.params['ema_decay']})", cfg.kind, count_parameters(build_model(spec)), float("nan"), [], [], None)
    if cfg.checkpoint:
        config["checkpoint"] = cfg.checkpoint
    elif "spec" not in config:
        config["spec"] = model_spec(data, (cfg.members or default_architectures(data)[0])[0])
        config.setdefault("seed", seed)
    teacher = build_from_config(config)
    if teacher.num_classes != data.num_classes:
        raise RunError(f"teacher ({cfg.kind}) predicts {teacher.num_classes} classes but the labels in {data.source} have {data.num_classes}")
    label = f"Online teacher ({len(teacher.peers)} peers, trained with the student)"
    return TeacherStage(config, label, cfg.kind, count_parameters(teacher), float("nan"), [], [], cfg.checkpoint)


def prepare_teacher(run: Run, data: Data, labeled: np.ndarray | None = None, seed: int | None = None) -> TeacherStage:
    """The run's teacher, scored on the test split. `labeled` (a mask over the train split) limits
    what members learn from; `seed` overrides the run's seed (member i gets seed + i)."""
    cfg = run.cfg.teacher
    seed = run.cfg.seed if seed is None else seed
    if teacher_network_in_loop(cfg.kind, cfg.params):
        with run.stage("teachers", f"{cfg.kind}, trained with the student inside the Ray Train workers") as summary:
            stage = _trains_with_student(run, data, seed)
            summary.update({"teacher": stage.label, "params": f"{stage.params:,}"})
        return stage
    own = trains_members(cfg.kind, cfg.params)
    text = isinstance(data.inputs, TextInputs)  # members are heads on the Transformer's embedding, or it is fine-tuned
    fine_tune = text and cfg.text_training == "fine_tune"
    training = "fine-tuning it on the train split" if fine_tune else "training a head on its embedding" if text else "training members"
    with run.stage("teachers", f"{cfg.kind}, " + ("from " + cfg.checkpoint if cfg.checkpoint else training if own else "the teacher given in teacher.params")) as summary:
        members: list[MemberCheckpoint] = []
        config: dict[str, Any] = {"kind": cfg.kind, **(_text_teacher_params(run) if text else cfg.params)}
        if cfg.kind == "Adaptive" and cfg.params.get("mode") == "per_sample":
            config.setdefault("num_samples", int(data.train["id"].max()) + 1)  # its table is indexed by sample id
        if own and text and cfg.checkpoint and is_sequence_classifier(cfg.checkpoint):
            config["model_dir"] = cfg.checkpoint  # a fine-tuned teacher taken back (--teachers <run>/teachers)
        elif own and fine_tune and not cfg.checkpoint:
            config["model_dir"] = _fine_tune(run, data, labeled, seed)
        elif own:
            directory = run.at("teachers")  # the teacher actors load it, on any node
            if cfg.checkpoint:
                members, _ = load_members(cfg.checkpoint)
                for m in members:
                    if not text and m.spec.get("in_features") not in (None, data.num_features):
                        raise RunError(f"teacher.checkpoint member {m.name!r} takes {m.spec['in_features']} features but the data has {data.num_features}")
            else:
                architectures = cfg.members or default_architectures(data)[0]
                if TEACHERS.get(cfg.kind).one_network and "member" not in cfg.params:
                    architectures = architectures[:1]  # the kind uses one network: train no more
                x, y = data.train["x"], data.train["label"]
                width = data.num_features
                if text:
                    x, width = _text_embeddings(run, data, config)
                specs = [{**model_spec(data, a), "in_features": width} for a in architectures]
                if labeled is not None:
                    x, y = x[labeled], y[labeled]
                members = train_members(
                    specs, x, y, epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                    batch_size=cfg.batch_size, seed=seed, input_stats=data.input_stats,
                )
            save_members(directory, members)
            config["checkpoint"] = directory
        teacher = build_from_config(config)
        if teacher.num_classes != data.num_classes:
            where = f"teacher.checkpoint {cfg.checkpoint}" if cfg.checkpoint else f"teacher ({cfg.kind})"
            raise RunError(
                f"{where} predicts {teacher.num_classes} classes but the labels in "
                f"{data.source} have {data.num_classes}; give a teacher trained on these classes"
            )
        test_x = torch.as_tensor(data.test["x"])
        # A text teacher's head reads embeddings, not the test split's token ids: the teacher row scores it.
        member_rows = [] if text else [
            {"name": m.name, "params": count_parameters(m.model), "accuracy": accuracy(predict_logits(m.model, data.test["x"]), data.test["label"])}
            for m in members
        ]  # fmt: skip
        combine = getattr(teacher, "combine", None)
        stage = TeacherStage(
            config=config,
            label=f"ensemble ({combine})" if cfg.kind == "Ensemble" and combine else f"{cfg.kind} teacher",
            kind=cfg.kind,
            params=count_parameters(teacher),
            accuracy=accuracy(teacher.predict(test_x).logits, data.test["label"]),
            members=members,
            member_rows=member_rows,
            checkpoint=config.get("checkpoint") or config.get("path") or (config["model_dir"] if own else None),
        )
        summary.update({"teacher": stage.label, "params": f"{stage.params:,}", "test_accuracy": f"{100 * stage.accuracy:.2f}%"})
    return stage
