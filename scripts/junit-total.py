"""Print one closing line over several pytest JUnit XML files.

Usage: python scripts/junit-total.py FILE.xml...  ->  "all suites: N passed, N failed, N skipped"
Exits 1 when anything failed or errored, or when no test ran at all.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def main(paths: list[str]) -> int:
    tests = failed = skipped = 0
    for path in paths:
        root = ET.parse(path).getroot()  # noqa: S314 (our own pytest output)
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            tests += int(suite.get("tests", "0"))
            failed += int(suite.get("failures", "0")) + int(suite.get("errors", "0"))
            skipped += int(suite.get("skipped", "0"))
    passed = tests - failed - skipped
    print(f"all suites: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
