"""Register the shipped domains with Gymnasium without compiling anything at import time.

Gymnasium (and numpy under it) costs about a quarter of a second to import, which `medgym --help` and
`medgym validate` do not need, so `import medgym` registers the envs only once gymnasium is imported:
at once when it already is, else right after its own import finishes (a one-shot import hook). Either way
`import medgym; gymnasium.make("medgym/Triage-v1")` works.
"""
from __future__ import annotations

import sys
from importlib.abc import Loader, MetaPathFinder
from importlib.util import find_spec
from pathlib import Path

ENTRY_POINT = "medgym._registration:make_shipped"


def register_with_gymnasium() -> None:
    """Register the shipped envs now if gymnasium is imported, else as soon as it is."""
    if "gymnasium" in sys.modules:
        register_shipped()
    elif not any(isinstance(f, _AfterGymnasium) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasium())


class _AfterGymnasium(MetaPathFinder):
    """Finds gymnasium through the other finders and registers the shipped envs once it has executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "gymnasium":
            return None
        sys.meta_path.remove(self)  # one shot; and find_spec below must not come back here
        spec = find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfter(spec.loader)
        return spec


class _RegisterAfter(Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        register_shipped()

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self.loader, name)


def register_shipped() -> list[str]:
    """Register `medgym/<Domain>-v<version>` for each shipped domain; returns the ids."""
    import gymnasium

    from medgym.dsl.naming import env_id
    from medgym.shipped import shipped_specs

    ids = []
    domains = shipped_specs() / "domains"
    for folder in sorted(domains.iterdir()) if domains.is_dir() else []:
        settings = _settings(folder / "domain.yaml")
        if settings is None:
            continue
        env = env_id(folder.name, int(settings.get("version", 0)))
        if env not in gymnasium.registry:
            gymnasium.register(id=env, entry_point=ENTRY_POINT, kwargs={"domain": folder.name},
                               max_episode_steps=settings.get("max_turns", 12))
        ids.append(env)
    return ids


def _settings(path: Path) -> dict | None:
    import yaml

    try:  # libyaml when present: the pure-Python loader took ~40 ms per domain.yaml
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def make_shipped(domain: str, build_dir: str | Path | None = None, **kwargs):
    """Gymnasium entry point: the env of `domain` from `build_dir`, or from the shipped specs' build."""
    from medgym.runtime import make_env
    from medgym.shipped import ensure_build

    return make_env(ensure_build(Path(build_dir) if build_dir else None), domain, **kwargs)
