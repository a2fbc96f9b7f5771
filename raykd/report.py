"""Reports: report.json for machines; report.md and the printed table for people. One writer for every run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

__all__ = ["markdown_table", "pct", "write_report", "distill_table"]


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """rows[0] is the header; columns padded so the table also reads well as plain text."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_report(directory: str | Path, report: dict[str, Any], title: str, body: str, images: Sequence[str] = ()) -> tuple[Path, Path]:
    """report.json (the dict) and report.md (title, body, then each image, relative to the run dir)."""
    directory = Path(directory)
    json_path, md_path = directory / "report.json", directory / "report.md"
    json_path.write_text(json.dumps(report, indent=2, default=str))
    pictures = [f"![{Path(p).parent.name}]({Path(p).resolve().relative_to(directory.resolve())})" for p in images]
    md_path.write_text(f"# {title}: {directory.name}\n\n{body}\n" + ("\n" + "\n\n".join(pictures) + "\n" if pictures else ""))
    return json_path, md_path


def distill_table(report: dict[str, Any]) -> str:
    """Every model's size and test accuracy, then the soft targets and the stage timings."""
    rows = [("model", "params", "test accuracy")]
    rows += [(f"teacher {t['name']}", f"{t['params']:,}", pct(t["accuracy"])) for t in report["teachers"]]
    teacher = report["teacher"]
    rows.append((teacher["label"], f"{teacher['params']:,}", pct(teacher["accuracy"])))
    student = report["student"]
    kd = student["kd"]
    rows.append((f"student KD ({kd['strategy']})", f"{kd['params']:,}", pct(kd["accuracy"])))
    if student.get("baseline"):
        rows.append(("student labels-only", f"{student['baseline']['params']:,}", pct(student["baseline"]["accuracy"])))
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items())
    st = report["soft_targets"]
    lines = [markdown_table(rows), ""]
    lines.append(f"student/teacher parameters: {kd['params'] / teacher['params']:.3f}")
    if st is not None:
        lines.append(f"soft targets: {st['rows']} rows, k={st['k']}, {st['bytes_per_sample']:.1f} bytes/sample -> {st['path']}")
    else:
        lines.append(f"soft targets: none ({kd['strategy']} runs the teacher inside the Ray Train workers)")
    lines.append(f"data: {report['data']['source']}, {report['data']['ids']}")
    lines.append(f"seconds: {seconds}")
    return "\n".join(lines)
