"""medgym's start-up hook for OpenRLHF runs (``medgym train --backend openrlhf`` puts this folder on PYTHONPATH).

Python imports ``sitecustomize`` at start-up in every process, so the driver and every Ray worker of the run
install medgym's import hook (``medgym/rl/openrlhf/patches.py``, loaded by path so that nothing heavy is
imported here). It acts only when ``MEDGYM_OPENRLHF_CONFIG`` is set. Any other ``sitecustomize`` further along
``sys.path`` is run afterwards, since this one hides it. A failure is reported on stderr and never stops the
interpreter.
"""


def _medgym_bootstrap() -> None:
    import importlib.machinery
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        path = os.path.join(os.path.dirname(here), "patches.py")
        spec = importlib.util.spec_from_file_location("_medgym_openrlhf_patches", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        module.install()
    except Exception as exc:  # noqa: BLE001  (start-up must go on)
        print(f"medgym: the OpenRLHF patches were not installed ({type(exc).__name__}: {exc})", file=sys.stderr)
    others = [p for p in sys.path if p and os.path.abspath(p) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        try:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001
            print(f"medgym: the next sitecustomize ({spec.origin}) failed: {exc}", file=sys.stderr)


_medgym_bootstrap()
del _medgym_bootstrap
