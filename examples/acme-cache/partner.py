#!/usr/bin/env python3
"""Run the example partner `acme-cache` and write the manifest that registers it with Berth.

    python examples/acme-cache/partner.py [--port 8123] [--manifest acme-cache.json]

On first run it writes --manifest from manifest.json (next to this file) with fresh secrets (its
API password and SSO salt, mode 0600) and this partner's URLs; later runs reuse it, so a Berth that
registered it keeps working. Then it serves Heroku's partner API with the partner Berth's own
tests run against (tests/partners/example_partner.py): provisions answer at once with EXAMPLE_URL.
Register it: `python -m berth.admin register-addon acme-cache.json --owner you@example.com`.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
PARTNER = HERE.parents[1] / "tests" / "partners" / "example_partner.py"


def write_manifest(path: Path, port: int) -> dict:
    manifest = json.loads((HERE / "manifest.json").read_text())
    base = f"http://127.0.0.1:{port}"
    endpoints = {"base_url": f"{base}/heroku/resources", "sso_url": f"{base}/heroku/sso"}
    manifest["api"].update(password=secrets.token_urlsafe(24), sso_salt=secrets.token_urlsafe(24),
                           production=dict(endpoints), test=dict(endpoints))
    # The manifest holds the partner's secrets: readable by its owner only, never replaced.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        json.dump(manifest, out, indent=2)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--manifest", type=Path, default=Path("acme-cache.json"),
                        help="the manifest to register (written on first run)")
    args = parser.parse_args(argv)
    if args.manifest.exists():
        manifest = json.loads(args.manifest.read_text())
        print(f"Serving the partner of {args.manifest}.", file=sys.stderr)
    else:
        manifest = write_manifest(args.manifest, args.port)
        print(f"Wrote {args.manifest} (it holds this partner's secrets). Register it with:\n"
              f"  python -m berth.admin register-addon {args.manifest} --owner you@example.com",
              file=sys.stderr)
    api = manifest["api"]
    port = urlsplit(api["production"]["base_url"]).port or args.port
    os.execv(sys.executable, [sys.executable, str(PARTNER), f"--port={port}", f"--service={manifest['id']}",
                              f"--password={api['password']}", f"--sso-salt={api['sso_salt']}"])


if __name__ == "__main__":
    main()
