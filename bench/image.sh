#!/usr/bin/env bash
# Images, in one run on the same files (issue 6's speed section):
#   load  `layerstore image load` (overlay2, a fresh store per run) of the rootfs, chain and
#         smallfiles images as docker-archive with plain and gzip layers and as OCI archive,
#         next to `docker load` (a private dockerd, overlay2, fresh data root per run),
#         `podman load` (overlay, fresh root per run) and the floor: GNU `tar -x` of the layer
#         tars into one directory + `sha256sum` of them
#   save  `layerstore image save` of the loaded image next to `docker save` and `podman save`
# The loaded image must have the ID the archive's config gives (ours and Docker's), and our
# saved layers must hash to the image's DiffIDs. Wall time, CPU and max RSS (median of RUNS,
# runs interleaved), as a markdown table.
#
# usage: bench/image.sh DATA_DIR WORK_DIR [RUNS]
#   DATA_DIR  holds images/ (../shared/bench/mkdata.sh: NAME.docker.tar, NAME.docker-gz.tar,
#             NAME.oci-plain.tar, NAME.ids.json) and the layer tars (rootfs.tar, smallfiles.tar,
#             chain/layer1..6.tar); read only
#   WORK_DIR  scratch space on the benchmark filesystem (a journaled ext4, see
#             ../shared/bench/README.md); the run goes under WORK_DIR/image-bench, wiped first
#   RUNS      timed runs per tool and case (default 5)
# env: PARTS="load save"  CASES="rootfs chain smallfiles"  FORMS="docker docker-gz oci-plain"
#      TOOLS="floor layerstore docker podman"  QUIET_WAIT=30  LAYERSTORE_DIST=DIR
#      DOCKERD=dockerd DOCKER=/usr/bin/docker PODMAN=podman
# Run as root. Daemons are started untimed, unix socket only, no networking, stopped by PID.
# A build without the `image` command (`image --help` fails) runs the peers and the floor only.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
bench_args "$@"
PARTS=${PARTS:-load save}
CASES=${CASES:-rootfs chain smallfiles}
FORMS=${FORMS:-docker docker-gz oci-plain}
TOOLS=${TOOLS:-floor layerstore docker podman}
DOCKERD=${DOCKERD:-dockerd}
DK=${DOCKER:-/usr/bin/docker}
PODMAN=${PODMAN:-podman}
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIST=${LAYERSTORE_DIST:-$REPO/dist}
die() {
  echo "image.sh: $*" >&2
  exit 1
}
has() { [[ " $1 " == *" $2 "* ]]; }
[ "$(id -u)" = 0 ] || die "run as root (mounts)"
[ -f "$DIST/cli/layerstore.mjs" ] || die "$DIST/cli/layerstore.mjs not found; build first"
for c in $CASES; do
  [ -f "$DATA/images/$c.ids.json" ] || die "$DATA/images/$c.ids.json not found (mkdata.sh)"
done

OUT=$WORK/image-bench
umount_under "$OUT"
rm -rf "$OUT"
mkdir -p "$OUT/logs"
copy_build "$DIST"
CLI=$OUT/layerstore/dist/cli/layerstore.mjs
# A build from before the image commands: the peers still run, our rows are left out.
SKIPPED=
if has "$TOOLS" layerstore && ! "$CLI" image --help >/dev/null 2>&1; then
  SKIPPED="layerstore rows skipped: this build has no \`image\` command ($DIST)"
  echo "image.sh: $SKIPPED" >&2
  TOOLS=" $TOOLS "
  TOOLS=${TOOLS// layerstore / }
fi
results_files
check_fs "$WORK"
unset LAYERSTORE_OVERLAY2_NAIVE LAYERSTORE_ROOT LAYERSTORE_DRIVER
ls_() {
  local root=$1
  shift
  "$CLI" --root "$root" --driver overlay2 --quiet "$@"
}
pm() {
  local root=$1
  shift
  # podman refuses a run root longer than 50 characters: it lives in the short RUNDIR.
  "$PODMAN" --root "$root/storage" --runroot "$RUNDIR/prun" --storage-driver overlay "$@"
}
# layers CASE: the case's layer tars, bottom first.
layers() {
  if [ "$1" = chain ]; then
    echo "$DATA"/chain/layer{1,2,3,4,5,6}.tar
  else
    echo "$DATA/$1.tar"
  fi
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

dockerd_setup image-bench
cleanup() {
  stop_dockerd
  umount_under "$OUT" || true
  rm -rf "$RUNDIR"
}
trap cleanup EXIT

{
  echo "# images: load and save"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -r), $(nproc) CPUs"
  echo "- node $(node --version); $(tar --version | head -1); layerstore $(git -C "$REPO" describe --always --dirty)"
  echo "- docker: daemon $("$DOCKERD" --version); podman: $("$PODMAN" --version)"
  echo "- work dir: $WORK ($FSTYPE on $FSDEV, journal: $JOURNAL); runs: $RUNS"
  if [ -n "$SKIPPED" ]; then echo "- $SKIPPED"; fi
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# ---- load ------------------------------------------------------------------------------------
if has "$PARTS" load; then
  for c in $CASES; do
    ids=$DATA/images/$c.ids.json
    want=$(field "$ids" config_digest)
    # shellcheck disable=SC2046
    read -r bytes entries < <(python3 -c 'import os,sys,tarfile
print(sum(os.path.getsize(p) for p in sys.argv[1:]), sum(sum(1 for _ in tarfile.open(p)) for p in sys.argv[1:]))' $(layers "$c"))
    C=$OUT/load/$c
    mkdir -p "$C"
    for f in $FORMS; do
      A=$DATA/images/$c.$f.tar
      [ -f "$A" ] || die "$A not found"
      x=$c.$f
      printf 'load\t%s\t%s\t%s\n' "$x" "$bytes" "$entries" >>"$CASEINFO"
      for r in $(seq 1 "$RUNS"); do
        if has "$TOOLS" floor && [ "$f" = docker ]; then
          # shellcheck disable=SC2046
          warm $(layers "$c")
          # shellcheck disable=SC2016,SC2046
          timed tar+sha256sum "$x" "$r" "$C/gnu" \
            sh -c 'd=$1; shift; mkdir "$d" && for t; do tar --numeric-owner --xattrs --xattrs-include="*" -xpf "$t" -C "$d" || exit 1; done && sha256sum "$@" >/dev/null' \
            sh "$C/gnu" $(layers "$c")
          rm -rf "$C/gnu"
        fi
        if has "$TOOLS" layerstore; then
          warm "$A"
          timed layerstore "$x" "$r" "$C/store" "$CLI" --root "$C/store" --driver overlay2 --quiet image load -i "$A"
          if [ "$r" = 1 ]; then
            got=$(ls_ "$C/store" --json image ls | python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(sys.stdin)))')
            check "load/$x" "layerstore: image ID $want" "$([ "$got" = "$want" ] && echo yes || echo "NO ($got)")"
          fi
          umount_under "$C/store"
          rm -rf "$C/store"
        fi
        if has "$TOOLS" docker && [ "$f" != oci-plain ]; then # Docker 20.10 loads docker-archives only
          start_dockerd "$C/docker"
          warm "$A"
          TIMED_DAEMON=$DPID timed docker "$x" "$r" "" "$DK" load -q -i "$A"
          if [ "$r" = 1 ]; then
            got=$("$DK" image inspect "bench/$c:latest" --format '{{.Id}}' || true)
            check "load/$x" "docker: image ID $want" "$([ "$got" = "$want" ] && echo yes || echo "NO ($got)")"
          fi
          stop_dockerd
          umount_under "$C/docker"
          rm -rf "$C/docker"
        fi
        if has "$TOOLS" podman; then
          warm "$A"
          timed podman "$x" "$r" "$C/podman" "$PODMAN" --root "$C/podman/storage" --runroot "$RUNDIR/prun" --storage-driver overlay load -q -i "$A"
          pm "$C/podman" system reset -f >/dev/null 2>&1 || true
          umount_under "$C/podman"
          rm -rf "$C/podman" "$RUNDIR/prun"
        fi
      done
    done
    rm -rf "$C"
  done
fi

# ---- save ------------------------------------------------------------------------------------
if has "$PARTS" save; then
  for c in $CASES; do
    A=$DATA/images/$c.docker.tar
    ids=$DATA/images/$c.ids.json
    ref=bench/$c:latest
    C=$OUT/save/$c
    mkdir -p "$C"
    printf 'save\t%s\t%s\t%s\n' "$c" "$(stat -c %s "$A")" 0 >>"$CASEINFO"
    if has "$TOOLS" layerstore; then ls_ "$C/store" image load -i "$A" >/dev/null; fi
    if has "$TOOLS" podman; then pm "$C/podman" load -q -i "$A" >/dev/null; fi
    if has "$TOOLS" docker; then
      start_dockerd "$C/docker"
      "$DK" load -q -i "$A" >/dev/null
    fi
    for r in $(seq 1 "$RUNS"); do
      if has "$TOOLS" layerstore; then
        timed layerstore "$c" "$r" "$C/out.tar" "$CLI" --root "$C/store" --driver overlay2 --quiet image save "$ref" -o "$C/out.tar"
        if [ "$r" = 1 ]; then
          ok=$(python3 - "$C/out.tar" "$ids" <<'PY'
import hashlib, json, sys, tarfile
t = tarfile.open(sys.argv[1]); ids = json.load(open(sys.argv[2]))
man = json.load(t.extractfile("manifest.json"))[0]
got = []
for l in man["Layers"]:
    h = hashlib.sha256(); f = t.extractfile(l)
    while b := f.read(1 << 20):
        h.update(b)
    got.append("sha256:" + h.hexdigest())
print("yes" if got == ids["diff_ids"] else "NO")
PY
)
          check "save/$c" "layerstore: saved layers hash to the DiffIDs" "$ok"
        fi
        rm -f "$C/out.tar"
      fi
      if has "$TOOLS" docker; then
        TIMED_DAEMON=$DPID timed docker "$c" "$r" "$C/out.tar" "$DK" save "$ref" -o "$C/out.tar"
        rm -f "$C/out.tar"
      fi
      if has "$TOOLS" podman; then
        timed podman "$c" "$r" "$C/out.tar" "$PODMAN" --root "$C/podman/storage" --runroot "$RUNDIR/prun" --storage-driver overlay save -q -o "$C/out.tar" "$ref"
        rm -f "$C/out.tar"
      fi
    done
    stop_dockerd
    pm "$C/podman" system reset -f >/dev/null 2>&1 || true
    umount_under "$C"
    rm -rf "$C"
  done
fi

python3 - "$OUT" "$(dirname "$0")/lib" >"$OUT/results.md" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from results import figures, load, median_wall, print_checks, runs, table_head, table_row
rows, cases, checks, header = load(sys.argv[1])
print(header)
def table(title, part, labels):
    table_head(title, 'ours / best peer')
    for p, case, size, entries in cases:
        if p != part:
            continue
        peers = [m for m in (median_wall(rows, l, case) for l in ('docker', 'podman')) if m is not None]
        best = min(peers) if peers else None
        for label in labels:
            rs = runs(rows, label, case)
            if not rs:
                continue
            f = figures(rs)
            ratio = f"{f['wall'] / best:.2f}" if label == 'layerstore' and best else ''
            table_row(f'{case} ({int(size) / 1e6:.0f} MB)', label, f, ratio)
    print()
table('image load (overlay2)', 'load', ['tar+sha256sum', 'layerstore', 'docker', 'podman'])
table('image save', 'save', ['layerstore', 'docker', 'podman'])
print("docker: CPU is the client's and the daemon's; max RSS the larger of the client's and the")
print("daemon's process tree's peak. Other figures are the timed process tree's.\n")
print_checks(checks)
PY
cat "$OUT/results.md"
if grep -q $'\tNO' "$CHECKS" || awk -F'\t' '$8 != 0 { bad = 1 } END { exit !bad }' "$TIMES"; then
  exit 1
fi
