"""``python -m dfkd`` runs the command-line interface."""
import sys

from dfkd.cli import main

sys.exit(main())
