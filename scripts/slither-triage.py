#!/usr/bin/env python3
"""Compares slither's high/medium findings with the checked-in triage file.

Usage: slither-triage.py RESULTS.json TRIAGE.json

Every high or medium finding must be in TRIAGE.json (fixed findings are not: they no longer
appear). A finding is matched by its fingerprint: the detector name and slither's description
with the source locations and parameter lists taken out, so moving code does not invalidate the triage, while
changing a flagged expression does (it must be looked at again). Exits 1 on any new finding and
prints the entries to add, each to be explained in docs/slither.md. Triaged findings that no
longer appear are reported so the file can be pruned, but do not fail the run.
"""

import json
import re
import sys

IMPACTS = ("High", "Medium")
# " (contracts/exits/Foo.sol#12-34)" and the like; signatures' own parentheses never hold ".sol#".
LOCATION = re.compile(r"\s*\([^()]*\.sol#\d+(?:-\d+)?\)")
# "f(uint256,address)" and "g(a,b)": parameter and argument lists, so that adding a parameter to
# a flagged function does not ask for the same finding to be triaged again.
PARAMETERS = re.compile(r"(?<=\w)\([^()\s]*\)")


def fingerprint(finding):
    text = PARAMETERS.sub("()", LOCATION.sub("", finding["description"]))
    return " ".join(text.split())


def main(results_path, triage_path):
    with open(results_path, encoding="utf8") as f:
        results = json.load(f)
    if not results.get("success", False):
        print(f"slither failed: {results.get('error')}", file=sys.stderr)
        return 2
    with open(triage_path, encoding="utf8") as f:
        triage = json.load(f)
    known = {(t["check"], t["fingerprint"]): t for t in triage["findings"]}

    found = set()
    new = []
    detectors = results.get("results", {}).get("detectors", [])
    for finding in detectors:
        if finding["impact"] not in IMPACTS:
            continue
        key = (finding["check"], fingerprint(finding))
        found.add(key)
        if key not in known:
            new.append((finding, key))

    print(f"slither: {len(found)} high/medium finding(s), {len(found) - len(new)} triaged")
    for (check, fp), entry in known.items():
        if (check, fp) not in found:
            print(f"  no longer found (remove from {triage_path}): {check}: {fp[:100]}")
    if not new:
        return 0
    print(f"\n{len(new)} NEW high/medium finding(s): fix each, or explain it in docs/slither.md and add")
    print(f"its entry to {triage_path}:\n")
    for finding, (check, fp) in new:
        print(f"[{finding['impact']}/{finding['confidence']}] {check}")
        print(finding["description"])
        entry = {"check": check, "impact": finding["impact"], "fingerprint": fp, "verdict": "?", "reason": "?"}
        print(json.dumps(entry, indent=2))
        print()
    return 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
