"""The specs that ship inside the package, and their build, compiled on first use into a cache."""
from __future__ import annotations

from pathlib import Path

from medgym.runtime.paths import cache_dir, shipped_specs

__all__ = ["cache_dir", "ensure_build", "shipped_specs"]


def ensure_build(build: Path | None = None) -> Path:
    """A usable build directory: `build` when given (it must exist), else the shipped specs compiled once."""
    if build is not None:
        build = Path(build)
        if not (build / "manifest.json").is_file():
            if (build / "medgym.yaml").is_file() or (build / "domains").is_dir():  # a specs folder, not a build
                raise FileNotFoundError(f"{build} is a specs folder, not a build: compile it with `medgym compile "
                                        f"{build} --out build` and pass --build build")
            raise FileNotFoundError(f"{build} is not a medgym build (no manifest.json); compile one with "
                                    f"`medgym compile SPECS --out {build}`")
        return build
    from medgym.compiler.pipeline import compile_specs
    from medgym.gate import compile_gate

    out = cache_dir() / "build"
    compile_specs(shipped_specs(), out, gate=compile_gate)
    return out
