"""Helpers shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``)."""

import platform
from pathlib import Path


def cpu_name():
    """The CPU's model name from ``/proc/cpuinfo``, else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
