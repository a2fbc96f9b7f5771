"""A Hugging Face sequence classifier from a LOCAL directory as a raykd model spec.

`{"type": "huggingface", "model_dir": ..., "pretrained": true}` loads the weights of a directory
written by `save_pretrained` (a bare encoder gets a new classification head of `num_classes`; a
classifier of another label count too); `"pretrained": false` builds the directory's architecture
from its config.json alone, freshly initialised (e.g. a small BERT student). Nothing is ever
downloaded (`local_files_only`); `model_dir` may be a URI of a run directory (`raykd.storage`).

Inputs are padded token ids, as the copy student takes them (`raykd.tokens.token_inputs`): the
ids must come from the directory's tokenizer, which is the teacher's for the main job's text runs.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from raykd import storage
from raykd.outputs import ModelOutput
from raykd.tokens import mean_pool, token_inputs

__all__ = ["HuggingFaceModel"]


def _directory(model_dir: str | None) -> str:
    if model_dir is not None:
        return str(model_dir)
    from raykd.teachers.transformer import packaged_minilm_dir  # the bundled MiniLM, found at call time

    return str(packaged_minilm_dir())


@contextmanager
def _quiet_loading(transformers) -> Iterator[None]:
    """Without the load report and progress bar: on a bare encoder the report lists the new head
    as MISSING every time, which is the point, not news (load errors still raise)."""
    level, bars = transformers.logging.get_verbosity(), transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
        if bars:
            transformers.utils.logging.enable_progress_bar()


class HuggingFaceModel(nn.Module):
    """An `AutoModelForSequenceClassification` over padded token ids.

    Output: `logits` (B, num_classes), `features["embedding"]` the mean-pooled last hidden state
    (B, hidden) over real tokens; with `hidden_states=True` the token states (embeddings + one per
    block), with `attentions=True` one (B, heads, T, T) map per block (eager attention, slower).
    `in_features` is the padded sequence length (at most the model's position count).
    """

    spec_field = "model_dir"
    """The spec key that `check_spec`'s message is about (config errors name it)."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        model_dir: str | None = None,
        pretrained: bool = True,
        hidden_states: bool = False,
        attentions: bool = False,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a model spec never reaches for the network
        import transformers

        if standardize:
            raise ValueError("huggingface models take token ids, which are not standardized; set data standardize off")
        location = _directory(model_dir)
        if (why := self.check_spec({"model_dir": location})) is not None:
            raise ValueError(f"model_dir {location!r} {why}")
        auto = transformers.AutoModelForSequenceClassification
        kwargs = {"attn_implementation": "eager" if attentions else "sdpa"}  # only eager returns attention maps
        with storage.local_dir(location) as directory, _quiet_loading(transformers):
            config = transformers.AutoConfig.from_pretrained(directory, local_files_only=True, num_labels=num_classes)
            if pretrained:
                # A head of another label count (or none, for a bare encoder) starts fresh.
                self.model = auto.from_pretrained(directory, config=config, local_files_only=True, ignore_mismatched_sizes=True, **kwargs)
            else:
                self.model = auto.from_config(config, **kwargs)
        positions = getattr(config, "max_position_embeddings", None)
        if positions is not None and in_features > positions:
            raise ValueError(f"model_dir {location!r} holds {positions} positions, fewer than the inputs' {in_features} tokens; lower data.max_length")
        self.model_dir, self.pretrained = location, pretrained
        self.pad_token_id = int(config.pad_token_id if config.pad_token_id is not None else 0)
        self.hidden_states, self.attentions = hidden_states, attentions
        self.in_features, self.num_classes = in_features, num_classes
        self.feature_layers: list[str] = []  # hidden states and attentions come in the output

    @staticmethod
    def check_spec(spec: dict) -> str | None:
        """Why a spec's model_dir cannot build (not a directory with a config.json), else None."""
        location = _directory(spec.get("model_dir"))
        config = storage.join(location, "config.json")
        try:
            json.loads(storage.read_bytes(config))
        except FileNotFoundError:
            return "is not a local Hugging Face directory (no config.json); give a folder written by save_pretrained (models are never downloaded)"
        except (ValueError, OSError) as err:
            return f"has an unreadable config.json ({type(err).__name__}); give a folder written by save_pretrained"
        return None

    def save_pretrained(self, directory: str | Path, classes: tuple[str, ...] | None = None) -> None:
        """The wrapped model as a Hugging Face directory (safetensors), class names as its labels."""
        if classes is not None:
            self.model.config.id2label = dict(enumerate(classes))
            self.model.config.label2id = {name: i for i, name in enumerate(classes)}
        self.model.save_pretrained(directory)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        batch = token_inputs(x, self.pad_token_id)
        # Hidden states always: the last one is what the pooled embedding is made of.
        out = self.model(**batch, output_hidden_states=True, output_attentions=self.attentions, return_dict=True)
        return ModelOutput(
            logits=out.logits,
            features=OrderedDict(embedding=mean_pool(out.hidden_states[-1], batch["attention_mask"])),
            hidden_states=tuple(out.hidden_states) if self.hidden_states else None,
            attentions=tuple(out.attentions) if self.attentions else None,
        )
