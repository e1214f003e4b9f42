"""docs/instruments.md is the catalogue rendered from the shipped build, so it cannot drift from the specs."""
from pathlib import Path

from typer.testing import CliRunner

from medgym.catalogue import instrument_catalogue
from medgym.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "instruments.md"


def test_the_catalogue_is_up_to_date(shipped_build):
    assert DOC.read_text(encoding="utf-8") == instrument_catalogue(shipped_build), \
        "run `medgym docs instruments` and commit docs/instruments.md"


def test_the_catalogue_lists_every_instrument_with_sources_inputs_and_use(shipped_build):
    import json

    text = instrument_catalogue(shipped_build)
    meta = json.loads((shipped_build / "instruments.json").read_text())
    for name, spec in meta.items():
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert spec["sources"][0][:40] in section
        for param in spec["inputs"]:
            assert f"| `{param}` |" in section
        assert "Used in: " in section
        assert len(spec["variant"]) >= 80, f"{name}: state the exact variant in the file's header comment"
        assert spec["variant"].splitlines()[0] in section
    assert "tool `calculate_esi`" in text.split("\n## esi\n", 1)[1].split("\n## ", 1)[0]


def test_check_reports_a_stale_file(shipped_build, tmp_path):
    stale = tmp_path / "instruments.md"
    stale.write_text("# old\n")
    result = CliRunner().invoke(app, ["docs", "instruments", "--build", str(shipped_build), "--out", str(stale), "--check"])
    assert result.exit_code == 1 and "out of date" in result.output
    result = CliRunner().invoke(app, ["docs", "instruments", "--build", str(shipped_build), "--out", str(stale)])
    assert result.exit_code == 0 and stale.read_text() == instrument_catalogue(shipped_build)
