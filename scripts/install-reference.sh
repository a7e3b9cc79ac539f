#!/usr/bin/env bash
# Installs the reference environment: a Python virtual environment, outside
# the source tree, with the PyPI packages whose behaviour openrm is checked
# against (torch, transformers, tokenizers, safetensors, sentencepiece, trl,
# peft, scipy) at the versions pinned in scripts/reference-requirements.txt,
# and rewardbench from scripts/reference-nodeps.txt without its dependencies.
# Idempotent: when the environment already holds exactly those pins it checks
# the imports and returns without touching the network.
#
# Usage: scripts/install-reference.sh [--print-python] [--check]
#   --print-python  print the environment's python path (after installing)
#   --check         install nothing: exit 0 if the environment is complete,
#                   1 (with the reason) otherwise
# Environment:
#   OPENRM_REFERENCE_VENV  where the environment lives
#                          (default: $HOME/.cache/openrm/reference-venv)
#   PYTHON                 the interpreter to build it from (default: python3)
#
# Nothing in `make demo` or the library needs it; the tests and benchmarks
# that do look for it at the same place and skip with a message naming this
# script. docs/parity.md lists what uses it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
requirements="$here/reference-requirements.txt"
nodeps="$here/reference-nodeps.txt"
venv="${OPENRM_REFERENCE_VENV:-$HOME/.cache/openrm/reference-venv}"
python="${PYTHON:-python3}"
print_python=0
check_only=0
for arg in "$@"; do
  case "$arg" in
    --print-python) print_python=1 ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-reference.sh: error: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "install-reference.sh: $*" >&2; }

stamp="$venv/.openrm-requirements"
imports="import torch, transformers, tokenizers, safetensors, sentencepiece, trl, peft, requests, scipy, importlib.metadata as m; m.version('rewardbench')"
pins() { cat "$requirements" "$nodeps"; }
complete() {
  [[ -x "$venv/bin/python" && -f "$stamp" ]] && cmp -s "$stamp" <(pins) &&
    "$venv/bin/python" -c "$imports" >/dev/null 2>&1
}

if complete; then
  say "reference environment at $venv is complete ($(pins | grep -cv '^#') pins)"
elif [[ "$check_only" == 1 ]]; then
  say "reference environment at $venv is missing or out of date; run scripts/install-reference.sh"
  exit 1
else
  if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for `python3 -m venv`.
    say "$python has no venv/ensurepip; installing Debian's python3-venv"
    if [[ "$(id -u)" == 0 ]]; then as_root=(); else as_root=(sudo -n); fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    say "creating $venv with $("$python" --version 2>&1)"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
  fi
  say "installing the pinned packages (torch with its CUDA libraries is a few GB)"
  rm -f "$stamp"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$requirements"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q --no-deps -r "$nodeps"
  "$venv/bin/python" -c "$imports"
  pins > "$stamp"
  say "done: $("$venv/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
fi
if [[ "$print_python" == 1 ]]; then
  echo "$venv/bin/python"
fi
