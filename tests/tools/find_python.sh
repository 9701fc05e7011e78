#!/usr/bin/env bash
# Print the path of a Python 3.12+ interpreter (ansible-core 2.21 needs it), or fail saying so.
# Order: $PYTHON, python3.13/3.12/3.14/python3 on PATH, then pyenv and /usr/local installs.
set -u
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for name in python3.13 python3.12 python3.14 python3; do
  path=$(command -v "$name" 2>/dev/null) && candidates+=("$path")
done
for dir in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[234]* /usr/local/bin /usr/bin; do
  for bin in "$dir"/bin/python3.1[234] "$dir"/python3.1[234]; do
    [ -x "$bin" ] && candidates+=("$bin")
  done
done
for py in "${candidates[@]}"; do
  # pyenv shims exist for versions that are not selected and then fail: run each one for real.
  if "$py" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
    "$py" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "No Python 3.12 or newer found (ansible-core 2.21 needs it). Install python3.12 or 3.13" \
  "(for example 'apt-get install python3.12-venv' or 'pyenv install 3.12'), or set PYTHON=/path/to/python3.12." >&2
exit 1
