"""Makes `import ductile` and `import util` work however pytest is started (CI sets
PYTHONPATH=python; a bare `pytest tests/python` should work too)."""
import pathlib
import sys

_HERE = pathlib.Path(__file__).resolve().parent
for p in (_HERE, _HERE.parents[1] / "python"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
