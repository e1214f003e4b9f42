"""Put medgym's TT-OPD classes into OpenRLHF in every process of a run, as OpenRLHF's modules are imported.

OpenRLHF's ``train()`` (``openrlhf/cli/train_ppo_ray.py``) builds its Ray actors from module globals:
``PolicyModelActor`` (bound when the CLI module imports ``openrlhf.trainer.ray.ppo_actor``) and ``PPOTrainer``
(imported from ``openrlhf.trainer.ppo_trainer`` inside ``train()``). A monkeypatch made in one process does not
reach the others, so the run puts ``bootstrap/`` (this package's folder holding a ``sitecustomize.py``) on
``PYTHONPATH`` in the launcher's environment and in the Ray runtime env: every Python process of the run (the
driver, each Ray worker) then runs ``install()`` at start-up. ``install()`` only adds an import hook: when one
of ``TARGETS`` finishes importing, ``medgym.rl.openrlhf.ttopd`` is imported and its ``install_into_openrlhf()``
rebinds the two names. Processes that never import those modules (vLLM engines and their workers, Ray's own
helpers) are left untouched, and without ``MEDGYM_OPENRLHF_CONFIG`` in the environment nothing happens at all.

Workers that unpickle medgym's actor classes import ``medgym.rl.openrlhf.ttopd`` themselves, so they run
medgym's code whether or not the hook fired there; the hook matters for the driver, where ``train()`` looks
the classes up.

This module imports only the standard library (the bootstrap loads it by path at interpreter start-up).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys

CONFIG_ENV = "MEDGYM_OPENRLHF_CONFIG"  # medgym.rl.openrlhf.CONFIG_ENV (not imported: that would import torch)
TARGETS = ("openrlhf.trainer.ray.ppo_actor", "openrlhf.trainer.ppo_trainer")
TTOPD = "medgym.rl.openrlhf.ttopd"

__all__ = ["CONFIG_ENV", "TARGETS", "after_import", "install", "installed"]


def after_import(name: str) -> bool:
    """Called when ``name`` (one of ``TARGETS``) has been imported: install the TT-OPD classes. True if done.

    When ``ttopd`` is itself being imported (it imports the targets), it is left to finish: the outer call
    that imported it installs the classes.
    """
    module = sys.modules.get(TTOPD)
    if module is None:
        module = importlib.import_module(TTOPD)
    if not getattr(module, "READY", False):
        return False
    module.install_into_openrlhf()
    return True


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        after_import(module.__name__)

    def __getattr__(self, name):  # get_source, get_filename, ... for tracebacks and inspect
        return getattr(self.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``TARGETS`` with the other finders, then wraps their loader to run ``after_import``."""

    medgym_openrlhf_patches = True  # the mark ``installed()`` looks for (this file may be loaded twice, by path)

    def find_spec(self, fullname, path, target=None):
        if fullname not in TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def installed() -> bool:
    """Whether this process has the hook (from this module or a copy loaded by path)."""
    return any(getattr(finder, "medgym_openrlhf_patches", False) for finder in sys.meta_path)


def install(force: bool = False) -> bool:
    """Install the import hook (once per process) if ``MEDGYM_OPENRLHF_CONFIG`` is set, or ``force``.

    Targets already imported are patched at once. Returns whether the hook is active.
    """
    if not (force or os.environ.get(CONFIG_ENV)):
        return False
    if not installed():
        sys.meta_path.insert(0, _Finder())
    for name in TARGETS:
        if name in sys.modules:
            after_import(name)
            break
    return True
