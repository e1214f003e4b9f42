"""The shipped domains, read from the spec folder, so a test parametrised over them covers a new domain the
moment its folder lands."""
from pathlib import Path

SPECS = Path(__file__).resolve().parents[1] / "specs"
SHIPPED_DOMAINS = sorted(path.parent.name for path in (SPECS / "domains").glob("*/domain.yaml"))
