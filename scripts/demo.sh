#!/usr/bin/env bash
# The quick start's main job, on the default store ($LAYERSTORE_ROOT, else /var/lib/layerstore
# as root, else ~/.local/share/layerstore) and the default driver: load an example image (built
# here, nothing downloaded), create a container layer on it, mount it and write into it, commit
# it as a new image, save that and check its layers hash to their DiffIDs; then remove what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build
work=$(mktemp -d)
name="demo-$$"
ls() { dist/cli/layerstore.mjs "$@"; }
cleanup() {
  ls rw unmount "$name" >/dev/null 2>&1 || true
  ls rw rm "$name" >/dev/null 2>&1 || true
  ls image rm "example/hello:demo-$$" >/dev/null 2>&1 || true
  ls image rm example/hello:1 >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

node examples/hello-image.mjs "$work/hello.tar"
ls image load -i "$work/hello.tar"
ls image ls

# A container's read-write layer on the image: mount it, run nothing, but change files.
ls rw create "$name" --parent example/hello:1 >/dev/null
root=$(ls rw mount "$name")
echo "mounted     $root"
echo "hello from layerstore" >"$root/srv/hello.txt"
rm "$root/etc/motd"
echo "changes:"
ls rw changes "$name" | sed 's/^/            /'
ls rw unmount "$name"
id=$(ls rw commit "$name" --tag "example/hello:demo-$$")
echo "committed   example/hello:demo-$$ ($id)"

# Saved layers are the exact registered bytes: each blob hashes to its DiffID.
ls image save "example/hello:demo-$$" -o "$work/saved.tar"
mkdir "$work/saved" && tar -xf "$work/saved.tar" -C "$work/saved"
node -e '
  const fs = require("fs"), crypto = require("crypto"), dir = process.argv[1]
  const [m] = JSON.parse(fs.readFileSync(dir + "/manifest.json"))
  const config = JSON.parse(fs.readFileSync(dir + "/" + m.Config))
  m.Layers.forEach((p, i) => {
    const got = "sha256:" + crypto.createHash("sha256").update(fs.readFileSync(dir + "/" + p)).digest("hex")
    if (got !== config.rootfs.diff_ids[i]) throw new Error(p + " hashes to " + got)
  })
  console.log("saved       " + m.RepoTags[0] + ": " + m.Layers.length + " layers, each hashes to its DiffID")
' "$work/saved"
echo "OK"
