"""Register the shipped domains with Gymnasium without compiling anything at import time."""
from __future__ import annotations

from pathlib import Path

import yaml

ENTRY_POINT = "medgym._registration:make_shipped"


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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def make_shipped(domain: str, build_dir: str | Path | None = None, **kwargs):
    """Gymnasium entry point: the env of `domain` from `build_dir`, or from the shipped specs' build."""
    from medgym.runtime import make_env
    from medgym.shipped import ensure_build

    return make_env(ensure_build(Path(build_dir) if build_dir else None), domain, **kwargs)
