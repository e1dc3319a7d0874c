"""The committed proof-check catalogue (``catalogue/``) re-verifies without Z3.

It is written by ``promptlimits reproduce --quick --certificates catalogue``; every
certificate in it must pass ``promptlimits recheck``, as it would in a user's CI.
"""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parent.parent / "catalogue"


def test_catalogue_rechecks_in_a_fresh_interpreter_without_z3(tmp_path):
    report = tmp_path / "junit.xml"
    script = (
        "import sys; from promptlimits.main import main; "
        f"code = main(['recheck', {str(CATALOGUE)!r}, '--junit', {str(report)!r}, '--json']); "
        "assert 'z3' not in sys.modules, 'recheck imported z3'; sys.exit(code)"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr + run.stdout[-2000:]
    payload = json.loads(run.stdout)
    claims = {c["claim"] for c in payload["certificates"]}
    assert payload["valid"] and {"memorizable", "bounds", "invertible"} <= claims
    suite = ET.parse(report).getroot()
    assert int(suite.get("tests")) == len(list(CATALOGUE.glob("*.json"))) and suite.get("failures") == "0"
