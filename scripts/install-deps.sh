#!/usr/bin/env bash
# Installs, from Debian 12 packages, whatever openrm needs to build, test and
# run that is not installed yet. Safe to run often: when everything is present
# it only asks dpkg and returns, without touching the network.
#
# Usage: scripts/install-deps.sh [--fuzz]
#   --fuzz (or OPENRM_FUZZ=1)  also install clang and its libFuzzer runtime.
set -euo pipefail

usage() {
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
}

want_fuzz="${OPENRM_FUZZ:-0}"
for arg in "$@"; do
  case "$arg" in
    --fuzz) want_fuzz=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-deps.sh: error: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential g++ cmake ninja-build ccache pkg-config
  libtorch-dev
  libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev
  # Debian's LibTorch calls whatever libblas.so.3 points to; without OpenBLAS
  # that is the reference BLAS and CPU matmul is ~30x slower.
  libopenblas0-openmp
  zlib1g-dev python3
  # The tokenizer.json backend: pre-tokenizer regexes (with JIT) and Unicode
  # normalization (NFC, NFKC, ...).
  libpcre2-dev libutf8proc-dev
  # openrm-serve's HTTP server.
  libcpp-httplib-dev
  # c10d's Gloo process group (data-parallel training on the CPU): the
  # headers LibTorch's ProcessGroupGloo.hpp includes.
  libgloo-dev
  # The reference the tokenizer tests compare token ids against.
  python3-sentencepiece
  # The HTML report's test renders it in a real browser, headless.
  chromium
)
if [[ "$want_fuzz" == 1 ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

# "ii" = wanted and installed; anything else (absent, half-installed,
# config-files only) counts as missing.
missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != ii* ]]; then
    missing+=("$pkg")
  fi
done

if (( ${#missing[@]} == 0 )); then
  echo "install-deps.sh: all ${#packages[@]} packages present"
else
  echo "install-deps.sh: installing ${missing[*]}"
  if [[ "$(id -u)" == 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    # Without a terminal (CI) sudo must not wait for a password nobody types.
    if [[ -t 0 ]]; then as_root=(sudo); else as_root=(sudo -n); fi
  else
    echo "install-deps.sh: error: need root to install ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  # env passes the variable through sudo, which would otherwise drop it.
  apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  "${apt[@]}" update -q
  "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}"
fi

# LibTorch's CPU speed depends on which BLAS libblas.so.3 resolves to.
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)"
blas_link="/usr/lib/${multiarch}/libblas.so.3"
blas_target="$(readlink -f "$blas_link" 2>/dev/null || true)"
if [[ "$blas_target" != *openblas* ]]; then
  cat >&2 <<EOF

************************************************************************
install-deps.sh: WARNING: $blas_link resolves to '${blas_target:-nothing}',
not OpenBLAS. LibTorch's CPU matmul will be about 30x slower.
Fix it with:
  update-alternatives --set libblas.so.3-${multiarch} \\
    /usr/lib/${multiarch}/openblas-openmp/libblas.so.3
************************************************************************

EOF
else
  echo "install-deps.sh: libblas.so.3 -> $blas_target"
fi
