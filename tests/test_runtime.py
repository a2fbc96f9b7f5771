"""raykd.runtime's output decisions; all but the last test run without Ray."""

from __future__ import annotations

import io
import os

import pytest

from raykd.runtime import NOISE, _filtered, is_noise, progress_bars_enabled


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_progress_bars_on_a_terminal_only():
    assert progress_bars_enabled(_Stream(tty=True)) is True
    assert progress_bars_enabled(_Stream(tty=False)) is False


def test_progress_bars_off_for_pipes_files_and_odd_streams(tmp_path):
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe:
        assert progress_bars_enabled(pipe) is False
    os.close(read_end)
    with open(tmp_path / "out.log", "w") as log:
        assert progress_bars_enabled(log) is False
    closed = io.StringIO()
    closed.close()
    assert progress_bars_enabled(closed) is False  # isatty raises ValueError
    assert progress_bars_enabled(object()) is False  # no isatty at all


def test_progress_bars_follow_stdout_by_default(monkeypatch):
    monkeypatch.setattr("sys.stdout", _Stream(tty=True))
    assert progress_bars_enabled() is True
    monkeypatch.setattr("sys.stdout", _Stream(tty=False))
    assert progress_bars_enabled() is False


def test_worker_output_filter_drops_only_the_known_noise():
    printed = []
    handler = _filtered(printed.append)
    warning = (
        "[2026-12-01 14:42:55,188 E 4649 4679] core_worker.cc:2465: Actor with class name: 'PreemptionWatcher' "
        "and ID: 'fe1d' has constructor arguments in the object store and max_restarts > 0. If the arguments ..."
    )
    assert is_noise(warning) and all(is_noise(pattern) for pattern in NOISE)
    handler({"pid": 1, "is_err": True, "lines": [warning]})
    assert printed == []  # a batch of noise only prints nothing
    handler({"pid": 2, "is_err": True, "lines": [warning, "ValueError: a real actor error", "print from a task"]})
    assert printed == [{"pid": 2, "is_err": True, "lines": ["ValueError: a real actor error", "print from a task"]}]
    clean = {"pid": 3, "is_err": False, "lines": ["epoch 1"]}
    handler(clean)
    assert printed[-1] is clean


@pytest.mark.ray
def test_init_ray_forwards_worker_output_through_the_filter(ray_session):
    from ray._private.ray_logging import global_worker_stdstream_dispatcher

    printers = [handler for name, handler in global_worker_stdstream_dispatcher.handlers if name == "ray_print_logs"]
    assert printers and all(getattr(handler, "_raykd_filtered", False) for handler in printers)  # log_to_driver on
    assert ray_session.data.DataContext.get_current().enable_progress_bars is progress_bars_enabled()
