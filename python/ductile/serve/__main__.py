"""python -m ductile.serve (cli.py)."""
import sys

from .cli import main

sys.exit(main())
