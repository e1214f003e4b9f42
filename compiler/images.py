"""Image slots: record fields of type `image` whose case values name image files of the domain folder.

Every image a task names must exist (a located error at the value that names it); the build copies each
into `<domain>/images/` under its content hash and records that hash in domain.json, so a changed image
makes a new build and a damaged copy is refused at run time. A lookup may not read an image field: its file
name could give the finding away, and text-only agents read the findings group instead.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path, PurePosixPath

from medgym.compiler.context import CompiledFamily, DomainContext
from medgym.dsl.errors import SpecError
from medgym.dsl.types import ImageT

MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # what an OpenAI image content part accepts


def image_fields(ctx: DomainContext) -> list[str]:
    return [path for path, info in ctx.record.fields.items() if isinstance(info.type, ImageT)]


def check_image_lookups(ctx: DomainContext, tool_marks: dict, errors: list[SpecError]) -> None:
    """A lookup whose subtree holds an image field would show its file name."""
    images = image_fields(ctx)
    for name, tool in ctx.tools.items():
        if tool["kind"] != "lookup" or not tool.get("path"):
            continue
        prefix = ".".join(tool["path"])
        shown = [p for p in images if p == prefix or p.startswith(prefix + ".")]
        if shown and name in tool_marks:
            findings = ctx.record.fields[shown[0]].spec.findings
            errors.append(SpecError(f"lookup '{name}' reads the image field '{shown[0]}', whose file name could give "
                                    f"the finding away", tool_marks[name].at(("from",)),
                                    f"read the findings instead: from: {findings}"))


def image_tasks(fam: CompiledFamily, ctx: DomainContext, folder: Path, tasks: list[dict], used: dict,
                errors: list[SpecError]) -> list[dict]:
    """`tasks` whose every image exists; `used` collects image name -> its file. A missing image is reported
    once, at the value that names it."""
    fields = image_fields(ctx)
    if not fields:
        return tasks
    out, reported = [], set()
    for task in tasks:
        ok = True
        for path in fields:
            name = _leaf(task["case"], path)
            problem = _problem(folder, name)
            if problem is None:
                used[name] = folder / name
                continue
            ok = False
            if (path, name) not in reported:
                reported.add((path, name))
                errors.append(SpecError(f"task {task['index']} (scenario {task['scenario']}): case.{path} names "
                                        f"{name!r}, {problem}", _value_pos(fam, task["scenario"], path, ctx),
                                        f"image files live in the domain folder ({folder})"))
        if ok:
            out.append(task)
    return out


def _problem(folder: Path, name) -> str | None:
    if not isinstance(name, str) or not name:
        return "not an image file name"
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        return "which is not a path inside the domain folder"
    if relative.suffix.lower() not in MEDIA_TYPES:
        return f"which is not an image file ({', '.join(MEDIA_TYPES)})"
    path = folder / relative
    if not path.is_file():
        return "which does not exist"
    if path.stat().st_size > MAX_IMAGE_BYTES:
        return f"which is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB"
    return None


def _value_pos(fam: CompiledFamily, scenario: str, path: str, ctx: DomainContext):
    for plan in fam.plans:
        if plan.name == scenario:
            for step in plan.steps:
                if step.target == ("case", path):
                    return step.source.pos
    return ctx.record.fields[path].pos


def _leaf(case: dict, path: str):
    node = case
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def write_images(used: dict, out: Path) -> dict:
    """Copy each used image into `out/images/` under its content hash; domain.json's `images` entries."""
    entries = {}
    for name, source in sorted(used.items()):
        data = source.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        suffix = PurePosixPath(name).suffix.lower()
        target = out / "images" / f"{digest[:16]}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        entries[name] = {"file": f"images/{target.name}", "sha256": digest, "media_type": MEDIA_TYPES[suffix],
                         "bytes": len(data)}
    return entries

