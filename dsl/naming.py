"""Names derived from spec names, shared by the compiler, the runtime and registration."""
from __future__ import annotations


def class_stem(domain: str) -> str:
    """`clinical_diagnosis` -> `ClinicalDiagnosis`."""
    return "".join(part.capitalize() for part in domain.split("_"))


def env_id(domain: str, version: int = 0) -> str:
    """The Gymnasium id of a domain's env, versioned by the domain (bumped when its reward semantics change):
    `medgym/ClinicalDiagnosis-v1`."""
    return f"medgym/{class_stem(domain)}-v{version}"
