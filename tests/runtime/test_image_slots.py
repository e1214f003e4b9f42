"""Image slots through env.step: a multimodal agent gets the case's image as an OpenAI image content part, a
text-only agent reads the structured findings through the lookup tool; the build detects a changed image;
grading is monotone in the finding; check_env passes either way. Images are tiny PNGs written with zlib."""
import base64
import json
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from gymnasium.utils.env_checker import check_env

from medgym.compiler.pipeline import compile_specs
from medgym.gate import compile_gate
from medgym.runtime import make_env
from medgym.runtime.build import BuildError
from medgym.runtime.prompt import message_text, opening_messages
from medgym.runtime.agents.oracle import hermes

IMAGING = Path(__file__).resolve().parents[1] / "compiler" / "fixtures" / "imaging"
DOMAIN = "domains/chest_xray"


def tiny_png(width: int, height: int, shade) -> bytes:
    """A grayscale PNG: shade(x, y) -> 0..255 per pixel."""
    raw = b"".join(b"\0" + bytes(shade(x, y) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


GENERATED = tiny_png(16, 16, lambda x, y: 255 if (x - 4) ** 2 + (y - 11) ** 2 <= 4 else 30)


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> Path:
    """The imaging fixture with the left-lower-lobe scenario pointing at an image generated here."""
    root = tmp_path_factory.mktemp("imaging") / "specs"
    shutil.copytree(IMAGING, root)
    (root / DOMAIN / "images" / "generated.png").write_bytes(GENERATED)
    family = root / DOMAIN / "tasks" / "report.yaml"
    family.write_text(family.read_text().replace("images/cxr_5.png", "images/generated.png"))
    return root


@pytest.fixture(scope="module")
def build(specs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imaging-build") / "build"
    compile_specs(specs, out, gate=compile_gate)
    return out


def start(build, scenario="lll", **kwargs):
    env = make_env(build, "chest_xray", **kwargs)
    task = next(t for t in env.domain.tasks("train") if t.scenario == scenario)
    observation, info = env.reset(options={"task_id": task.task_id})
    return env, observation, info


def test_a_multimodal_agent_gets_the_image_as_a_content_part(build):
    env, observation, info = start(build, multimodal=True)
    [part] = info["images"]
    assert part["type"] == "image_url"
    prefix = "data:image/png;base64,"
    assert part["image_url"]["url"].startswith(prefix)
    assert base64.b64decode(part["image_url"]["url"][len(prefix):]) == GENERATED
    assert "[1 image attached]" in observation and "base64" not in observation
    user = env.transcript[1]["content"]
    assert user[0] == {"type": "text", "text": info["ticket"]} and user[1] == part
    messages, _ = opening_messages("policy", info["system"], info["ticket"], info["tools"], None, True, info["images"])
    assert messages[1]["content"][1] == part and message_text(messages[1]["content"]) == info["ticket"]


def test_a_text_only_agent_reads_the_findings_through_the_tool(build):
    env, observation, info = start(build)
    assert "images" not in info and "image" not in observation
    assert isinstance(env.transcript[1]["content"], str)
    observation, _, terminated, _, info = env.step(hermes("get_xray_findings", {"patient_id": env.episode.case["id"]}))
    findings = info["tool_results"][0]["content"]["findings"]
    truth = env.episode.case["xray"]["findings"]
    assert findings == {"location": truth["location"], "size_cm": {"value": truth["size_cm"], "unit": "cm"}}
    assert not terminated
    assert "generated.png" not in observation
    assert env.episode.observed == {"xray.findings.location", "xray.findings.size_cm"}


def play(env, answer: dict) -> float:
    case_id = env.episode.case["id"]
    env.step(hermes("get_vital_signs", {"patient_id": case_id}))
    env.step(hermes("get_xray_findings", {"patient_id": case_id}))
    return env.step(hermes("submit_answer", answer))[1]


@pytest.mark.parametrize("multimodal", [False, True])
def test_grading_is_monotone_in_the_finding(build, multimodal):
    scores = []
    for right_lobe, right_size in ((True, True), (True, False), (False, True), (False, False)):
        env, _, _ = start(build, multimodal=multimodal)
        truth = env.episode.task.truth
        scores.append(play(env, {"location": truth["location"] if right_lobe else "rul",
                                 "size_cm": truth["size_cm"] if right_size else truth["size_cm"] + 3}))
    full, lobe_only, size_only, wrong = scores
    assert full >= 0.95 and full > lobe_only > wrong and full > size_only > wrong and wrong == 0.0


def test_a_changed_image_is_a_new_build_and_a_damaged_copy_is_refused(specs, build, tmp_path):
    copy = tmp_path / "specs"
    shutil.copytree(specs, copy)
    first = compile_specs(copy, tmp_path / "build")
    assert compile_specs(copy, tmp_path / "build").cached
    (copy / DOMAIN / "images" / "generated.png").write_bytes(tiny_png(16, 16, lambda x, y: 200))
    second = compile_specs(copy, tmp_path / "build")
    assert not second.cached and second.manifest["spec_hash"] != first.manifest["spec_hash"]
    env, _, info = start(tmp_path / "build", multimodal=True)
    assert base64.b64decode(info["images"][0]["image_url"]["url"].split(",", 1)[1]) != GENERATED
    domain = json.loads((tmp_path / "build" / "chest_xray" / "domain.json").read_text())
    copied = tmp_path / "build" / "chest_xray" / domain["images"]["images/generated.png"]["file"]
    copied.write_bytes(GENERATED[:-4])
    env = make_env(tmp_path / "build", "chest_xray", multimodal=True)
    task = next(t for t in env.domain.tasks("train") if t.scenario == "lll")
    with pytest.raises(BuildError, match="the image changed since the build was compiled"):
        env.reset(options={"task_id": task.task_id})


@pytest.mark.parametrize("multimodal", [False, True])
def test_check_env_passes_with_and_without_images(build, multimodal):
    env = make_env(build, "chest_xray", multimodal=multimodal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env)
