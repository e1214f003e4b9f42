"""Reliability: atomic rebuilds, a build killed half-way, interrupted builds, and missing or corrupt indexes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from medgym.runtime.kb import KBCorrupt, KBNotBuilt, KnowledgeBase, Passage, default_kb_dir, open_default_kb
from medgym.runtime.kb.store import locate_build


def corpus(tag: str, n: int = 30) -> list[Passage]:
    return [Passage(f"{tag}:{i}", f"{tag} passage {i}", f"{tag} text about sepsis number {i}", "test")
            for i in range(n)]


def builds(kb_dir: Path) -> list[str]:
    return sorted(p.name for p in (kb_dir / "builds").iterdir())


def test_default_dir_follows_medgym_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGYM_CACHE_DIR", str(tmp_path / "c"))
    assert default_kb_dir() == tmp_path / "c" / "kb"
    monkeypatch.delenv("MEDGYM_CACHE_DIR")
    assert default_kb_dir() == Path.home() / ".cache" / "medgym" / "kb"


def test_open_default_kb_names_the_build_command(tmp_path):
    with pytest.raises(KBNotBuilt) as info:
        open_default_kb()
    assert str(info.value) == f"no knowledge base at {default_kb_dir()}; build one with `medgym kb build`"
    KnowledgeBase.build(corpus("a"), threads=1).close()  # the default folder
    with open_default_kb() as kb:
        assert kb.search("sepsis")[0].id.startswith("a:")


def test_missing_custom_dir_names_it_in_the_command(tmp_path):
    with pytest.raises(KBNotBuilt, match=f"`medgym kb build --dir {tmp_path / 'x'}`"):
        KnowledgeBase.open(tmp_path / "x")


def test_rebuild_swaps_and_keeps_the_previous_build_readable(tmp_path):
    kb_dir = tmp_path / "kb"
    old = KnowledgeBase.build(corpus("old"), kb_dir, threads=1)
    new = KnowledgeBase.build(corpus("new"), kb_dir, threads=1)
    # A process that opened the old build keeps working after the swap.
    assert old.search("sepsis")[0].id.startswith("old:") and new.search("sepsis")[0].id.startswith("new:")
    assert KnowledgeBase.open(kb_dir).build_dir == new.build_dir
    newest = KnowledgeBase.build(corpus("newest"), kb_dir, threads=1)
    assert builds(kb_dir) == sorted([new.build_dir.name, newest.build_dir.name])  # the oldest is removed
    for kb in (old, new, newest):
        kb.close()


BUILD_UNTIL_KILLED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from medgym.runtime.kb import KnowledgeBase, Passage

    kb_dir, marker, engine = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def passages():
        for i in range(10**9):
            if i == 500:
                marker.write_text("half-way")  # the parent kills us now
                time.sleep(60)
            yield Passage(f"new:{i}", f"new passage {i}", f"new text about sepsis {i}", "test")

    KnowledgeBase.build(passages(), kb_dir, engine=engine, threads=1)
""")


def kill_half_way(kb_dir: Path, tmp_path: Path, engine: str) -> None:
    marker = tmp_path / "marker"
    process = subprocess.Popen([sys.executable, "-c", BUILD_UNTIL_KILLED, str(kb_dir), str(marker), engine])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert process.poll() is None, "the build ended before it was killed"
            assert time.monotonic() < deadline, "the build never reached half-way"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_build_killed_half_way_leaves_previous_index_usable(tmp_path, engine):
    kb_dir = tmp_path / "kb"
    KnowledgeBase.build(corpus("old"), kb_dir, engine=engine, threads=1).close()
    kill_half_way(kb_dir, tmp_path, engine)
    unfinished = [b for b in builds(kb_dir) if not (kb_dir / "builds" / b / "meta.json").exists()]
    assert len(unfinished) == 1  # the killed build's folder, never published
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.stats()["passages"] == 30 and kb.search("sepsis")[0].id.startswith("old:")
    # The next build clears the dead builder's leftovers.
    with KnowledgeBase.build(corpus("next"), kb_dir, engine=engine, threads=1) as kb:
        assert unfinished[0] not in builds(kb_dir) and kb.search("sepsis")[0].id.startswith("next:")


def test_first_build_killed_says_so(tmp_path):
    kb_dir = tmp_path / "kb"
    kill_half_way(kb_dir, tmp_path, "tantivy")
    with pytest.raises(KBNotBuilt, match=r"\(an earlier build was interrupted\); build one with `medgym kb build"):
        KnowledgeBase.open(kb_dir)


def test_interrupt_inside_the_process_cleans_up(tmp_path):
    kb_dir = tmp_path / "kb"
    KnowledgeBase.build(corpus("old"), kb_dir, threads=1).close()

    def interrupted():
        yield from corpus("new", 10)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        KnowledgeBase.build(interrupted(), kb_dir, threads=1)
    assert len(builds(kb_dir)) == 1
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.search("sepsis")[0].id.startswith("old:")


def test_a_running_builders_folder_is_not_pruned(tmp_path):
    kb_dir = tmp_path / "kb"
    busy = kb_dir / "builds" / "19990101T000000-1-aaaaaa"
    busy.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (busy / ".building").write_text(str(sleeper.pid))
        KnowledgeBase.build(corpus("a"), kb_dir, threads=1).close()
        assert busy.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    KnowledgeBase.build(corpus("b"), kb_dir, threads=1).close()
    assert not busy.exists()


# ---------------------------------------------------------------- the pointer's temp files

KILLED_WHILE_REPLACING_THE_POINTER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from medgym.runtime.kb import KnowledgeBase, Passage

    kb_dir, marker = Path(sys.argv[1]), Path(sys.argv[2])
    replace = os.replace

    def stalled(src, dst):
        if Path(dst).name == "current":  # the temp file is written and synced: the parent kills us now
            marker.write_text("stalled")
            time.sleep(60)
        replace(src, dst)

    os.replace = stalled
    KnowledgeBase.build([Passage(f"new:{i}", "new", "new text about sepsis", "test") for i in range(5)],
                        kb_dir, threads=1)
""")


def temps(kb_dir: Path) -> list[str]:
    return sorted(p.name for p in kb_dir.glob("current.tmp-*"))


def test_a_build_killed_while_replacing_the_pointer_leaves_a_temp_the_next_build_removes(tmp_path):
    kb_dir = tmp_path / "kb"
    KnowledgeBase.build(corpus("old"), kb_dir, threads=1).close()
    marker = tmp_path / "marker"
    process = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_REPLACING_THE_POINTER, str(kb_dir), str(marker)])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the build never reached the pointer"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert len(temps(kb_dir)) == 1
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.search("sepsis")[0].id.startswith("old:")  # the pointer was never replaced
    KnowledgeBase.build(corpus("next"), kb_dir, threads=1).close()
    assert temps(kb_dir) == []


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_temps_of_dead_or_long_gone_writers_are_removed(tmp_path):
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        names = {"dead": f"current.tmp-{dead_pid()}-aaaaaa", "live": f"current.tmp-{sleeper.pid}-bbbbbb",
                 "live but old": f"current.tmp-{sleeper.pid}-cccccc", "no pid": "current.tmp-xyz",
                 "pid zero": "current.tmp-0-dddddd", "huge pid": f"current.tmp-{10**30}-eeeeee"}
        for name in names.values():
            (kb_dir / name).write_text("x\n")
        hours_ago = time.time() - 2 * 3600
        os.utime(kb_dir / names["live but old"], (hours_ago, hours_ago))
        (kb_dir / "current.json").write_text("{}")  # not a temp file of ours
        KnowledgeBase.build(corpus("a"), kb_dir, threads=1).close()
        assert temps(kb_dir) == [names["live"]]  # a build that is replacing the pointer right now
        assert (kb_dir / "current.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    KnowledgeBase.build(corpus("b"), kb_dir, threads=1).close()
    assert temps(kb_dir) == []


# ---------------------------------------------------------------- corrupt indexes

def built(tmp_path: Path, engine: str, **kwargs) -> Path:
    kb_dir = tmp_path / "kb"
    KnowledgeBase.build(corpus("a", 200), kb_dir, engine=engine, threads=1, **kwargs).close()
    return kb_dir


def index_files(kb_dir: Path) -> list[Path]:
    build = locate_build(kb_dir)
    # lock files and tantivy's bookkeeping list carry no data
    return [f for f in (build / "index").iterdir() if f.is_file() and f.stat().st_size > 0
            and "lock" not in f.name.lower() and f.name != ".managed.json"]


@pytest.mark.parametrize("damage", ["truncate", "zero", "delete"])
def test_damaged_index_files_give_a_clear_rebuild_message(tmp_path, engine, damage):
    kb_dir = built(tmp_path, engine)
    for file in index_files(kb_dir):
        data = file.read_bytes()
        if damage == "truncate":
            file.write_bytes(data[: len(data) // 2])
        elif damage == "zero":
            file.write_bytes(bytes(len(data)))
        else:
            file.unlink()
        with pytest.raises(KBCorrupt) as info:
            with KnowledgeBase.open(kb_dir) as kb:
                kb.search("sepsis text")
        message = str(info.value)
        assert f"rebuild with `medgym kb build --dir {kb_dir}`" in message and engine in message, file.name
        file.write_bytes(data)  # restore, then damage the next file alone


@pytest.mark.parametrize("meta", ["{not json", "[]", '{"format": 99}', '{"format": 1, "engine": "tantivy"}'])
def test_damaged_metadata(tmp_path, meta):
    kb_dir = built(tmp_path, "tantivy")
    (locate_build(kb_dir) / "meta.json").write_text(meta)
    with pytest.raises(KBCorrupt, match=r"unreadable metadata .*; rebuild with `medgym kb build --dir"):
        KnowledgeBase.open(kb_dir)


def test_metadata_count_mismatch_and_unknown_engine(tmp_path):
    kb_dir = built(tmp_path, "tantivy", rebuild_command="medgym kb build corpus.jsonl")
    meta_path = locate_build(kb_dir) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "passages": 999}))
    with pytest.raises(KBCorrupt, match=r"holds 200 passages, its metadata says 999; rebuild with `medgym kb build corpus.jsonl`"):
        KnowledgeBase.open(kb_dir)
    meta_path.write_text(json.dumps({**meta, "engine": "lucene"}))
    with pytest.raises(KBCorrupt, match="unknown engine 'lucene'"):
        KnowledgeBase.open(kb_dir)


def test_pointer_to_a_missing_build(tmp_path):
    kb_dir = built(tmp_path, "tantivy")
    (kb_dir / "current").write_text("gone\n")
    with pytest.raises(KBCorrupt, match="points to a missing build 'gone'; rebuild with"):
        KnowledgeBase.open(kb_dir)
    (kb_dir / "current").write_text("../../etc\n")
    with pytest.raises(KBCorrupt, match="points to a missing build"):
        KnowledgeBase.open(kb_dir)


def test_a_build_folder_opens_directly(tmp_path):
    kb_dir = built(tmp_path, "whoosh")
    build = locate_build(kb_dir)
    with KnowledgeBase.open(build) as kb:
        assert kb.stats()["engine"] == "whoosh" and os.path.samefile(kb.build_dir, build)
