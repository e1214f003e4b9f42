"""Image slots at run time: the OpenAI image content parts of a case, for agents that see images.

A text-only agent is never sent an image: it reads the structured findings through the domain's lookup
tool. The image bytes come from the build's copy, checked against the hash the compiler recorded.
"""
from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path

from medgym.runtime.build import BuildError, Domain


def image_paths(domain: Domain) -> list[str]:
    """The record's image fields, by dotted path."""
    return [path for path, info in domain.spec.fields.items() if info.type == "image"]


def image_parts(domain: Domain, case: dict) -> list[dict]:
    """One `{"type": "image_url", "image_url": {"url": "data:...;base64,..."}}` part per image the case names."""
    parts = []
    for path in image_paths(domain):
        name = _leaf(case, path)
        entry = domain.spec.images.get(name) if isinstance(name, str) else None
        if entry is None:
            raise BuildError(f"domain {domain.name}: case.{path} names {name!r}, which the build does not carry; "
                             f"recompile with `medgym compile SPECS --out {domain.build.path}`")
        file = domain.folder / entry.file
        url = _data_url(str(file), entry.sha256, entry.media_type, _stamp(file))
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def _stamp(file: Path) -> tuple:
    """What identifies one version of the file for the cache (a copy rewritten in place is read again)."""
    try:
        found = file.stat()
    except OSError:
        return ()
    return found.st_mtime_ns, found.st_size


@functools.lru_cache(maxsize=64)
def _data_url(file: str, sha256: str, media_type: str, stamp: tuple) -> str:
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise BuildError(f"{file}: cannot read the image ({exc.strerror or exc}); recompile the build") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BuildError(f"{file}: the image changed since the build was compiled; recompile the build")
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def _leaf(case: dict, path: str):
    node = case
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
