"""The context printed beside every benchmark figure: machine, versions, commit."""
from __future__ import annotations

import os
import platform
import subprocess
import sys


def context() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    try:
        from importlib.metadata import version

        medgym = version("medgym")
    except Exception:
        medgym = "source"
    return {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "medgym": medgym, "commit": commit}
