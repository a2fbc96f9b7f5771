"""Schedules: the values each kind takes, warm-up, per-step progress, the tutorial's preset."""

from __future__ import annotations

import pickle

import pytest

from raykd.schedules import PROGRESSIVE_DISTILLATION, Schedule, schedule_from


def values(schedule: Schedule, total: int = 10) -> list[float]:
    return [round(schedule.value(e, total), 6) for e in range(total)]


def test_each_kind_moves_from_start_to_end_over_the_run():
    assert values(Schedule("constant", 2.0)) == [2.0] * 10
    assert values(Schedule("linear", 1.0, 0.0), 5) == [1.0, 0.8, 0.6, 0.4, 0.2]
    cosine = Schedule("cosine", 1.0, 0.0, epochs=4)
    assert [cosine.value(e, 10) for e in (0, 2, 4, 9)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    exponential = Schedule("exponential", 1.0, 0.01, epochs=2)
    assert [exponential.value(e, 10) for e in (0, 1, 2, 5)] == pytest.approx([1.0, 0.1, 0.01, 0.01])
    assert values(Schedule("step", 4.0, 1.0, at=3), 5) == [4.0, 4.0, 4.0, 1.0, 1.0]


def test_progressive_is_the_tutorials_stagewise_temperature_and_alpha():
    temperature, alpha = (schedule_from(PROGRESSIVE_DISTILLATION[k]) for k in ("temperature", "alpha"))
    # 10 epochs, 5 stages of 2 epochs: stage s gives 10 - 9·s/5 and 0.5 + 0.5·s/5 (seed 003's formulas).
    assert values(temperature) == [10.0, 10.0, 8.2, 8.2, 6.4, 6.4, 4.6, 4.6, 2.8, 2.8]
    assert values(alpha) == [0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 0.8, 0.8, 0.9, 0.9]


def test_warmup_ramps_up_then_the_schedule_runs_over_the_rest():
    lr = Schedule("cosine", 1e-2, 0.0, warmup=2)
    assert [lr.value(e, 6) for e in range(6)] == pytest.approx([1e-2 / 3, 2e-2 / 3, 1e-2, 0.5 * 1e-2 * (1 + 0.7071067811865476), 5e-3, 0.5 * 1e-2 * (1 - 0.7071067811865476)])


def test_per_step_schedules_move_within_an_epoch_and_per_epoch_ones_do_not():
    per_step = Schedule("linear", 1.0, 0.0, per="step")
    per_epoch = Schedule("linear", 1.0, 0.0)
    assert per_step.value(0.5, 2) == pytest.approx(0.75) and per_epoch.value(0.5, 2) == 1.0


def test_bad_schedules_are_refused_and_good_ones_pickle():
    with pytest.raises(ValueError, match="kind must be one of"):
        Schedule("cubic", 1.0)
    with pytest.raises(ValueError, match="needs at"):
        Schedule("step", 1.0, 0.0)
    with pytest.raises(ValueError, match="start and end > 0"):
        Schedule("exponential", 1.0, 0.0)
    with pytest.raises(ValueError, match="unknown schedule keys"):
        schedule_from({"kind": "linear", "start": 1, "colour": "red"})
    assert schedule_from(3) == Schedule("constant", 3.0)
    assert schedule_from({"kind": "constant", "value": 2}).value(7, 10) == 2.0
    assert pickle.loads(pickle.dumps(Schedule("step", 1.0, 0.0, at=2))).value(3, 5) == 0.0
