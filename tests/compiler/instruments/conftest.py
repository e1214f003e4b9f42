"""Shared by the instrument test modules: the shipped build's instrument functions."""
import pytest

from medgym.runtime.build import Build


@pytest.fixture(scope="module")
def fn(request, shipped_build):
    """The shipped instruments by name; the module's `NAMES` (when it has one) must all be there."""
    instruments = Build.open(shipped_build).instruments
    missing = [name for name in getattr(request.module, "NAMES", ()) if name not in instruments]
    assert not missing, missing
    return instruments
