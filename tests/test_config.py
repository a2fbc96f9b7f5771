"""The typed config: values coerced as a person means them, every error before Ray, naming the path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from raykd import strategies
from raykd.config import BornAgainConfig, ConfigError, PseudoLabelConfig, RunConfig, load_config, validate
from raykd.stages.student import strategy_arguments

ROOT = Path(__file__).resolve().parents[1]


def refused(argv, pattern, cls=RunConfig):
    with pytest.raises(ConfigError) as err:
        load_config(argv, cls)
    assert re.search(pattern, str(err.value)), str(err.value)
    return str(err.value)


def test_ray_is_not_started_by_loading_a_config():
    import subprocess
    import sys

    code = (
        "import ray\nfrom raykd.config import ConfigError, load_config\nload_config(['--epochs', '3'])\n"
        "try:\n    load_config(['--epochs', '10.5'])\nexcept ConfigError:\n    pass\nassert not ray.is_initialized()\nprint('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_yaml_floats_without_a_dot_are_read_as_numbers(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("student:\n  lr: 1e-3\n  use_gpu: no\n  weight_decay: 0\n")
    cfg = load_config(["--config", str(path)])
    assert cfg.student.lr == 0.001 and cfg.student.use_gpu is False and cfg.student.weight_decay == 0.0


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--epochs", "10.5"], r"^student\.epochs \(--epochs\): .*integer.*got '10\.5'"),
        (["--num-workers", "two"], r"^student\.num_workers \(--num-workers\): .*integer.*got 'two'"),
        (["--seed", "abc"], r"^seed \(--seed\): .*integer.*got 'abc'"),
        (["--set", "student.use_gpu=maybe"], r"^student\.use_gpu \(--use-gpu\): .*boolean"),
        (["--num-workers", "0"], r"^student\.num_workers \(--num-workers\): .*greater than or equal to 1"),
        (["--k", "0"], r"^soft_targets\.k \(--k\)"),
        (["--decode", "spread"], r"^soft_targets\.decode \(--decode\): .*'renormalize' or 'residual'"),
        (["--teacher-gpus", "-1"], r"^soft_targets\.num_gpus \(--teacher-gpus\): .*greater than or equal to 0"),
        (["--teacher-cpus", "0"], r"^soft_targets\.num_cpus \(--teacher-cpus\): 0 with soft_targets\.num_gpus \(--teacher-gpus\) 0 leaves teacher actors no resource"),
        (["--cpus-per-worker", "0"], r"^student\.cpus_per_worker \(--cpus-per-worker\): .*greater than 0"),
        (["--data", "/no/such/file.parquet"], r"^data\.path \(--data\): '/no/such/file\.parquet' does not exist"),
        (["--strategy", "Telepathy"], r"^student\.strategy\.name \(--strategy\): 'Telepathy' is not a strategy.*ResponseBased"),
        (["--alpha", "1.5"], r"^student\.strategy\.params\.alpha \(--alpha\): .*alpha must be in \[0, 1\], got 1\.5"),
        (["--temperature", "0"], r"^student\.strategy\.params\.temperature \(--temperature\): .*must be > 0"),
        (["--set", "student.strategy.params.beta=2"], r"^student\.strategy\.params\.beta: 2 is not a parameter of strategy ResponseBased"),
        (["--strategy", "FeatureBased", "--temperature", "2"], r"^student\.strategy\.params\.temperature \(--temperature\): 2 is not a parameter of strategy FeatureBased"),
        (["--set", "teacher.params.colour=red"], r"^teacher\.params\.colour: 'red' is not a parameter of teacher kind Ensemble"),
        (["--teacher-kind", "Oracle"], r"^teacher\.kind \(--teacher-kind\): 'Oracle' is not a teacher kind"),
        (["--set", "student.model={type: mlp, hiden: [3]}"], r"^student\.model\.hiden: \[3\] is not an argument of model type 'mlp'"),
        (["--set", "teacher.members=[{type: transformer}]"], r"^teacher\.members\[0\]"),
        (["--set", "data.val_fraction=0.5", "--set", "data.test_fraction=0.45"], r"^data: .*leave >= 10% for training"),
        (["--set", "lr=0.1"], r"^lr: unknown key"),
    ],
)
def test_bad_values_are_refused_naming_the_dotted_path_and_flag(argv, pattern):
    refused(argv, pattern)


@pytest.mark.parametrize("path", ["temprature", "student.temprature", "student.strategy.colour", "teacher.membres", "tracking.bars"])
def test_unknown_keys_are_refused_at_any_depth(path):
    *head, last = path.split(".")
    raw: dict = {}
    node = raw
    for part in head:
        node = node.setdefault(part, {})
    node[last] = 1
    with pytest.raises(ConfigError, match=re.escape(path)):
        validate(RunConfig, raw)


def test_yaml_file_then_set_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("student:\n  strategy: {name: ResponseBased, params: {temperature: 2.0, alpha: 0.3}}\nsoft_targets:\n  k: 5\n")
    cfg = load_config(["--config", str(path), "--set", "student.strategy.params.alpha=0.5", "--alpha", "0.6", "--set", "student.epochs=7"])
    assert cfg.student.strategy.params == {"temperature": 2.0, "alpha": 0.6}
    assert (cfg.soft_targets.k, cfg.student.epochs) == (5, 7)


def test_a_strategy_may_be_named_by_a_string(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("student:\n  strategy: RelationBased\n")
    assert load_config(["--config", str(path)]).student.strategy.name == "RelationBased"


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("student: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(["--config", str(path)])


@pytest.mark.parametrize(
    "name, expected",
    [
        ("DecoupledKD", {"alpha": 1.0, "beta": 8.0, "temperature": 4.0}),
        ("SelfDistillation", {"temperature": 3.0, "alpha": 0.3}),
        ("DistilBERT", {"temperature": 2.0}),
    ],
)
def test_strategies_keep_their_papers_defaults_in_a_run(name, expected):
    cfg = load_config(["--strategy", name])
    built = strategies.build(name, **strategy_arguments(cfg.student.strategy, n_data=100))
    for key, value in expected.items():
        assert getattr(built, key) == value, key


def test_memory_bank_strategies_get_the_data_size_and_no_more_negatives():
    cfg = load_config(["--strategy", "ContrastiveBased"])
    assert strategy_arguments(cfg.student.strategy, n_data=500) == {"n_data": 500, "nce_k": 499}
    # An image folder's ids are 63-bit hashes of its paths: a bank row per possible id is refused.
    with pytest.raises(ValueError, match=r"ContrastiveBased keeps a memory bank row per train id.*give the data an integer id column"):
        strategy_arguments(cfg.student.strategy, n_data=2**62)


def test_extended_configs_share_the_run_sections_and_add_their_own():
    p = load_config(["--seeds", "0,1,2", "--threshold", "0.7", "--epochs", "3"], PseudoLabelConfig)
    assert (p.pseudo_label.seeds, p.pseudo_label.threshold, p.student.epochs) == ([0, 1, 2], 0.7, 3)
    refused(["--threshold", "1.5"], r"^pseudo_label\.threshold \(--threshold\)", PseudoLabelConfig)
    refused(["--label-fraction", "1"], r"nothing is left to pseudo-label", PseudoLabelConfig)
    b = load_config(["--generations", "2"], BornAgainConfig)
    assert b.born_again.generations == 2 and b.student.strategy.params == {"temperature": 1.0, "alpha": 1.0}
    refused(["--strategy", "RelationBased"], r"^student\.strategy\.name \(--strategy\): .*logit strategy", BornAgainConfig)


def test_the_config_round_trips_through_yaml(tmp_path):
    import yaml

    cfg = load_config(["--strategy", "Hybrid", "--set", "student.strategy.params={components: [{name: ResponseBased}, {name: RelationBased}]}"])
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert load_config(["--config", str(path)]) == cfg


def test_an_extension_keeps_its_defaults_when_a_flag_sets_another_field_of_the_section():
    b = load_config(["--epochs", "2"], BornAgainConfig)
    assert b.student.strategy.params == {"temperature": 1.0, "alpha": 1.0} and not b.student.baseline
    assert load_config(["--strategy", "DecoupledKD"], BornAgainConfig).student.strategy.params == {}  # a new strategy: its own defaults
    p = load_config(["--epochs", "2"], PseudoLabelConfig)
    assert (p.teacher.epochs, p.student.num_workers) == (60, 1)


def test_schedules_are_checked_against_the_strategy_before_ray():
    cfg = load_config(["--set", "student.schedules=ProgressiveDistillation"])
    assert {k: (s.kind, s.start, s.final, s.stages) for k, s in cfg.student.schedules.items()} == {
        "temperature": ("progressive", 10.0, 1.0, 5),
        "alpha": ("progressive", 0.5, 1.0, 5),
    }
    assert load_config(["--set", "student.schedules={lr: {kind: cosine, start: 3e-3, end: 1e-5, warmup: 2}}"]).student.schedules["lr"].start == 0.003
    refused(["--set", "student.schedules={alpha: {kind: linear, start: 0.5, end: 1.5}}"], r"^student\.schedules\.alpha: .*reaches alpha=1\.5, which ResponseBased refuses: alpha must be in \[0, 1\]")
    refused(["--set", "student.schedules={temperature: {kind: linear, start: 4, end: 0}}"], r"^student\.schedules\.temperature: .*temperature=0")
    refused(["--set", "student.schedules={beta: 3}"], r"^student\.schedules\.beta: .*not a parameter of strategy ResponseBased")
    refused(["--set", "student.schedules={lr: {kind: linear, start: 1e-3, end: 0}}"], r"^student\.schedules\.lr: .*must stay > 0")
    refused(["--set", "student.schedules={temperature: {kind: cubic}}"], r"^student\.schedules\.temperature\.kind")
    refused(["--set", "student.schedules=Progressive"], r"^student\.schedules: .*'Progressive' is not a schedule preset")
    assert load_config(["--strategy", "DecoupledKD", "--set", "student.schedules={beta: {kind: linear, start: 8, end: 2}}"]).student.schedules["beta"].final == 2.0


def test_the_teacher_runs_in_the_workers_for_feature_strategies_or_when_asked():
    from raykd.stages import uses_stored_targets

    assert uses_stored_targets(load_config([]), n_data=100)
    assert not uses_stored_targets(load_config(["--strategy", "RelationBased"]), n_data=100)
    assert not uses_stored_targets(load_config(["--set", "student.teacher_in_workers=true"]), n_data=100)


@pytest.mark.parametrize(
    ("argv", "in_workers", "outputs"),
    [
        ([], False, (False, False)),  # HiddenStateDistillation on the stored pooled embedding
        (["--strategy", "ProgressiveDistillation", "--set", "student.strategy.params={layer_mapping: [[1, 1]], hidden_weight: 2}"], False, (False, False)),
        (["--strategy", "DistilBERT", "--set", "student.strategy.params.alpha_mlm=0"], False, (False, False)),
        (["--strategy", "DistilBERT", "--set", "student.strategy.params.alpha_mlm=0", "--teacher-in-workers"], True, (True, False)),
        (["--strategy", "AttentionBased"], True, (False, True)),  # attention maps: always in the workers
    ],
)
def test_transformer_distill_selects_each_text_strategy_by_name(argv, in_workers, outputs):
    from raykd.config import TransformerDistillConfig

    cfg = load_config(argv, TransformerDistillConfig)
    assert cfg.student.teacher_in_workers is in_workers
    assert (cfg.student.model["hidden_states"], cfg.student.model["attentions"]) == outputs
    assert cfg.student.model["type"] == "copy_transformer" and cfg.student.ce_weight == 0
    strategies.build(cfg.student.strategy.name, **cfg.student.strategy.params)


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--strategy", "ResponseBased"], r"student\.strategy\.name \(--strategy\): 'ResponseBased' is not a sentence-embedding strategy"),
        (["--strategy", "DistilBERT"], r"student\.strategy\.params\.alpha_mlm: 2\.0 must be 0"),
        (["--set", "student.ce_weight=1"], r"student\.ce_weight: 1\.0 must be 0"),
        (["--set", "data.path=."], r"data\.path: '\.' must be unset"),
        (["--set", "teacher.params.max_length=32"], r"teacher\.params\.max_length: 32 is set by the run"),
        (["--max-length", "256"], r"text\.max_length \(--max-length\): 256 exceeds the student's student\.model\.max_positions \(128\)"),
        (["--sentences", "10"], r"text\.sentences \(--sentences\): Input should be greater than or equal to 50"),
        (["--set", "student.model={type: mlp, hidden: [8]}"], r"student\.model: .* must be a copy_transformer spec"),
        (["--lr", "1e-3"], r"student\.lr \(--lr\): 0\.001 differs from student\.schedules\.lr\.start \(0\.0005\)"),
    ],
)
def test_transformer_distill_refuses_bad_input_naming_the_field(argv, pattern):
    from raykd.config import TransformerDistillConfig

    with pytest.raises(ConfigError, match=pattern):
        load_config(argv, TransformerDistillConfig)


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_passes_its_checks(path):
    from raykd.search import SearchConfig

    cfg = load_config(["--config", str(path)], SearchConfig if path.name.startswith("tune_") else RunConfig)
    assert cfg.check() is cfg


def test_teacher_actor_and_worker_resources_have_flags():
    cfg = load_config(["--teacher-cpus", "0", "--teacher-gpus", "0.5", "--pool-size", "2", "--cpus-per-worker", "0.6"])
    assert (cfg.soft_targets.num_cpus, cfg.soft_targets.num_gpus, cfg.soft_targets.pool_size) == (0.0, 0.5, 2)
    assert cfg.student.cpus_per_worker == 0.6
