"""A Ray Tune search on the shared stages: the teacher and its soft targets once, then one student
per trial (Ray Train inside a Tune function trainable), then a table, the best config and plots.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import yaml

from raykd.report import markdown_table, pct, write_report
from raykd.search.plots import plot_best_curves, plot_temperature
from raykd.search.space import SearchConfig, param_space, trial_config
from raykd.stages.data import Data, check_data, load_data
from raykd.stages.distill import uses_stored_targets
from raykd.stages.run import Run, open_run, say
from raykd.stages.soft_targets import SoftTargets, make_soft_targets
from raykd.stages.student import train_student
from raykd.stages.teachers import TeacherStage, prepare_teacher

__all__ = ["run_search"]


def _trial(draw: dict[str, Any], *, search: SearchConfig, out: str, data: Data, teacher: TeacherStage, soft: SoftTargets | None) -> None:
    """One trial: the draw's student on the shared data and soft targets; every epoch reaches Tune
    through Ray Train's callback, then the kept checkpoint's scores in a last report."""
    from ray import tune

    cfg = trial_config(search, draw)
    trial_dir = Path(out) / "trials" / tune.get_context().get_trial_id()
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    stored = soft if uses_stored_targets(cfg, len(data.train["id"])) else None
    result = train_student(Run(cfg, trial_dir), data, "student", cfg.student.strategy, teacher, stored, report_to_tune=True)
    tune.report({"val_accuracy": result["val_accuracy"], "test_accuracy": result["accuracy"]})  # the kept (best) checkpoint's


def _row(result: Any, search: SearchConfig) -> dict[str, Any]:
    draw, frame = result.config, result.metrics_dataframe
    metric = search.search.metric
    # One row per epoch (Ray Train's reports); the trial's last report holds its test accuracy.
    scores = frame[frame["epoch"].notna()][metric] if frame is not None and "epoch" in frame else []
    scheduled = trial_config(search, draw).student.schedules  # what this trial's strategy took
    temperature = draw.get("temperature") if "temperature" in scheduled else None
    alpha = draw.get("alpha") if "alpha" in scheduled else None
    return {
        "trial": (result.metrics or {}).get("trial_id", Path(result.path).name),
        "strategy": draw["strategy"],
        "temperature": _schedule_text(temperature),
        "temperature_start": temperature["start"] if temperature else None,
        "alpha": _schedule_text(alpha),
        "lr": draw.get("lr", search.student.lr),
        "weights": draw.get("weights", {}),
        metric: float(max(scores)) if len(scores) else float("nan"),
        "epochs": int(len(scores)),
        "test_accuracy": (result.metrics or {}).get("test_accuracy"),
        "curve": [float(v) for v in scores],
        "draw": draw,
    }


def _schedule_text(draw: dict[str, Any] | None) -> str:
    if not draw:
        return "—"
    return f"{draw['start']:.3g}" if draw["kind"] == "constant" else f"{draw['kind']} {draw['start']:.3g}→{draw['end']:.3g}"


def run_search(cfg: SearchConfig, name: str = "tune_search") -> dict[str, Any]:
    """Teacher and soft targets once, then `search.num_samples` trials; resumes a search whose
    driver died when its directory is given again (`output`)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    inputs = check_data(cfg.data)
    run = open_run(cfg, name)
    data = load_data(run, inputs)
    teacher = prepare_teacher(run, data)
    needs_targets = any(uses_stored_targets(trial_config(cfg, {"strategy": s}), len(data.train["id"])) for s in cfg.search.strategies or [cfg.student.strategy.name])
    soft = make_soft_targets(run, data, teacher) if needs_targets else None
    teacher_seconds = sum(run.seconds.get(k, 0.0) for k in ("teachers", "soft_targets"))

    s = cfg.search
    scheduler = (
        ASHAScheduler(time_attr="training_iteration", max_t=cfg.student.epochs + 1, grace_period=s.grace_period, reduction_factor=s.reduction_factor)
        if s.scheduler == "asha"
        else FIFOScheduler()
    )
    trainable = tune.with_resources(
        tune.with_parameters(_trial, search=cfg, out=str(run.out), data=data, teacher=teacher, soft=soft), {"CPU": s.trial_cpus}
    )
    path = run.out / "search"
    with run.stage("search", f"{s.num_samples} trials, {s.scheduler}, {s.max_concurrent} at a time, metric {s.metric}") as summary:
        if tune.Tuner.can_restore(path):
            say(f"search: resuming {path} (finished trials are kept)")
            tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space(cfg),
                tune_config=tune.TuneConfig(
                    metric=s.metric, mode="max", num_samples=s.num_samples, scheduler=scheduler, max_concurrent_trials=s.max_concurrent
                ),
                run_config=tune.RunConfig(name="search", storage_path=str(run.out), verbose=0),
            )
        grid = tuner.fit()
        errors = [r.error for r in grid if r.error]
        if len(errors) == len(grid):
            raise RuntimeError(f"every trial failed; the first: {errors[0]}")
        rows = sorted((_row(r, cfg) for r in grid if not r.error), key=lambda r: r[s.metric], reverse=True)
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
    best = trial_config(cfg, rows[0]["draw"]).model_dump(mode="json")
    # The best trial's student again, from the teacher this search trained (nothing retrained).
    best["teacher"]["checkpoint"] = best["teacher"]["checkpoint"] or (str(run.out / "teachers") if (run.out / "teachers").is_dir() else None)
    best["output"] = None
    (run.out / "best_config.yaml").write_text(yaml.safe_dump(best, sort_keys=False))
    temperature_png = plot_temperature(rows, metric, run.out / "accuracy_vs_temperature.png")
    curves_png = plot_best_curves({f"{r['strategy']} ({r['trial']})": r["curve"] for r in rows[:3]}, metric, run.out / "best_curves.png")
    search_seconds = run.seconds["search"]
    lines = [
        markdown_table(table),
        "",
        f"best: {rows[0]['strategy']}, temperature {rows[0]['temperature']}, alpha {rows[0]['alpha']} → {pct(rows[0][metric])} {metric}; "
        f"`raykd run --config {run.out / 'best_config.yaml'}` trains it again",
        f"teacher and soft targets: {teacher_seconds:.1f}s, once; re-made for each of the {len(rows)} trials they would "
        f"add {len(rows) * teacher_seconds:.1f}s of teacher compute (the trials themselves took {search_seconds:.1f}s)",
    ]
    body = "\n".join(lines)
    report = {"rows": [{k: v for k, v in r.items() if k != "curve"} for r in rows], "best_config": str(run.out / "best_config.yaml"),
              "teacher_seconds": teacher_seconds, "seconds": run.total(), "config": cfg.model_dump(mode="json")}  # fmt: skip
    write_report(run.out, report, "raykd tune", body, [str(temperature_png), str(curves_png)])
    (run.out / "results.md").write_text(body + "\n")
    print("\n" + body, flush=True)
    say(f"report: {run.out / 'report.md'}  best config: {run.out / 'best_config.yaml'}")
    return report
