"""A keeper starts per dyno and runs without `site` (local.KEEPER_COMMAND): everything it imports
must come from the standard library or Berth, or every dyno start fails."""
from __future__ import annotations

import json
import subprocess

from berth.platform.dynos.local import KEEPER_COMMAND, _keeper_environment

PROBE = """
import json, sys
import berth.platform.dynos.keeper
outside = sorted({name.split('.')[0] for name, module in sys.modules.items()
                  if getattr(module, '__file__', None) and 'site-packages' in module.__file__})
print(json.dumps(outside))
"""


def test_the_keeper_imports_nothing_from_site_packages_and_starts_without_site() -> None:
    interpreter, flag = KEEPER_COMMAND[:2]
    assert flag == "-S"
    result = subprocess.run([interpreter, flag, "-c", PROBE], env=_keeper_environment(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
