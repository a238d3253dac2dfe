"""Skin-lesion classifier workbench: with no arguments open the app, else run the CLI."""

from __future__ import annotations

import sys


def main() -> int:
    """Entry point: `python main.py` opens the GUI, `python main.py --help` lists commands."""
    if len(sys.argv) > 1:
        from core.cli import main as cli_main

        return cli_main(sys.argv[1:])
    try:
        from gui.app import run_app
    except ImportError as exc:  # e.g. Qt's system libraries are missing
        print(f"error: the desktop app cannot start ({exc}); see README for the system "
              "packages Qt needs. The command line still works: python main.py --help",
              file=sys.stderr)
        return 1
    return run_app()


if __name__ == "__main__":
    sys.exit(main())
