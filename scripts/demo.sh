#!/usr/bin/env bash
# The quick start's main job, on the default store ($LAYERSTORE_ROOT, else /var/lib/layerstore
# as root, else ~/.local/share/layerstore): register a layer, build a container layer on it,
# commit that, export both and check they hash to their DiffIDs; then remove what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ls() { node dist/cli/main.js "$@"; }

# A base layer: this repository's sources as GNU tar writes them (PAX, long names...), gzip'd.
tar --format=posix -C src -czf "$work/base.tar.gz" .
base=$(ls layer register "$work/base.tar.gz")
echo "registered  $base"

# A read-write layer on it, as a container would get; write into it, then commit.
name="demo-$$"
ls rw create "$name" --parent "$base" >/dev/null
root=$(ls rw mount "$name")
echo "mounted     $root"
echo "hello from layerstore" >"$root/hello.txt"
rm "$root/index.ts"
echo "changes:"
ls rw changes "$name" | sed 's/^/            /'
ls rw unmount "$name"
top=$(ls rw commit "$name")
echo "committed   $top"
ls --json layer inspect "$top"

# Exports are the exact registered bytes: they hash back to the DiffIDs.
for id in "$base" "$top"; do
  diff_id=$(ls --json layer inspect "$id" | node -pe 'JSON.parse(require("fs").readFileSync(0)).diffId')
  got="sha256:$(ls layer export "$id" | sha256sum | cut -d' ' -f1)"
  [ "$got" = "$diff_id" ] || { echo "export of $id hashes to $got, not $diff_id" >&2; exit 1; }
  echo "exported    $id: hashes to its DiffID"
done

ls rw rm "$name" >/dev/null
ls layer rm "$top" | sed 's/^/removed     /'
echo "OK"
