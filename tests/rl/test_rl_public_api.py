"""The curated public list of medgym.rl, and its import in a fresh interpreter."""
import subprocess
import sys

import medgym.rl as rl


def test_every_public_name_exists_and_is_documented():
    assert len(rl.__all__) == len(set(rl.__all__))
    for name in rl.__all__:
        obj = getattr(rl, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name


def test_the_core_imports_alone_without_the_trainer_stack():
    code = (
        "import sys, medgym.rl; "
        "bad = [m for m in ('transformers', 'medgym.compiler') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
