#!/usr/bin/env bash
# Vendor the browser scripts the inbox UI serves itself (no CDN): htmx, its SSE extension and
# Mermaid. Each package is fetched with `npm pack` into a temporary directory; only the
# single-file dist script and the package's licence are copied. Versions go to VERSIONS.
set -euo pipefail

HTMX_VERSION="${HTMX_VERSION:-2.0.11}"
SSE_VERSION="${SSE_VERSION:-2.2.4}"
MERMAID_VERSION="${MERMAID_VERSION:-12.3.0}"

here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/src/flowstar/web/ui/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"

# fetch PACKAGE VERSION DIST_FILE TARGET_NAME
fetch() {
    local pkg="$1" version="$2" file="$3" target="$4"
    local dir="$work/$pkg"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg@$version" >/dev/null && tar -xzf ./*.tgz)
    cp "$dir/package/$file" "$dest/$target"
    local licence
    licence="$(find "$dir/package" -maxdepth 1 -iname 'LICENSE*' | head -n 1)"
    cp "$licence" "$dest/$target.LICENSE"
    echo "$pkg $version $file" >>"$work/VERSIONS"
}

fetch htmx.org "$HTMX_VERSION" dist/htmx.min.js htmx.min.js
fetch htmx-ext-sse "$SSE_VERSION" dist/sse.min.js htmx-ext-sse.min.js
fetch mermaid "$MERMAID_VERSION" dist/mermaid.min.js mermaid.min.js
cp "$work/VERSIONS" "$dest/VERSIONS"
ls -l "$dest"
