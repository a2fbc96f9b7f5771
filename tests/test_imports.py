"""Modules whose functions run in Ray task workers import neither torch nor scikit-learn: every
worker that unpickles one of them would pay seconds of CPU for nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["raykd.soft_targets.store", "raykd.soft_targets.reader", "raykd.shuffle", "raykd.data.inputs", "raykd.data.splits"])
def test_task_side_modules_leave_torch_and_sklearn_unimported(module):
    check = f"import sys, {module}; print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_package_exports_still_resolve():
    import raykd
    import raykd.soft_targets as st

    assert raykd.ModelOutput.__name__ == "ModelOutput" and st.generate_soft_targets.__module__ == "raykd.soft_targets.pipeline"
    assert set(st.__all__) <= set(dir(st)) and "TeacherActor" in st.__all__
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        st.nope  # noqa: B018
