#!/usr/bin/env bash
# Vendors the API reference's renderer, Swagger UI, into portal/vendor/ from the npm package that
# package.json pins (swagger-ui-dist), so the Rust build embeds it with no Node at build time and
# no CDN at run time. The files are committed; this script rebuilds them, or checks them.
#
#   bash scripts/vendor-portal.sh            # rebuild portal/vendor/ from node_modules (npm ci first)
#   bash scripts/vendor-portal.sh --check    # fail unless portal/vendor/ is what this would build
#
# What it writes, for swagger-ui-dist VERSION:
#   swagger-ui-VERSION.js.gz        swagger-ui-bundle.js (the renderer and React in one UMD script)
#   swagger-ui-VERSION.css.gz       swagger-ui.css, without its source-map comment
#   swagger-ui-VERSION.LICENSE.txt  the package's LICENSE and NOTICE, and the bundle's third-party
#                                   notices (served at /docs/ beside the script)
# gzip -9 -n (no name or time stamp): the function serves the .gz bytes as Content-Encoding: gzip,
# which keeps its wasm artifact small. The check compares the decompressed content, so another
# gzip build cannot make it fail. Upgrading: pin the new version in package.json, `npm install`,
# run this, and rename the files in functions/marketplace/src/pages.rs and portal/src/docs.html
# (the check reports where the old version is still named).
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: bash scripts/vendor-portal.sh [--check]" >&2; exit 2 ;;
esac

package=node_modules/swagger-ui-dist
[[ -f $package/package.json ]] || { echo "vendor-portal: $package is missing (npm ci)" >&2; exit 1; }
version=$(node -p 'require("./node_modules/swagger-ui-dist/package.json").version')
pinned=$(node -p 'require("./package.json").devDependencies["swagger-ui-dist"]')
[[ $version == "$pinned" ]] || {
  echo "vendor-portal: node_modules has swagger-ui-dist $version, package.json pins $pinned (npm ci)" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The content, uncompressed, exactly as served (after decompression).
cp "$package/swagger-ui-bundle.js" "$work/swagger-ui-$version.js"
sed '/^\/\*# sourceMappingURL=.*\*\/$/d' "$package/swagger-ui.css" >"$work/swagger-ui-$version.css"
{
  echo "Swagger UI $version (npm: swagger-ui-dist), served by AgentIdP at /docs/swagger-ui-$version.js"
  echo
  cat "$package/NOTICE"
  echo
  cat "$package/LICENSE"
  echo
  echo "---- third-party notices of swagger-ui-bundle.js ----"
  cat "$package/swagger-ui-bundle.js.LICENSE.txt"
} >"$work/swagger-ui-$version.LICENSE.txt"

if $check; then
  status=0
  for name in "swagger-ui-$version.js" "swagger-ui-$version.css"; do
    if ! gzip -dc "portal/vendor/$name.gz" 2>/dev/null | cmp -s - "$work/$name"; then
      echo "vendor-portal: portal/vendor/$name.gz is not swagger-ui-dist $version's (run the script)" >&2
      status=1
    fi
  done
  cmp -s "portal/vendor/swagger-ui-$version.LICENSE.txt" "$work/swagger-ui-$version.LICENSE.txt" || {
    echo "vendor-portal: portal/vendor/swagger-ui-$version.LICENSE.txt is stale (run the script)" >&2
    status=1
  }
  for file in functions/marketplace/src/pages.rs portal/src/docs.html; do
    if grep -o 'swagger-ui-[0-9][0-9.]*[0-9]' "$file" | grep -v "swagger-ui-$version" >/dev/null; then
      echo "vendor-portal: $file names another Swagger UI version than $version" >&2
      status=1
    fi
  done
  stray=$(find portal/vendor -type f ! -name "swagger-ui-$version.*")
  [[ -z $stray ]] || { echo "vendor-portal: files of another version: $stray" >&2; status=1; }
  ((status == 0)) && echo "portal/vendor/ is swagger-ui-dist $version"
  exit "$status"
fi

rm -rf portal/vendor
mkdir -p portal/vendor
gzip -9 -n -c "$work/swagger-ui-$version.js" >"portal/vendor/swagger-ui-$version.js.gz"
gzip -9 -n -c "$work/swagger-ui-$version.css" >"portal/vendor/swagger-ui-$version.css.gz"
cp "$work/swagger-ui-$version.LICENSE.txt" portal/vendor/
ls -l portal/vendor
