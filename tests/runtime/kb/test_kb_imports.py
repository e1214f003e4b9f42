"""The core package works without the `kb` extra: engines are imported only when used, with an install hint."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=60)


def test_importing_the_kb_loads_no_engine_and_no_compiler():
    result = run("""
        import sys
        import medgym.runtime.kb
        heavy = [m for m in ("tantivy", "whoosh", "medgym.compiler", "simple_icd_10_cm") if m in sys.modules]
        print(heavy)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_engines_raise_engine_missing_with_the_install_hint(tmp_path):
    result = run("""
        import sys
        sys.modules["tantivy"] = None  # an import of a None entry raises ImportError, as if not installed
        sys.modules["whoosh"] = None
        from medgym.runtime.kb import EngineMissing, KnowledgeBase, Passage
        for engine in ("tantivy", "whoosh"):
            try:
                KnowledgeBase.build([Passage("a:1", "t", "x", "a")], sys.argv[1] + "/" + engine, engine=engine)
            except EngineMissing as exc:
                print(exc)
    """, str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines == [
        "the tantivy engine is not installed: pip install 'medgym[kb]' (or pip install tantivy), or build with "
        "--engine whoosh",
        "the whoosh engine is not installed: pip install 'medgym[kb]' (or pip install whoosh-reloaded), or build "
        "with --engine tantivy"]
