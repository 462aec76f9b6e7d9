"""Keepers are forked from a spawner that runs without `site` (local.SPAWNER_COMMAND): everything the
spawner and the keeper import must come from the standard library or Berth, or no dyno starts."""
from __future__ import annotations

import json
import subprocess

from berth.platform.dynos.local import SPAWNER_COMMAND, _keeper_environment

PROBE = """
import json, sys
import berth.platform.dynos.spawner
outside = sorted({name.split('.')[0] for name, module in sys.modules.items()
                  if getattr(module, '__file__', None) and 'site-packages' in module.__file__})
print(json.dumps(outside))
"""


def test_the_spawner_imports_nothing_from_site_packages_and_starts_without_site() -> None:
    interpreter, flag = SPAWNER_COMMAND[:2]
    assert flag == "-S"
    result = subprocess.run([interpreter, flag, "-c", PROBE], env=_keeper_environment(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
