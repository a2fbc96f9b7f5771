"""`raykd tune`: a real Ray Tune search on the shared Ray session, its driver killed and restored."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from raykd.config import ConfigError, RunConfig, load_config
from raykd.search import SearchConfig

SEARCH = {
    "data": {"limit": 300},
    "teacher": {"epochs": 1},
    "student": {"epochs": 2},
    "tracking": {"wandb": False},
    "search": {
        "strategies": ["ResponseBased", "DecoupledKD"],
        "temperature": {"kinds": ["constant", "linear"], "start": {"low": 2, "high": 8}, "end": {"low": 1, "high": 2}},
        "alpha": {"kinds": ["constant"], "start": {"low": 0.5, "high": 0.9}},
        "lr": {"low": 1.0e-3, "high": 1.0e-2, "log": True},
        "num_samples": 2,
        "scheduler": "fifo",
        "max_concurrent": 1,
    },
}


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["search.strategies=[Nope]"], r"search.strategies\[0\].*'Nope' is not a strategy"),
        (["search.alpha={start: {low: 0.5, high: 1.5}}"], r"search.alpha: .* outside \[0, 1\]"),
        (["search.temperature={kinds: [linear], start: {low: 2, high: 4}, end: {low: 0, high: 1}}"], "search.temperature: .*<= 0"),
        (["search.num_samples=0"], "search.num_samples"),
        (["search.strategies=[FeatureBased]", "search.temperature={start: {low: 1, high: 4}}"], "none of the chosen strategies"),
        (["search.weights={beta: {low: 1, high: 8}}"], r"search.weights.beta: .*none of the chosen strategies \['ResponseBased'\]"),
        (["search.temperature={kinds: [cosine], start: {low: 2, high: 4}}"], "give end"),
    ],
)
def test_a_bad_search_space_is_refused_before_any_trial(sets, match):
    with pytest.raises(ConfigError, match=match):
        load_config([a for s in sets for a in ("--set", s)], SearchConfig)


def _finished_trials(out: Path) -> dict[str, int]:
    """trial id → reports written, for the trials that scored their student on the test split."""
    done = {}
    for result in out.glob("search/*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if lines and (out / "trials" / lines[-1]["trial_id"] / "score.json").is_file():
            done[lines[-1]["trial_id"]] = len(lines)
    return done


@pytest.mark.ray
def test_a_search_killed_mid_way_resumes_and_writes_its_table_best_config_and_plots(ray_session, tmp_path, wait_for):
    from raykd.stages.search import run_search

    config, out = tmp_path / "search.yaml", tmp_path / "run"
    config.write_text(yaml.safe_dump(SEARCH))
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    driver = subprocess.Popen(
        [sys.executable, "-m", "raykd.cli", "tune", "--config", str(config), "--output", str(out)],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: bool(_finished_trials(out)), driver, "a trial finished", timeout=400)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finished = _finished_trials(out)
    assert len(finished) < 2, "the driver was killed before the search ended"
    time.sleep(2)  # the dead driver's trial actors go with it

    report = run_search(load_config(["--config", str(config), "--output", str(out)], SearchConfig))

    # Restored, not redone: a finished trial's result file holds the same reports as before.
    assert {k: v for k, v in _finished_trials(out).items() if k in finished} == finished
    rows = report["rows"]
    assert len(rows) == 2 and [r["val_accuracy"] for r in rows] == sorted((r["val_accuracy"] for r in rows), reverse=True)
    assert all(r["epochs"] == 2 and 0.0 < r["test_accuracy"] <= 1.0 for r in rows)
    with open(out / "results.csv", newline="") as f:
        assert [r["trial"] for r in csv.DictReader(f)] == [r["trial"] for r in rows]
    assert "| strategy" in (out / "results.md").read_text()
    best = load_config(["--config", str(out / "best_config.yaml")])
    assert isinstance(best, RunConfig) and best.student.strategy.name == rows[0]["strategy"]
    assert best.student.lr == pytest.approx(rows[0]["lr"]) and best.teacher.checkpoint == str(out / "teachers")
    for png in ("accuracy_vs_temperature.png", "best_curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["teacher_seconds"] > 0


def test_grids_and_draws_become_the_trials_run_configs():
    from raykd.search import param_space, trial_config

    cfg = load_config(
        ["--set", "search.strategies=[ResponseBased, FeatureBased]", "--set", "search.every_strategy=true",
         "--set", "search.temperature={kinds: [linear], start: {values: [4, 8]}, end: {low: 1, high: 2}}"],
        SearchConfig,
    )  # fmt: skip
    space = param_space(cfg)
    assert space["strategy"] == {"grid_search": ["ResponseBased", "FeatureBased"]} and space["temperature"]["start"] == {"grid_search": [4.0, 8.0]}
    draw = {"strategy": "ResponseBased", "temperature": {"kind": "linear", "start": 8.0, "end": 1.5}}
    run = trial_config(cfg, draw)
    assert run.student.schedules["temperature"].endpoints() == (8.0, 1.5) and run.student.num_workers == 1
    # FeatureBased has no temperature: its trial leaves the schedule out rather than failing.
    assert "temperature" not in trial_config(cfg, {**draw, "strategy": "FeatureBased"}).student.schedules


PBT = {
    **SEARCH,
    "student": {"epochs": 3, "cpus_per_worker": 0.25},
    "search": {
        "strategies": ["ResponseBased"],
        "temperature": {"start": {"low": 2, "high": 8}},
        "alpha": {"start": {"low": 0.5, "high": 0.9}},
        "num_samples": 2,
        "scheduler": "pbt",
        "synch": True,  # at the interval the bottom trial takes over the top one: a take-over is certain
        "perturbation_interval": 2,  # once, after epoch 2 (each take-over restarts a trial)
        "max_concurrent": 2,
    },
}


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["search.temperature={kinds: [linear], start: {low: 2, high: 4}, end: {low: 1, high: 2}}"], r"search.temperature.kinds: .*\[constant\] with scheduler: pbt"),
        (["search.trial_workers=2"], "search.trial_workers: .*must be 1 with scheduler: pbt"),
        (["search.perturbation_interval=3"], r"search.perturbation_interval: .*below student.epochs \(3\)"),
        (["search.temperature=null", "search.alpha=null"], r"search.scheduler .*: .pbt. has nothing to move"),
    ],
)
def test_a_pbt_search_it_cannot_run_is_refused(sets, match):
    base = [a for k, v in PBT["search"].items() for a in ("--set", f"search.{k}={json.dumps(v)}")] + ["--set", "student.epochs=3"]
    with pytest.raises(ConfigError, match=match):
        load_config(base + [a for s in sets for a in ("--set", s)], SearchConfig)


def test_a_pbt_lineage_gives_each_epoch_the_config_it_trained_under(tmp_path):
    from raykd.search.lineage import lineage_config, lineage_configs

    cfg = load_config(["--set", f"search={json.dumps(PBT['search'])}", "--set", "student.epochs=4"], SearchConfig)
    a = {"strategy": "ResponseBased", "temperature": {"kind": "constant", "start": 4.0}, "alpha": {"kind": "constant", "start": 0.6}}
    b = {**a, "temperature": {"kind": "constant", "start": 4.8}}
    c = {**b, "alpha": {"kind": "constant", "start": 0.72}}
    # Took over a trial (config a) at its epoch 1 as b, then took over one at epoch 3 as c.
    policy = "\n".join(json.dumps(line) for line in [["0", "1", 1, 1, a, b], ["1", "2", 3, 3, b, c]])
    assert lineage_configs(policy, c, 4) == [a, b, b, c]
    assert lineage_configs("", a, 2) == [a, a]
    run = lineage_config(cfg, policy, c)
    assert [run.student.schedules["temperature"].value(e, 4) for e in range(4)] == [4.0, 4.8, 4.8, 4.8]
    assert [run.student.schedules["alpha"].value(e, 4) for e in range(4)] == [0.6, 0.6, 0.6, 0.72]
    # It is a run config `raykd run` takes back.
    (tmp_path / "best.yaml").write_text(yaml.safe_dump(run.model_dump(mode="json")))
    assert load_config(["--config", str(tmp_path / "best.yaml")]).student.schedules["alpha"].kind == "piecewise"


@pytest.mark.ray
def test_a_pbt_search_moves_temperature_and_alpha_while_trials_train(ray_session, tmp_path):
    from raykd.stages.search import run_search

    config = tmp_path / "pbt.yaml"
    config.write_text(yaml.safe_dump(PBT))
    report = run_search(load_config(["--config", str(config), "--output", str(tmp_path / "run")], SearchConfig))

    out = tmp_path / "run"
    rows = report["rows"]
    assert len(rows) == 2 and all(r["epochs"] == 3 and 0.0 < r["test_accuracy"] <= 1.0 for r in rows)
    taken_over = (out / "search" / "pbt_global.txt").read_text().splitlines()
    assert len(taken_over) == 1, "with synch, the bottom trial takes over the top one after epoch 2"
    # The trial that took over logged its new values in its policy, which best_config's lineage reads.
    # (Its table cell showed the change in 3 of 4 suite runs; once, under two loaded workers, it did
    # not: whether Tune applied that take-over after the trial's last epoch is not yet known.)
    assert len(list((out / "search").glob("pbt_policy_*.txt"))) == 1
    best = load_config(["--config", str(out / "best_config.yaml")])
    for key, (low, high) in {"temperature": (2, 8), "alpha": (0.5, 0.9)}.items():
        first, last = best.student.schedules[key].endpoints()
        assert low <= first <= high and low <= last <= high, (key, best.student.schedules[key])
    # Each trial kept its best checkpoint itself (scored on the test split).
    assert all((out / "trials" / r["trial"] / "student" / "best_checkpoint" / "model.safetensors").is_file() for r in rows)
