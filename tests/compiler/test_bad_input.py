"""Bad spec input of every kind ends as located `path:line:col` errors: never a traceback, an internal error
or a hang (invalid bytes, YAML alias bombs and deep nesting, non-finite numbers, faults inside block scalars,
broken jinja templates), and `medgym validate` reports the errors of every stage at once."""
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgym.cli import app
from medgym.compiler.pipeline import check_specs, compile_specs
from medgym.dsl.errors import SpecError, SpecErrors, spec_lines

ROOT = Path(__file__).resolve().parents[2]
MINI = Path(__file__).parent / "fixtures" / "mini"
CAP = "domains/clinic/tasks/cap.yaml"
ELDER = "domains/clinic/cases/confused_elder.yaml"
SCORE = "instruments/curb65.score"
POLICY = "domains/clinic/policy.md"
DISPOSITION = "  disposition: \"=if truth.curb65 <= 1 then 'home' elif truth.curb65 == 2 then 'ward' else 'icu'\"\n"


def copy_mini(tmp_path: Path) -> Path:
    root = tmp_path / "specs"
    shutil.copytree(MINI, root)
    return root


def edit(root: Path, file: str, old: bytes | str, new: bytes | str) -> Path:
    path = root / file
    data = path.read_bytes()
    old, new = (x.encode() if isinstance(x, str) else x for x in (old, new))
    assert old in data, f"fixture text not found: {old!r}"
    path.write_bytes(data.replace(old, new, 1))
    return path


def shown(errors, root: Path) -> list[str]:
    return [str(e).replace(str(root) + "/", "") for e in errors]


def errors_for(tmp_path, file, old, new) -> tuple[list[str], Path]:
    root = copy_mini(tmp_path)
    edit(root, file, old, new)
    return shown(check_specs(root), root), root


def assert_within_files(errors):
    """Every error's line and column exist in its file (columns never past the end of their line)."""
    for error in errors:
        if error.pos.line <= 0:
            continue
        lines = spec_lines(Path(error.pos.path).read_text(encoding="utf-8", errors="replace"))
        assert 1 <= error.pos.line <= len(lines), str(error)
        assert 1 <= error.pos.col <= max(len(lines[error.pos.line - 1]), 1), str(error)


# ---------------------------------------------------------------- bytes that are not text
@pytest.mark.parametrize("file, before, after, expected", [
    (CAP, b"title: ", b"Community", "4:8"),
    (SCORE, b'  source "', b"Lim WS", "2:11"),
    (POLICY, b"CURB-65: 0-1 ", b"home", "1:23"),
])
@pytest.mark.parametrize("bad, message", [(b"\x80", "invalid UTF-8 byte 0x80"), (b"\xc3(", "invalid UTF-8 byte 0xc3"),
                                          (b"\x00", "control character U+0000")])
def test_undecodable_or_nul_bytes_are_located(tmp_path, file, before, after, expected, bad, message):
    errors, _ = errors_for(tmp_path, file, before + after, before + bad + after)
    assert any(e.startswith(f"{file}:{expected}: {message}") for e in errors), errors


def test_invalid_utf8_through_the_cli_is_one_located_line(tmp_path):
    root = copy_mini(tmp_path)
    edit(root, CAP, b"title: Community", b"title: \x80Community")
    result = CliRunner().invoke(app, ["validate", str(root), "--no-gate"])
    assert result.exit_code == 1
    out = result.output.replace(str(root) + "/", "")
    assert f"{CAP}:4:8: invalid UTF-8 byte 0x80 (spec files are UTF-8 text)" in out
    assert "internal error" not in out and "Traceback" not in out


# ---------------------------------------------------------------- YAML structure
BOMB = "".join(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 11))


@pytest.mark.parametrize("name, old, new, expected", [
    ("alias_bomb", "let:\n", "let:\n  a0: &a0 [1]\n" + BOMB, f"{CAP}:23:7: YAML anchors and aliases"),
    ("self_alias", "let:\n", "let:\n  self: &s [*s]\n", f"{CAP}:23:9: YAML anchors and aliases"),
    ("alias_only", "seed: 3\n", "seed: *x\n", f"{CAP}:6:7: YAML anchors and aliases"),
    ("flow_nesting", "let:\n", "let:\n  deep: " + "[" * 5000 + "]" * 5000 + "\n", f"{CAP}:23:"),
    ("block_nesting", "let:\n", "let:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60)) + "  " * 60 + "v\n",
     f"{CAP}:"),
    ("merge_key", "let:\n", "let:\n  <<: {x: 1}\n", f"{CAP}:23:3: YAML merge keys (<<) are not supported"),
    ("two_documents", "seed: 3\n", "seed: 3\n---\nseed: 4\n", f"{CAP}:7:1: a spec file holds one YAML document"),
    ("binary_tag", "let:\n", "let:\n  b: !!binary aGVsbG8=\n", f"{CAP}:23:6: YAML tag 'tag:yaml.org,2002:binary'"),
])
def test_yaml_constructs_that_could_explode_are_refused_located(tmp_path, name, old, new, expected):
    errors, _ = errors_for(tmp_path, CAP, old, new)
    assert any(e.startswith(expected) for e in errors), errors
    if "nesting" in name:
        assert any("nested more than" in e for e in errors), errors


@pytest.mark.parametrize("expr", ["-" * 300 + "1", "1 + " * 300 + "1", "not " * 300 + "true", "1+" * 1500 + "1"],
                         ids=["unary", "chain", "not", "long_chain"])
def test_deeply_nested_expressions_are_refused_located(tmp_path, expr):
    """The checker and code generator recurse, and Python refuses generated code 200 parentheses deep."""
    errors, _ = errors_for(tmp_path, CAP, "let:\n", f'let:\n  deep: "={expr}"\n')
    assert any(e.startswith(f"{CAP}:23:") and "nested" in e for e in errors), errors


def test_a_clip_bound_that_yaml_reads_as_text_is_a_located_error(tmp_path):
    """YAML 1.1 reads `1e308` (no dot) as text; comparing it with a number used to raise TypeError."""
    errors, _ = errors_for(tmp_path, CAP, "clip: [24, 44]", "clip: [24, 1e308]")
    assert any(e.startswith(f"{CAP}:16:42: clip is [low, high], two numbers") for e in errors), errors


# ---------------------------------------------------------------- non-finite numbers
@pytest.mark.parametrize("file, old, new, expected", [
    (CAP, "onset_days: {int: [2, 7]}", "onset_days: {normal: [-.inf, 7]}", f"{CAP}:23:25: '-.inf' is not a finite number"),
    (CAP, "weight: 2", "weight: 1e999", f"{CAP}:9:13: '1e999' is not a finite number"),
    (CAP, "weight: 2", "weight: \"1e999\"", f"{CAP}:9:13: scenarios.mild.weight: Input should be a finite number"),
    (CAP, "clip: [24, 44]", "clip: [24, .inf]", f"{CAP}:16:47: '.inf' is not a finite number"),
    (CAP, "accuracy: {curb65: exact", "accuracy: {curb65: {match: numeric, tolerance: .nan}",
     f"{CAP}:36:50: '.nan' is not a finite number"),
    (CAP, "onset_days: {int: [2, 7]}", "onset_days: \"=1e999 * 2\"", f"{CAP}:23:17: 1e999 is not a finite number"),
    ("domains/clinic/tables/antibiotics.yaml", "{severity: low,", "{severity: 1e999,",
     "domains/clinic/tables/antibiotics.yaml:7:16: '1e999' is not a finite number"),
    (SCORE, "bun > 19 ", "bun > 1e999", f"{SCORE}:12:11: 1e999 is not a finite number"),
])
def test_non_finite_numbers_are_refused_where_they_are_read(tmp_path, file, old, new, expected):
    errors, _ = errors_for(tmp_path, file, old, new)
    assert any(e.startswith(expected) for e in errors), errors


# ---------------------------------------------------------------- positions inside block scalars
@pytest.mark.parametrize("style", [">-", "|"])
def test_a_fault_on_the_third_line_of_a_block_expression_is_reported_there(tmp_path, style):
    block = (f"  disposition: {style}\n"
             "    =if truth.curb65 <= 1\n"
             "    then 'home' elif truth.curb65 == 2\n"
             "    then 'ward' elsee 'icu'\n")
    root = copy_mini(tmp_path)
    path = edit(root, CAP, DISPOSITION, block)
    errors = check_specs(root)
    line = path.read_text().splitlines().index("    then 'ward' elsee 'icu'") + 1
    assert any(str(e).startswith(f"{path}:{line}:23: unexpected \"'icu'\"") for e in errors), shown(errors, root)
    assert_within_files(errors)


def test_a_type_error_inside_a_double_quoted_multiline_expression_is_located(tmp_path):
    root = copy_mini(tmp_path)
    path = edit(root, CAP, DISPOSITION, "  disposition: \"=if truth.curb65 <= 1\n    then 'home' elif truth.curb65 == 2\n"
                                        "    then 'ward' else \\t truth.curb66\"\n")
    errors = check_specs(root)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "truth.curb66" in t)
    assert any(str(e).startswith(f"{path}:{line}:25: unknown field 'truth.curb66'") for e in errors), shown(errors, root)
    assert_within_files(errors)


# ---------------------------------------------------------------- jinja templates
def test_a_broken_jinja_tag_in_a_history_answer_is_a_located_error(tmp_path):
    broken = "{% if onset_days > 3 %}Days.{g/dL else %}Hours.{% endif %}"
    root = copy_mini(tmp_path)
    path = edit(root, CAP, "The cough started {{ onset_days }} days ago.", broken)
    errors = [e for e in check_specs(root) if "history answer 'onset'" in e.message]
    assert errors, "the broken tag passed"
    line = path.read_text().splitlines()[errors[0].pos.line - 1]
    assert line[errors[0].pos.col - 1:].startswith("%}Hours."), (errors[0], line)
    assert "outside a template tag" in errors[0].message


def test_a_history_answer_that_renders_empty_is_an_error(tmp_path):
    errors, _ = errors_for(tmp_path, CAP, "The cough started {{ onset_days }} days ago.",
                           "{% if onset_days > 100 %}Long ago.{% endif %}")
    assert any(e.startswith(f"{CAP}:11:23: history answer 'onset' renders empty for task ") for e in errors), errors


def test_a_template_syntax_error_in_a_block_ticket_points_at_its_line(tmp_path):
    errors, _ = errors_for(tmp_path, CAP, "ticket: |\n  {{ case.age }}-year-old",
                           "ticket: |\n  {{ case.age }}-year-old\n  {% endif %}")
    assert any(e.startswith(f"{CAP}:26:3: template error in the ticket: Encountered unknown tag 'endif'") for e in errors), errors


def test_a_template_that_would_build_a_huge_text_is_refused(tmp_path):
    errors, _ = errors_for(tmp_path, CAP, "The cough started {{ onset_days }} days ago.", "{{ 'x' * 10 ** 9 }}")
    assert any(e.startswith(f"{CAP}:11:23: history answer 'onset' cannot be rendered") and "SecurityError" in e
               for e in errors), errors


# ---------------------------------------------------------------- plain-text diagnostics
def test_cli_prints_line_100_as_plain_text(tmp_path):
    """rich would print `cap.yaml:100:1:` as `cap.yaml💯1:` (its emoji code :100:)."""
    root = copy_mini(tmp_path)
    path = root / CAP
    path.write_text("# padding\n" * 94 + path.read_text().replace("count: 40\n", "count: 40\ncount: 41\n", 1))
    result = CliRunner().invoke(app, ["validate", str(root), "--no-gate"])
    assert result.exit_code == 1
    out = result.output.replace(str(root) + "/", "")
    assert f"{CAP}:100:1: duplicate key 'count' (first defined at line 99)" in out
    assert "\N{HUNDRED POINTS SYMBOL}" not in out


def test_cli_does_not_read_diagnostics_as_markup(tmp_path):
    root = copy_mini(tmp_path)
    edit(root, CAP, "vitals.rr: {normal: [31, 3]", "vitals.rr[bold]: {normal: [31, 3]")
    result = CliRunner().invoke(app, ["validate", str(root), "--no-gate"])
    assert result.exit_code == 1
    assert "unknown record field 'vitals.rr[bold]'" in result.output


# ---------------------------------------------------------------- every stage reports
def test_validate_reports_errors_of_every_stage_together(tmp_path):
    """A file that does not load does not hide the type errors of the files that did."""
    root = copy_mini(tmp_path)
    edit(root, ELDER, "title: A confused", "title: [A confused")  # a YAML error in one family file
    edit(root, CAP, "vitals.rr: {normal: [31, 3]", "vitals.rrr: {normal: [31, 3]")  # a check error in another
    errors = check_specs(root)
    text = shown(errors, root)
    assert any(e.startswith(f"{ELDER}:") and "invalid YAML" in e for e in text), text
    assert any(e.startswith(f"{CAP}:16:7: unknown record field 'vitals.rrr'") for e in text), text
    assert [(e.pos, e.message) for e in errors] == sorted({(e.pos, e.message) for e in errors}), "not sorted and unique"
    with pytest.raises(SpecErrors) as info:
        compile_specs(root, tmp_path / "build", force=True)
    assert len(info.value.errors) == len(errors)
    assert not (tmp_path / "build").exists()


def test_a_domain_whose_tools_do_not_load_reports_no_echo_errors(tmp_path):
    """tools.yaml broken: its error is reported, not an "unknown tool" for every reference step."""
    root = copy_mini(tmp_path)
    edit(root, "domains/clinic/tools.yaml", "- name: get_vital_signs", "- name: [get_vital_signs")
    text = shown(check_specs(root), root)
    assert any(e.startswith("domains/clinic/tools.yaml:") for e in text), text
    assert not any("unknown tool" in e for e in text), text


# ---------------------------------------------------------------- seeded mutations
def _fuzz_module():
    spec = importlib.util.spec_from_file_location("validate_fuzz", ROOT / "benchmarks" / "validate_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_seeded_mutations_give_only_located_errors(tmp_path):
    fuzz = _fuzz_module()
    root = copy_mini(tmp_path)
    kinds = set()
    for mutation in fuzz.mutations(root, 30, seed=8):
        target = root / mutation.file
        original = target.read_bytes()
        target.write_bytes(mutation.data)
        try:
            errors = check_specs(root)  # anything but SpecErrors escaping fails the test here
            assert all(isinstance(e, SpecError) and e.pos.path for e in errors)
            assert_within_files(errors)  # read while the mutated file is in place
        finally:
            target.write_bytes(original)
        kinds.add(mutation.kind)
    assert kinds == {m.__name__ for m in fuzz.MUTATIONS}
