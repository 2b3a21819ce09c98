"""Maps the repository layout onto one import package, `speechmesh`.

services/<name>/ is importable as speechmesh.services.<name> and gateway/ as
speechmesh.gateway, so the tree mirrors the architecture while the installed
distribution keeps a single, collision-free top-level name.
"""

from setuptools import find_packages, setup

MAPPED_DIRS = {"speechmesh.services": "services", "speechmesh.gateway": "gateway"}

packages = find_packages(include=["speechmesh", "speechmesh.*"])
for prefix, directory in MAPPED_DIRS.items():
    packages.append(prefix)
    packages += [f"{prefix}.{name}" for name in find_packages(directory)]

setup(packages=packages, package_dir=MAPPED_DIRS, include_package_data=True)
