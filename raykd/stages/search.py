"""A Ray Tune search on the shared stages: the teacher and its soft targets once, then one student
per trial (Ray Train inside a Tune function trainable), then a table, the best config and plots.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import yaml

from raykd import storage
from raykd.report import markdown_table, pct
from raykd.search.lineage import lineage_config
from raykd.search.plots import plot_best_curves, plot_temperature
from raykd.search.space import SearchConfig, clip_to_ranges, mutations, param_space, trial_config
from raykd.stages.data import Data, check_data, load_data
from raykd.stages.distill import uses_stored_targets
from raykd.stages.run import Run, open_run, say
from raykd.stages.soft_targets import SoftTargets, make_soft_targets
from raykd.stages.student import train_student
from raykd.stages.teachers import TeacherStage, prepare_teacher

__all__ = ["run_search"]


def _trial(draw: dict[str, Any], *, search: SearchConfig, location: str, data: Data, teacher: TeacherStage, soft: SoftTargets | None) -> None:
    """One trial: the draw's student on the shared data and soft targets, in `trials/<id>` of the
    search's run directory `location` (staged on the trial's node and published for a URI)."""
    from ray import tune

    cfg = trial_config(search, draw)
    trial_location = storage.join(location, "trials", tune.get_context().get_trial_id())
    trial_dir = storage.staging_dir(trial_location) if storage.is_uri(trial_location) else Path(trial_location)
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    trial = Run(cfg, trial_dir, trial_location)
    stored = soft if uses_stored_targets(cfg, len(data.train["id"])) else None
    # PBT clones trial state through Tune checkpoints: the trial itself trains (one worker).
    in_tune = "trial" if search.search.scheduler == "pbt" else "callback"
    result = train_student(trial, data, "student", cfg.student.strategy, teacher, stored, in_tune=in_tune)
    # The kept (best) checkpoint's scores, in a file: one more report to Tune would be one more
    # iteration for its scheduler to act on (PBT would take over a finished trial).
    (trial_dir / "score.json").write_text(json.dumps({"val_accuracy": result["val_accuracy"], "test_accuracy": result["accuracy"]}))
    trial.publish()


def _scheduler(cfg: SearchConfig) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    s = cfg.search
    if s.scheduler == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=cfg.student.epochs, grace_period=s.grace_period, reduction_factor=s.reduction_factor)
    if s.scheduler == "pbt":
        # Its hint to reuse actors applies to class trainables with reset_config, not to a function trial.
        warnings.filterwarnings("ignore", message="Consider boosting PBT performance")
        return PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=s.perturbation_interval, quantile_fraction=s.quantile_fraction,
            hyperparam_mutations=mutations(cfg), custom_explore_fn=clip_to_ranges(cfg), synch=s.synch,
        )  # fmt: skip
    return FIFOScheduler()


def _row(result: Any, search: SearchConfig, run: Run) -> dict[str, Any]:
    draw, frame = result.config, result.metrics_dataframe
    trial = (result.metrics or {}).get("trial_id", Path(result.path).name)
    score = run.at("trials", trial, "score.json")
    metric = search.search.metric
    # One row per epoch reported (a PBT trial that took over another repeats the epochs it took over).
    scores = frame[metric] if frame is not None and metric in frame else []
    scheduled = trial_config(search, draw).student.schedules  # what this trial's strategy took
    temperature = draw.get("temperature") if "temperature" in scheduled else None
    alpha = draw.get("alpha") if "alpha" in scheduled else None
    return {
        "trial": trial,
        "strategy": draw["strategy"],
        "temperature": _moved_text(frame, "temperature") if search.search.scheduler == "pbt" and temperature else _schedule_text(temperature),
        "temperature_start": temperature["start"] if temperature else None,
        "alpha": _moved_text(frame, "alpha") if search.search.scheduler == "pbt" and alpha else _schedule_text(alpha),
        "lr": draw.get("lr", search.student.lr),
        "weights": draw.get("weights", {}),
        metric: float(max(scores)) if len(scores) else float("nan"),
        "epochs": int(frame["epoch"].max()) + 1 if len(scores) else 0,
        "test_accuracy": json.loads(storage.read_bytes(score))["test_accuracy"] if storage.exists(score) else None,  # None: stopped early by ASHA
        "curve": [float(v) for v in scores],
        "draw": draw,
    }


def _moved_text(frame: Any, key: str) -> str:
    """The values a PBT trial trained under, epoch by epoch (repeats folded)."""
    values = [f"{v:.3g}" for v in frame[frame["epoch"].notna()][key]] if frame is not None and key in frame else []
    return "PBT " + "→".join(v for i, v in enumerate(values) if i == 0 or v != values[i - 1]) if values else "—"


def _schedule_text(draw: dict[str, Any] | None) -> str:
    if not draw:
        return "—"
    return f"{draw['start']:.3g}" if draw["kind"] == "constant" else f"{draw['kind']} {draw['start']:.3g}→{draw['end']:.3g}"


def run_search(cfg: SearchConfig, name: str = "tune_search") -> dict[str, Any]:
    """Teacher and soft targets once, then `search.num_samples` trials; resumes a search whose
    driver died when its directory is given again (`output`)."""
    from ray import tune

    inputs = check_data(cfg.data)
    run = open_run(cfg, name)
    data = load_data(run, inputs)
    teacher = prepare_teacher(run, data)
    needs_targets = any(uses_stored_targets(trial_config(cfg, {"strategy": s}), len(data.train["id"])) for s in cfg.search.strategies or [cfg.student.strategy.name])
    soft = make_soft_targets(run, data, teacher) if needs_targets else None
    teacher_seconds = sum(run.seconds.get(k, 0.0) for k in ("teachers", "soft_targets"))

    s = cfg.search
    # A PBT trial trains in its own process, so it holds the student's resources itself.
    resources = {"CPU": s.trial_cpus}
    if s.scheduler == "pbt":
        resources = {"CPU": max(s.trial_cpus, cfg.student.cpus_per_worker), **({"GPU": 1} if cfg.student.use_gpu else {})}
    trainable = tune.with_resources(tune.with_parameters(_trial, search=cfg, location=run.location, data=data, teacher=teacher, soft=soft), resources)
    # Trials on every node keep their results where all of them reach: the run directory or its URI.
    filesystem, root = storage.resolve(run.location)
    path = run.at("search")
    with run.stage("search", f"{s.num_samples} trials, {s.scheduler}, {s.max_concurrent} at a time, metric {s.metric}") as summary:
        if tune.Tuner.can_restore(storage.resolve(path)[1], storage_filesystem=filesystem):
            say(f"search: resuming {path} (finished trials are kept)")
            tuner = tune.Tuner.restore(storage.resolve(path)[1], trainable=trainable, resume_errored=True, storage_filesystem=filesystem)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space(cfg),
                tune_config=tune.TuneConfig(
                    metric=s.metric, mode="max", num_samples=s.num_samples, scheduler=_scheduler(cfg), max_concurrent_trials=s.max_concurrent
                ),
                # PBT takes over a recent checkpoint of a better trial (Tune warns below 3 kept); each trial keeps its best itself.
                run_config=tune.RunConfig(
                    name="search", storage_path=root, storage_filesystem=filesystem, verbose=0, checkpoint_config=tune.CheckpointConfig(num_to_keep=3)
                ),
            )
        grid = tuner.fit()
        errors = [r.error for r in grid if r.error]
        if len(errors) == len(grid):
            raise RuntimeError(f"every trial failed; the first: {errors[0]}")
        rows = sorted((_row(r, cfg, run) for r in grid if not r.error), key=lambda r: r[s.metric], reverse=True)
        summary.update({"trials": len(rows), "failed": len(errors), f"best_{s.metric}": pct(rows[0][s.metric])})
    return _write(run, cfg, rows, teacher_seconds)


def _write(run: Run, cfg: SearchConfig, rows: list[dict[str, Any]], teacher_seconds: float) -> dict[str, Any]:
    """results.md/.csv sorted by the metric, best_config.yaml, and the two plots."""
    metric = cfg.search.metric
    header = ["trial", "strategy", "temperature", "alpha", "lr", metric, "test accuracy", "epochs"]
    table = [header] + [
        [r["trial"], r["strategy"], r["temperature"], r["alpha"], f"{r['lr']:.3g}", pct(r[metric]), pct(r["test_accuracy"]), str(r["epochs"])]
        for r in rows
    ]
    with open(run.out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([header] + [[r["trial"], r["strategy"], r["temperature"], r["alpha"], r["lr"], r[metric], r["test_accuracy"], r["epochs"]] for r in rows])
    if cfg.search.scheduler == "pbt":
        policy = run.at("search", f"pbt_policy_{rows[0]['trial']}.txt")
        lineage = storage.read_bytes(policy).decode() if storage.exists(policy) else ""  # none: it never took over another trial
        best = lineage_config(cfg, lineage, rows[0]["draw"]).model_dump(mode="json")
    else:
        best = trial_config(cfg, rows[0]["draw"]).model_dump(mode="json")
    # The best trial's student again, from the teacher this search trained (nothing retrained).
    best["teacher"]["checkpoint"] = best["teacher"]["checkpoint"] or (run.at("teachers") if storage.is_dir(run.at("teachers")) else None)
    best["output"] = None
    (run.out / "best_config.yaml").write_text(yaml.safe_dump(best, sort_keys=False))
    temperature_png = plot_temperature(rows, metric, run.out / "accuracy_vs_temperature.png")
    curves_png = plot_best_curves({f"{r['strategy']} ({r['trial']})": r["curve"] for r in rows[:3]}, metric, run.out / "best_curves.png")
    search_seconds = run.seconds["search"]
    lines = [
        markdown_table(table),
        "",
        f"best: {rows[0]['strategy']}, temperature {rows[0]['temperature']}, alpha {rows[0]['alpha']} → {pct(rows[0][metric])} {metric}; "
        f"`raykd run --config {run.where(run.out / 'best_config.yaml')}` trains it again",
        f"teacher and soft targets: {teacher_seconds:.1f}s, once; re-made for each of the {len(rows)} trials they would "
        f"add {len(rows) * teacher_seconds:.1f}s of teacher compute (the trials themselves took {search_seconds:.1f}s)",
    ]
    body = "\n".join(lines)
    report = {"rows": [{k: v for k, v in r.items() if k != "curve"} for r in rows], "best_config": run.where(run.out / "best_config.yaml"),
              "teacher_seconds": teacher_seconds, "seconds": run.total(), "config": cfg.model_dump(mode="json")}  # fmt: skip
    (run.out / "results.md").write_text(body + "\n")
    run.report(report, "raykd tune", body, [str(temperature_png), str(curves_png)])
    return report
