"""The CLI starts without the heavy imports: `import medgym.cli` (what `medgym --help` and the first half of
`medgym validate` pay) imports neither gymnasium, numpy nor the runtime's env, and the shipped envs still
register with gymnasium once it is imported, before or after medgym."""
from __future__ import annotations

import json
import subprocess
import sys


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_imports_neither_gymnasium_nor_the_runtime():
    loaded = _run("import json, sys, medgym.cli\n"
                  "print(json.dumps({m: m in sys.modules for m in ('gymnasium', 'numpy', 'medgym.runtime.env', "
                  "'medgym.runtime.build', 'medgym.compiler.pipeline')}))")
    assert loaded == {"gymnasium": False, "numpy": False, "medgym.runtime.env": False,
                      "medgym.runtime.build": False, "medgym.compiler.pipeline": False}


def test_envs_register_when_gymnasium_is_imported_after_medgym():
    found = _run("import json, sys, medgym\nbefore = 'gymnasium' in sys.modules\nimport gymnasium\n"
                 "print(json.dumps({'before': before, 'ids': sorted(i for i in gymnasium.registry "
                 "if i.startswith('medgym/'))}))")
    assert found["before"] is False
    assert "medgym/Triage-v1" in found["ids"] and "medgym/ClinicalDiagnosis-v1" in found["ids"]


def test_envs_register_when_gymnasium_was_imported_first():
    found = _run("import json, gymnasium, medgym\n"
                 "print(json.dumps(sorted(i for i in gymnasium.registry if i.startswith('medgym/'))))")
    assert "medgym/Triage-v1" in found


def test_the_runtime_package_still_exports_its_names_on_first_use():
    found = _run("import json, sys, medgym.runtime as r\nlight = 'medgym.runtime.env' not in sys.modules\n"
                 "print(json.dumps([light, r.make_env.__module__, r.Build.__name__, 'MedEnv' in dir(r)]))")
    assert found == [True, "medgym.runtime.env", "Build", True]
