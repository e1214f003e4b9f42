"""Reuse in the spec language: domain defaults, `extends:`, named reference steps, shared functions, tables
called as functions, shared jinja macros and partials. Each construct compiles to the same tasks as the
spelled-out family, and each misuse is an error at its file:line:col."""
import json
import shutil
from pathlib import Path

import pytest

from medgym.compiler.pipeline import check_specs, compile_specs

MINI = Path(__file__).parent / "fixtures" / "mini"
CLINIC = Path("domains") / "clinic"
CAP = CLINIC / "tasks" / "cap.yaml"
BASE = CLINIC / "tasks" / "cap_base.yaml"
DEFAULTS = CLINIC / "defaults.yaml"
LIB = Path("lib") / "clinic.yaml"
MACROS = Path("lib") / "words.j2"

LIB_TEXT = """\
module: clinic
functions:
  disposition_for:
    description: Where a CURB-65 total is treated.
    params: {score: int}
    returns: text
    body: "if score <= 1 then 'home' elif score == 2 then 'ward' else 'icu'"
"""
MACRO_TEXT = """\
{% macro days(n) -%}
{{ n }} days
{%- endmacro %}
"""
DEFAULTS_TEXT = """\
partials:
  intro: "{{ case.age }}-year-old {{ case.sex }}"
steps:
  vitals: {get_vital_signs: {patient_id: "=case.id"}}
  submit: {submit_answer: {curb65: "=truth.curb65"}}
"""
BASE_TEXT = """\
family: cap_base
abstract: true
domain: clinic
title: What every pneumonia family shares
let:
  onset_days: {int: [2, 7]}
truth:
  curb65: "=curb65(confusion=case.confused, bun=case.labs.bun, respiratory_rate=case.vitals.rr, sbp=case.vitals.sbp, dbp=case.vitals.dbp, age=case.age).total"
  disposition: "=disposition_for(truth.curb65)"
rubric:
  accuracy: {curb65: exact, disposition: exact}
  coherence:
    - id: score_matches_calculator
      when: called("calculate_curb65")
      check: answer.curb65 == result("calculate_curb65").total
"""
FAMILY_TEXT = """\
family: cap_disposition
extends: cap_base
version: 1
domain: clinic
title: Community-acquired pneumonia disposition
count: 40
seed: 3
scenarios:
  mild:
    weight: 2
    case: {age: {int: [18, 60]}}
    history: {onset: "The cough started {{ onset_days }} days ago."}
  severe:
    case:
      age: {int: [66, 95]}
      confused: {bernoulli: 0.5}
      vitals.rr: {normal: [31, 3], clip: [24, 44]}
      vitals.sbp: {normal: [86, 6], clip: [70, 99]}
      labs.bun: {normal: [32, 6], clip: [20, 60]}
    history:
      onset: ['{% from "words.j2" import days %}It began {{ days(onset_days) }} ago.', "About {{ onset_days }} days."]
      confusion: "My daughter says I have been muddled."
ticket: |
  {% include "intro" %} with cough and fever{{ ', and new confusion' if case.confused else '' }}. Patient id {{ case.id }}.
reference:
  - vitals
  - order_labs: {patient_id: "=case.id", tests: [bun]}
  - get_lab_results: {patient_id: "=case.id"}
  - calculate_curb65: {confusion: "=case.confused", bun: "=case.labs.bun", respiratory_rate: "=case.vitals.rr", sbp: "=case.vitals.sbp", dbp: "=case.vitals.dbp", age: "=case.age"}
  - submit: {disposition: "=truth.disposition"}
rubric:
  process:
    require: [get_vital_signs, {tool: order_labs, args: {tests: bun}}]
    before_answer: [calculate_curb65]
    order: [[order_labs, calculate_curb65]]
  safety:
    - id: icu_patient_home
      when: answer.disposition == home and truth.curb65 >= 3
      severity: critical
      category: missed_emergency
      message: A CURB-65 >= 3 patient was sent home.
"""


def reused(tmp_path: Path, **replace: str) -> Path:
    """The mini specs with cap.yaml rewritten through every reuse construct; `replace` maps a file key
    (family, base, defaults, lib, macros) to (old, new) text edits."""
    root = tmp_path / "specs"
    shutil.copytree(MINI, root)
    (root / "lib").mkdir()
    texts = {"family": FAMILY_TEXT, "base": BASE_TEXT, "defaults": DEFAULTS_TEXT, "lib": LIB_TEXT, "macros": MACRO_TEXT}
    paths = {"family": CAP, "base": BASE, "defaults": DEFAULTS, "lib": LIB, "macros": MACROS}
    for key, edit in replace.items():
        old, new = edit
        assert old in texts[key], (key, old)
        texts[key] = texts[key].replace(old, new, 1)
    for key, text in texts.items():
        (root / paths[key]).write_text(text)
    return root


def tasks_of(build: Path, family: str) -> dict:
    out = {}
    for split in ("train", "val", "test"):
        for line in (build / "clinic" / "tasks" / f"{split}.jsonl").read_text().splitlines():
            task = json.loads(line)
            if task["family"] == family:
                out[task["task_id"]] = task
    return out


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_reuse_constructs_compile_to_the_spelled_out_tasks(tmp_path, mini_build):
    out = tmp_path / "build"
    compile_specs(reused(tmp_path), out, gate=None)
    before, after = tasks_of(mini_build, "cap_disposition"), tasks_of(out, "cap_disposition")
    assert set(before) == set(after) and len(after) == 40
    for task_id, task in before.items():
        for key in ("ticket", "history", "case", "truth", "vars", "reference", "split", "scenario"):
            assert after[task_id][key] == task[key], (task_id, key)
        assert after[task_id]["rubric"]["process"] == task["rubric"]["process"]
        assert [r["id"] for r in after[task_id]["rubric"]["coherence"]] == ["score_matches_calculator"]
    assert "cap_base" not in json.loads((out / "clinic" / "domain.json").read_text())["families"]


def test_a_compiled_family_lists_the_files_it_depends_on(tmp_path):
    from medgym.compiler import library
    from medgym.compiler.domain import build_context
    from medgym.compiler.families import compile_family
    from medgym.compiler.load import load_tree
    from medgym.compiler.pipeline import _instruments, _tables

    root = reused(tmp_path)
    tree = load_tree(root)
    errors = list(tree.errors)
    instruments, tables = _instruments(tree, errors), _tables(tree, errors)
    table_fns = library.table_functions(list(tree.tables) + list(tree.domains["clinic"].tables))
    shared = {"functions": library.check_functions(tree.modules, {k: v.signature for k, v in instruments.items()},
                                                   table_fns, errors), "tables": table_fns, "templates": tree.templates}
    ctx = build_context("clinic", tree.domains["clinic"], instruments, tables, errors, shared)
    loaded = next(f for f in tree.domains["clinic"].families if f.model.family == "cap_disposition")
    fam = compile_family(loaded, ctx, errors)
    assert errors == []
    assert [Path(p).relative_to(root) for p in fam.sources] == [CAP, BASE, DEFAULTS, LIB, MACROS]


def test_a_table_is_a_function_of_its_key(tmp_path):
    root = reused(tmp_path, family=("seed: 3\n", "seed: 3\nlet:\n  regimen: '=cap_antibiotics(\"moderate\").regimen'\n"))
    out = tmp_path / "build"
    compile_specs(root, out, gate=None)
    assert {t["vars"]["regimen"] for t in tasks_of(out, "cap_disposition").values()} == {"amoxicillin plus clarithromycin"}
    bad = reused(tmp_path / "bad", family=("seed: 3\n", "seed: 3\nlet:\n  regimen: '=cap_antibiotics(2).regimen'\n"))
    errors = [str(e) for e in check_specs(bad)]
    assert any(f"{CAP}:9:" in e and "the key of table cap_antibiotics" in e for e in errors), errors


# ---------------------------------------------------------------- errors, each at its file:line:col
def located(root: Path, path: Path, line: int, message: str) -> None:
    errors = [str(e) for e in check_specs(root)]
    assert any(e.startswith(f"{root / path}:{line}:") and message in e for e in errors), errors


def test_unknown_base_is_located(tmp_path):
    root = reused(tmp_path, family=("extends: cap_base", "extends: cap_bsae"))
    located(root, CAP, 2, "unknown base family 'cap_bsae' (did you mean 'cap_base'?)")


def test_a_family_may_extend_a_list_of_bases(tmp_path, mini_build):
    """`extends: [a, b]` applies a (with its own bases), then b; the tasks are the spelled-out ones."""
    root = reused(tmp_path, family=("extends: cap_base", "extends: [cap_base, cap_onset]"),
                  base=("let:\n  onset_days: {int: [2, 7]}\n", ""))
    (root / CLINIC / "tasks" / "cap_onset.yaml").write_text(
        "family: cap_onset\nabstract: true\ndomain: clinic\ntitle: The onset\nlet:\n  onset_days: {int: [2, 7]}\n")
    out = tmp_path / "build"
    compile_specs(root, out, gate=None)
    before, after = tasks_of(mini_build, "cap_disposition"), tasks_of(out, "cap_disposition")
    assert set(before) == set(after)
    for task_id, task in before.items():
        for key in ("ticket", "history", "case", "truth", "vars", "reference"):
            assert after[task_id][key] == task[key], (task_id, key)
    bad = reused(tmp_path / "bad", family=("extends: cap_base", "extends: [cap_base, cap_bsae]"))
    located(bad, CAP, 2, "unknown base family 'cap_bsae'")


def test_bases_in_a_cycle_are_an_error(tmp_path):
    root = reused(tmp_path, base=("abstract: true\n", "abstract: true\nextends: cap_disposition\n"))
    located(root, BASE, 3, "families extend each other in a cycle")


def test_an_override_that_changes_a_type_is_an_error(tmp_path):
    root = reused(tmp_path, family=("seed: 3\n", "seed: 3\nlet:\n  onset_days: \"=case.sex\"\n"))
    errors = [str(e) for e in check_specs(root)]
    assert any(e.startswith(f"{root / CAP}:9:") and "let 'onset_days' is enum(female, male), but it overrides int"
               in e and str(root / BASE) in e for e in errors), errors


def test_an_override_of_the_same_type_is_fine(tmp_path):
    root = reused(tmp_path, family=("seed: 3\n", "seed: 3\nlet:\n  onset_days: {int: [3, 9]}\n"))
    out = tmp_path / "build"
    compile_specs(root, out, gate=None)
    assert {t["vars"]["onset_days"] for t in tasks_of(out, "cap_disposition").values()} <= set(range(3, 10))


def test_an_error_in_an_inherited_value_points_at_the_file_that_wrote_it(tmp_path):
    root = reused(tmp_path, base=("curb65(confusion=case.confused", "curb65(confusion=case.confusd"))
    located(root, BASE, line_of(BASE_TEXT, "curb65: "), "unknown field 'case.confusd'")


def test_unknown_reference_step(tmp_path):
    root = reused(tmp_path, family=("  - vitals\n", "  - vital\n"))
    located(root, CAP, line_of(FAMILY_TEXT, "  - vitals"), "unknown reference step 'vital' (did you mean 'vitals'?)")


SEQUENCE = ("  submit:", "  labs: [{order_labs: {patient_id: \"=case.id\", tests: [bun]}}, results]\n"
                         "  results: {get_lab_results: {patient_id: \"=case.id\"}}\n  submit:")
SPLICED = ("  - order_labs: {patient_id: \"=case.id\", tests: [bun]}\n  - get_lab_results: {patient_id: \"=case.id\"}\n",
           "  - labs\n")


def test_a_step_sequence_is_its_steps_in_place(tmp_path, mini_build):
    """A step that is a list (calls and step names) stands for those steps, where the family names it."""
    out = tmp_path / "build"
    compile_specs(reused(tmp_path, defaults=SEQUENCE, family=SPLICED), out, gate=None)
    before, after = tasks_of(mini_build, "cap_disposition"), tasks_of(out, "cap_disposition")
    assert set(before) == set(after)
    for task_id, task in before.items():
        assert after[task_id]["reference"] == task["reference"], task_id


def test_a_step_sequence_takes_no_arguments_and_holds_no_sequence(tmp_path):
    root = reused(tmp_path, defaults=SEQUENCE, family=(SPLICED[0], "  - labs: {tests: [bun]}\n"))
    located(root, CAP, line_of(FAMILY_TEXT, "order_labs: {patient_id"), "a step sequence takes no arguments")
    nested = reused(tmp_path / "nested", defaults=(SEQUENCE[0], SEQUENCE[1].replace("results]", "results, labs]")),
                    family=SPLICED)
    located(nested, DEFAULTS, line_of(DEFAULTS_TEXT, "  submit:"), "step sequence 'labs' names the sequence 'labs'")
    unknown = reused(tmp_path / "unknown", defaults=(SEQUENCE[0], SEQUENCE[1].replace("results]", "result]")),
                     family=SPLICED)
    located(unknown, DEFAULTS, line_of(DEFAULTS_TEXT, "  submit:"), "unknown reference step 'result'")


def test_null_removes_and_drop_removes_an_inherited_rule(tmp_path):
    root = reused(tmp_path, family=("rubric:\n", "rubric:\n  coherence:\n    - {drop: score_matches_calculator}\n"))
    out = tmp_path / "build"
    compile_specs(root, out, gate=None)
    assert all(t["rubric"]["coherence"] == [] for t in tasks_of(out, "cap_disposition").values())
    bad = reused(tmp_path / "bad", family=("rubric:\n", "rubric:\n  coherence:\n    - {drop: score_matches}\n"))
    located(bad, CAP, line_of(FAMILY_TEXT, "rubric:") + 2, "no inherited rule 'score_matches' to drop")


def test_process_requirements_add_up(tmp_path):
    root = reused(tmp_path, base=("rubric:\n", "rubric:\n  process:\n    require: [get_vital_signs, get_lab_results]\n"))
    out = tmp_path / "build"
    compile_specs(root, out, gate=None)
    for task in tasks_of(out, "cap_disposition").values():
        assert [r["tool"] for r in task["rubric"]["process"]["require"]] == ["get_vital_signs", "get_lab_results", "order_labs"]


def test_a_function_body_is_checked_once_in_its_module(tmp_path):
    root = reused(tmp_path, lib=("then 'home'", "then hom"))
    located(root, LIB, 7, "unknown name 'hom'")


def test_a_function_result_must_match_its_declared_type(tmp_path):
    root = reused(tmp_path, lib=("returns: text", "returns: int"))
    located(root, LIB, 6, "function 'disposition_for' returns text, but it declares int")


def test_a_function_called_with_the_wrong_type_is_an_error_at_the_call(tmp_path):
    root = reused(tmp_path, base=("disposition_for(truth.curb65)", "disposition_for(case.sex)"))
    located(root, BASE, line_of(BASE_TEXT, "disposition_for"), "argument 'score' of disposition_for()")


def test_a_function_called_with_an_unknown_parameter(tmp_path):
    root = reused(tmp_path, base=("disposition_for(truth.curb65)", "disposition_for(scor = truth.curb65)"))
    located(root, BASE, line_of(BASE_TEXT, "disposition_for"), "disposition_for() has no parameter 'scor'")


def test_a_function_may_not_take_an_instrument_name(tmp_path):
    root = reused(tmp_path, lib=("  disposition_for:\n", "  curb65:\n"))
    located(root, LIB, 3, "function 'curb65' has the name of a built-in, an instrument or a table")


def test_a_macro_file_holds_no_loop(tmp_path):
    root = reused(tmp_path, macros=("{{ n }} days", "{% for d in [1] %}{{ n }}{% endfor %} days"))
    located(root, MACROS, 2, "loops are not allowed in shared macros and partials")


def test_a_macro_may_not_call_a_macro(tmp_path):
    root = reused(tmp_path, macros=("{{ n }} days", "{{ days(n) }} days"))
    located(root, MACROS, 2, "a macro may not call a macro")


def test_an_unknown_template_is_located_in_the_text(tmp_path):
    root = reused(tmp_path, family=('{% include "intro" %}', '{% include "intr" %}'))
    located(root, CAP, line_of(FAMILY_TEXT, "ticket: |") + 1, "unknown template 'intr' (did you mean 'intro'?)")


def test_macros_are_imported_without_context(tmp_path):
    root = reused(tmp_path, family=('import days %}', 'import days with context %}'))
    located(root, CAP, line_of(FAMILY_TEXT, "words.j2"), "import macros without context")


def test_a_partial_holds_no_macro(tmp_path):
    root = reused(tmp_path, defaults=('intro: "{{ case.age }}', 'intro: "{% macro m() %}x{% endmacro %}{{ case.age }}'))
    located(root, DEFAULTS, 2, "macros belong in a macro file")


@pytest.mark.parametrize("specs", ["specs"])
def test_shipped_domains_use_the_reuse_features(specs):
    root = Path(__file__).resolve().parents[2] / specs
    assert (root / "domains" / "triage" / "defaults.yaml").exists()
    assert (root / "domains" / "clinical_diagnosis" / "defaults.yaml").exists()
    assert "disposition_for(" in (root / "domains" / "triage" / "defaults.yaml").read_text()


def test_spec_files_get_their_schema_by_path_not_by_a_comment():
    """.vscode/settings.json associates every shipped spec file with one schema that `medgym schema` writes."""
    from pathlib import PurePosixPath

    from medgym.dsl.models import json_schemas

    repo = Path(__file__).resolve().parents[2]
    patterns = json.loads((repo / ".vscode" / "settings.json").read_text())["yaml.schemas"]
    kinds = json_schemas()
    assert {Path(schema).stem for schema in patterns} <= set(kinds)
    for path in sorted((repo / "specs").rglob("*.yaml")):
        rel = PurePosixPath(path.relative_to(repo).as_posix())
        matched = [schema for schema, globs in patterns.items() if any(rel.match(g) for g in globs)]
        assert len(matched) == 1, (rel, matched)
        assert "yaml-language-server" not in path.read_text().splitlines()[0], rel
