#!/usr/bin/env bash
# The quick start's main job: split a real tar into tar-split metadata, extract it, and put
# the exact original bytes back together from the metadata and the extracted files.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ls=(node dist/cli/main.js)

# A tar of this repository's sources, written by GNU tar (PAX format, long names and all).
tar --format=posix -C src -cf "$work/layer.tar" .
echo "input:      $(stat -c %s "$work/layer.tar") bytes, DiffID sha256:$(sha256sum < "$work/layer.tar" | cut -d' ' -f1)"

# disasm passes the tar through unchanged while recording its metadata.
"${ls[@]}" tar-split disasm -o "$work/tar-split.json.gz" "$work/layer.tar" > "$work/passed-through.tar"
cmp "$work/layer.tar" "$work/passed-through.tar"
echo "metadata:   $(stat -c %s "$work/tar-split.json.gz") bytes ($(zcat "$work/tar-split.json.gz" | wc -l) entries)"

# Extract, then assemble the tar again from the metadata and the files alone.
mkdir "$work/root"
tar -C "$work/root" -xf "$work/layer.tar"
"${ls[@]}" tar-split asm --input "$work/tar-split.json.gz" --path "$work/root" -o "$work/assembled.tar"
cmp "$work/layer.tar" "$work/assembled.tar"
echo "assembled:  $(stat -c %s "$work/assembled.tar") bytes, DiffID sha256:$(sha256sum < "$work/assembled.tar" | cut -d' ' -f1)"
echo "OK: the assembled tar is byte-identical to the input"
