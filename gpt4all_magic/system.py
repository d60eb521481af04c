"""Facts about this machine that settings default to: the CPU cores this process may use, its memory."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_threads", "machine_note", "rss_bytes"]


def default_threads() -> int:
    """Physical cores available to this process (llama-cpp-python's own default is half of them)."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    physical = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # psutil missing or unable to read the topology
        pass
    quota = _cgroup_cpu_quota()
    return max(1, min(physical or available, available, quota or available))


_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _cgroup_cpu_quota() -> int | None:
    """CPUs a container's cgroup (v2 ``cpu.max``) lets this process use, rounded down; None if unlimited."""
    try:
        quota, period = _CPU_MAX.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, int(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def rss_bytes() -> int | None:
    """Resident memory of this process."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except Exception:
        return None


def machine_note() -> str:
    """``load average 0.12 (1 min), 0.30 (5 min) on 2 CPUs``: what a benchmark prints beside its timings."""
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"
    except OSError:
        return f"{os.cpu_count()} CPUs"
