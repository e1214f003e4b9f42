"""Tiny corpora and built knowledge bases shared by the knowledge-base tests (both engines)."""
from __future__ import annotations

from pathlib import Path

import pytest

from medgym.runtime.kb import KnowledgeBase, Passage

DATA = Path(__file__).parent / "data"
ENGINES = ["tantivy", "whoosh"]

FACTS = [
    ("sepsis-lactate", "Lactate in sepsis", "Measure serum lactate in suspected sepsis; a lactate above 2 mmol/L "
     "with vasopressors defines septic shock.", "guide"),
    ("sepsis-abx", "Antibiotics in septic shock", "Give broad-spectrum antibiotics within one hour of septic shock.",
     "guide"),
    ("af-anticoag", "Anticoagulation in atrial fibrillation", "The CHA2DS2-VASc score guides oral anticoagulation "
     "with apixaban or warfarin.", "guide"),
    ("warfarin", "Warfarin", "Warfarin is a vitamin K antagonist; amiodarone raises the INR.", "drugs"),
    ("apixaban", "Apixaban", "Apixaban is a direct factor Xa inhibitor used in atrial fibrillation.", "drugs"),
    ("metformin", "Metformin", "Metformin is first-line therapy for type 2 diabetes mellitus.", "drugs"),
    ("fever", "Fever", "Body temperature elevated above the normal range; pyrexia.", "hpo"),
    ("hyperkalemia", "Hyperkalemia", "Peaked T waves on the ECG suggest hyperkalemia.", "hpo"),
]


def small_passages(extra: int = 40) -> list[Passage]:
    """The facts above plus `extra` filler passages, so BM25 statistics are not degenerate."""
    passages = [Passage(id=f"{source}:{key}", title=title, text=text, source=source, license="CC0-1.0",
                        url=f"https://example.org/{key}", original_id=key)
                for key, title, text, source in FACTS]
    words = ["renal", "hepatic", "cardiac", "pulmonary", "dose", "adjustment", "monitoring", "infusion",
             "clearance", "elderly", "pregnancy", "paediatric", "oral", "intravenous", "daily"]
    for i in range(extra):
        body = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12))
        passages.append(Passage(id=f"filler:{i}", title=f"Filler {i}", text=body, source="filler"))
    return passages


@pytest.fixture
def corpus() -> list[Passage]:
    return small_passages()


@pytest.fixture(scope="session", params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def small_kb(engine, tmp_path_factory) -> KnowledgeBase:
    """A read-only knowledge base built once per engine; tests must not change it."""
    path = tmp_path_factory.mktemp(f"kb-{engine}")
    kb = KnowledgeBase.build(small_passages(), path, engine=engine, threads=1)
    yield kb
    kb.close()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own MEDGYM_CACHE_DIR, so no test touches the user's knowledge base."""
    monkeypatch.setenv("MEDGYM_CACHE_DIR", str(tmp_path / "cache"))
