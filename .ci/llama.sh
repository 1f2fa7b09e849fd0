#!/usr/bin/env bash
# Build the llama-cpp-python wheel (llama.cpp, CPU) that the `gguf` extra needs,
# once per version, and reuse it afterwards. PyPI serves llama-cpp-python as a
# source distribution only, and a source build takes many minutes on 2 cores, so
# CI installs the cached wheel first:
#
#   pip install --find-links "$(bash .ci/llama.sh)" "llama-cpp-python==$(bash .ci/llama.sh --version)"
#
# (after which `pip install -e '.[test]'` finds the requirement satisfied).
# The wheel's directory is the only thing printed on stdout; what was done goes to
# stderr. Cache: ${CONVMEM_CACHE:-$HOME/.cache/convmem}/llama-cpp-python/<version>-<flags>/.
# Built for x86-64 with AVX2/FMA/F16C (not -march=native), so the cached wheel runs
# on any such machine; set CONVMEM_LLAMA_CMAKE_ARGS to change that.
set -euo pipefail

VERSION="${CONVMEM_LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
if [[ "${1:-}" == "--version" ]]; then
    echo "$VERSION"
    exit 0
fi
ARGS="${CONVMEM_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAVA_BUILD=OFF}"
FLAGS="$(echo "$ARGS" | md5sum | cut -c1-8)"
CACHE="${CONVMEM_CACHE:-$HOME/.cache/convmem}"
DEST="$CACHE/llama-cpp-python/$VERSION-$FLAGS"

say() { echo "llama.sh: $*" >&2; }

if [[ -f "$DEST/BUILT" ]] && ls "$DEST"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
    say "reusing $DEST ($(cat "$DEST/BUILT"))"
    echo "$DEST"
    exit 0
fi

for tool in cc c++; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "cannot build llama-cpp-python $VERSION: '$tool' is not on PATH (apt-get install -y build-essential)"
        exit 1
    fi
done

say "building llama-cpp-python $VERSION from source (CMAKE_ARGS=$ARGS; takes many minutes) ..."
mkdir -p "$DEST"
STAGE="$(mktemp -d "$DEST/.build.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
start=$SECONDS
if ! CMAKE_ARGS="$ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    python3 -m pip wheel --no-deps --no-cache-dir "llama-cpp-python==$VERSION" -w "$STAGE" >&2; then
    say "the build failed (see the output above); the GGUF extraction tests cannot run"
    exit 1
fi
mv -f "$STAGE"/llama_cpp_python-"$VERSION"-*.whl "$DEST/"   # never a half-written wheel in the cache
echo "$VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s" >"$DEST/BUILT"
say "built $(ls "$DEST"/*.whl) in $((SECONDS - start)) s"
echo "$DEST"
