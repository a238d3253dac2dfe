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
    except ImportError:
        from core.cli import build_parser

        build_parser().print_help()
        return 0
    return run_app()


if __name__ == "__main__":
    sys.exit(main())
