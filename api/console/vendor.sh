#!/usr/bin/env bash
# Copy the console's browser libraries, pinned in package.json and package-lock.json, from the
# npm registry into static/vendor/ (checked in, so nothing is fetched at run time or install).
# Run it after changing a version in package.json (then `npm install --package-lock-only`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --silent)
mkdir -p "$here/static/vendor"
cp "$work/node_modules/htmx.org/dist/htmx.min.js" "$here/static/vendor/htmx.min.js"
cp "$work/node_modules/htmx.org/LICENSE" "$here/static/vendor/htmx.LICENSE"
cp "$work/node_modules/htmx-ext-sse/dist/sse.js" "$here/static/vendor/htmx-ext-sse.js"
cp "$work/node_modules/htmx-ext-sse/LICENSE" "$here/static/vendor/htmx-ext-sse.LICENSE"
(cd "$here/static/vendor" && sha256sum htmx.min.js htmx-ext-sse.js > SHA256SUMS)
echo "Vendored: $(cd "$work" && node -p "['htmx.org','htmx-ext-sse'].map(n => n + '@' + require('./node_modules/' + n + '/package.json').version).join(', ')")"
