"""The `raykd` command as an installed package gives it: help for every subcommand, one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from raykd.cli import COMMANDS

RAYKD = shutil.which("raykd", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(RAYKD is None, reason="the raykd console script is not installed (pip install -e .)")
@pytest.mark.parametrize("argv", [["--help"], *([name, "--help"] for name in COMMANDS)])
def test_help_works_from_the_installed_command(argv):
    done = subprocess.run([RAYKD, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: raykd" in done.stdout
    if argv != ["--help"]:
        assert "--config" in done.stdout and "--set" in done.stdout


def test_a_bad_value_is_one_line_naming_the_field_without_a_traceback():
    done = subprocess.run([RAYKD or "raykd", "run", "--epochs", "10.5"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "raykd run: error: student.epochs (--epochs): Input should be a valid integer, unable to parse string as an integer; got '10.5'"
    ]


def test_a_missing_data_column_is_one_line_and_debug_shows_the_traceback(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "label": [0, 1]}), path)
    argv = [sys.executable, "-m", "raykd.cli", "run", "--data", str(path), "--id-column", "key", "--output", str(tmp_path / "run")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "'key'" in done.stderr and "--id-column" in done.stderr
    assert not (tmp_path / "run").exists()  # checked before the run directory or Ray
    debug = subprocess.run([*argv, "--debug"], capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
