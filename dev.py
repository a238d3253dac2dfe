#!/usr/bin/env python3
"""Set up the project's virtual environment, then run the app or the tests.

    python3 dev.py run  [ARGS...]   # install what is missing, then `python main.py ARGS`
    python3 dev.py test [ARGS...]   # install what is missing (with test extras), then pytest

Needs only Python 3.11+. Idempotent: the environment in .venv is reused and
reinstalled only when pyproject.toml or constraints.txt changes. constraints.txt pins the
version of every package; to refresh it, delete it, run `python3 dev.py test`, then
`.venv/bin/python -m pip freeze --exclude-editable > constraints.txt`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def _ensure_env(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (dev.py may be run by an older python3)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"Creating virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    if extras == "test":
        requirements += project["optional-dependencies"]["test"]
    # constraints.txt pins every version, so two machines (and two CI runs) install the same
    constraints = ROOT / "constraints.txt"
    pinned = constraints.read_text() if constraints.is_file() else ""
    digest = hashlib.sha256("\n".join([*requirements, pinned]).encode()).hexdigest()
    stamp = VENV / f".installed-{extras}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    if extras == "run":  # the test environment holds everything the app needs
        test_requirements = requirements + project["optional-dependencies"]["test"]
        test_digest = hashlib.sha256("\n".join([*test_requirements, pinned]).encode())
        test_stamp = VENV / ".installed-test"
        if test_stamp.exists() and test_stamp.read_text() == test_digest.hexdigest():
            return
    # The dependencies only: the code runs from this folder, so nothing needs building.
    print(f"Installing dependencies ({'with test tools' if extras == 'test' else 'app'}) ...",
          flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    pin = ["-c", str(constraints)] if pinned else []
    subprocess.run([*pip, "install", "--quiet", *pin, *requirements], check=True, cwd=ROOT)
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    _ensure_env("test" if command == "test" else "run")
    if command == "run":
        args = [str(PYTHON), str(ROOT / "main.py"), *rest]
    else:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        # two workers (one per core of the CI machine); a file's tests stay on one worker,
        # so its module fixtures are built once
        workers = [] if any(a == "-n" or a.startswith("-n") for a in rest) else [
            "-n", "2", "--dist", "loadfile"]
        args = [str(PYTHON), "-m", "pytest", *workers, *rest]
    return subprocess.call(args, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
