"""The run report: report.json for machines, report.md and a printed table for people."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["StageTimer", "write_report", "format_table"]


class StageTimer:
    """Wall-clock seconds per named stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 2)

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self._start, 2)}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def format_table(report: dict[str, Any]) -> str:
    """A Markdown table of every model's test accuracy and size, then stage timings."""
    rows = [("model", "params", "test accuracy")]
    rows += [(f"teacher {t['name']}", f"{t['params']:,}", _pct(t["accuracy"])) for t in report["teachers"]]
    ens = report["ensemble"]
    rows.append((f"ensemble ({ens['combine']})", f"{ens['params']:,}", _pct(ens["accuracy"])))
    student = report["student"]
    rows.append((f"student KD ({student['strategy']})", f"{student['params']:,}", _pct(student["kd"]["accuracy"])))
    if student.get("baseline"):
        rows.append(("student labels-only", f"{student['params']:,}", _pct(student["baseline"]["accuracy"])))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items())
    st = report["soft_targets"]
    return "\n".join(
        lines
        + [
            "",
            f"student/ensemble parameters: {student['params'] / ens['params']:.3f}",
            f"soft targets: {st['rows']} rows, k={st['k']}, {st['bytes_per_sample']:.1f} bytes/sample -> {st['path']}",
            f"seconds: {seconds}",
        ]
    )


def write_report(directory: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    directory = Path(directory)
    json_path, md_path = directory / "report.json", directory / "report.md"
    json_path.write_text(json.dumps(report, indent=2, default=str))
    md_path.write_text(f"# raykd run: {directory.name}\n\n{format_table(report)}\n")
    return json_path, md_path
