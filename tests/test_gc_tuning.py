"""The relay's processes run with a frozen startup heap and a higher GC threshold."""

from __future__ import annotations

import subprocess
import sys

from relay.gc_tuning import GC_GEN0_THRESHOLD


def test_tune_gc_freezes_startup_objects_and_raises_the_threshold() -> None:
    # In a child process: freezing the test runner's own heap would outlive the test.
    out = subprocess.run(
        [sys.executable, "-c",
         "import gc; from relay.gc_tuning import tune_gc; before = gc.get_freeze_count(); "
         "tune_gc(); print(before, gc.get_freeze_count(), gc.get_threshold()[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    before, after, threshold = map(int, out)
    assert before == 0
    assert after > 1000  # the interpreter's and relay's startup objects
    assert threshold == GC_GEN0_THRESHOLD
