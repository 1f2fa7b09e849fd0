#!/usr/bin/env bash
# Build the Weaviate server binary the live tests run against, once per version,
# and reuse it afterwards. Weaviate is a Go module, so `go install` builds it
# (CGO enabled; about 3 minutes on 2 cores, ~180 MB).
#
#   export CONVMEM_WEAVIATE_BIN="$(.ci/weaviate.sh)"
#
# The binary's path is the only thing printed on stdout; what was done goes to
# stderr. Cache: ${CONVMEM_CACHE:-$HOME/.cache/convmem}/weaviate/<version>/.
set -euo pipefail

VERSION="${CONVMEM_WEAVIATE_VERSION:-v1.39.0}"
CACHE="${CONVMEM_CACHE:-$HOME/.cache/convmem}"
DEST="$CACHE/weaviate/$VERSION"
BIN="$DEST/weaviate-server"

say() { echo "weaviate.sh: $*" >&2; }

if [[ -x "$BIN" && -f "$DEST/BUILT" ]]; then
    say "reusing $BIN ($(cat "$DEST/BUILT"))"
    echo "$BIN"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    say "cannot build Weaviate $VERSION: 'go' is not on PATH (install Go >= 1.24, or set CONVMEM_WEAVIATE_BIN to an existing weaviate-server binary)"
    exit 1
fi

say "building github.com/weaviate/weaviate/cmd/weaviate-server@$VERSION with $(go version | cut -d' ' -f3) (takes a few minutes) ..."
mkdir -p "$DEST"
STAGE="$(mktemp -d "$DEST/.build.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
start=$SECONDS
if ! CGO_ENABLED=1 GOBIN="$STAGE" go install "github.com/weaviate/weaviate/cmd/weaviate-server@$VERSION" >&2; then
    say "go install failed (see the output above); the live Weaviate tests cannot run"
    exit 1
fi
mv -f "$STAGE/weaviate-server" "$BIN"   # atomic: never a half-written binary in the cache
echo "$VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version | cut -d' ' -f3) in $((SECONDS - start)) s" >"$DEST/BUILT"
say "built $BIN in $((SECONDS - start)) s"
echo "$BIN"
