#!/usr/bin/env bash
# The overlay2 driver, in one run on the same files (issue 5's speed section):
#   register  `layerstore layer register` on overlay2 of rootfs.tar and smallfiles.tar, next to
#             GNU `tar -x` + `sha256sum` and `docker load` of the same layer (a docker-archive)
#             by a private dockerd with Docker's overlay2 driver; the registered layer's export
#             must hash to its DiffID, and Docker must report the same DiffID
#   chain     on a chain of CHAIN_DEPTH small layers (built once, untimed): `rw create` and
#             `rw mount` of a read-write layer on its top, separately and together, then
#             `rw unmount` and `rw rm`, separately and together
#   commit    a read-write layer on the base layer, mounted, COMMIT_FILES regular files spread
#             over the tree rewritten; `rw commit` with the native diff (upper directory) and
#             with the naive one (LAYERSTORE_OVERLAY2_NAIVE=1: mounted trees compared); both
#             must give the same DiffID, and the export must hash to it
# Wall time, CPU and max RSS (median of RUNS, runs interleaved), as a markdown table.
#
# usage: bench/overlay2.sh DATA_DIR WORK_DIR [RUNS]
#   DATA_DIR  holds rootfs.tar and smallfiles.tar (../shared/bench/mkdata.sh; read only)
#   WORK_DIR  scratch space on the benchmark filesystem (a journaled ext4, see
#             ../shared/bench/README.md); the run goes under WORK_DIR/overlay2-bench, wiped at
#             the start (mounts under it are unmounted first)
#   RUNS      timed runs per tool and case (default 5)
# env: PARTS="register chain commit"  which parts to run
#      CASES="rootfs smallfiles"       register: which DATA_DIR/NAME.tar
#      COMMIT_CASES="rootfs smallfiles"  commit: the base layer (DATA_DIR/NAME.tar)
#      CHAIN_DEPTH=125 COMMIT_FILES=1000
#      QUIET_WAIT=30                   wait up to this many seconds for an idle second per run
#      LAYERSTORE_DIST=DIR             our build to test (default: the repo's dist/)
#      DOCKERD=dockerd DOCKER=/usr/bin/docker  Debian's docker.io (client and daemon alike)
# Run as root. dockerd gets a fresh data root for each run (start and stop untimed), unix
# socket only, no networking, and is stopped by PID.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
bench_args "$@"
PARTS=${PARTS:-register chain commit}
CASES=${CASES:-rootfs smallfiles}
COMMIT_CASES=${COMMIT_CASES:-rootfs smallfiles}
CHAIN_DEPTH=${CHAIN_DEPTH:-125}
COMMIT_FILES=${COMMIT_FILES:-1000}
DOCKERD=${DOCKERD:-dockerd}
DK=${DOCKER:-/usr/bin/docker}
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIST=${LAYERSTORE_DIST:-$REPO/dist}
die() {
  echo "overlay2.sh: $*" >&2
  exit 1
}
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
[ "$(id -u)" = 0 ] || die "run as root (mounts)"
[ -f "$DIST/cli/layerstore.mjs" ] || die "$DIST/cli/layerstore.mjs not found; build first"
if has_part register; then
  for c in $CASES; do [ -f "$DATA/$c.tar" ] || die "$DATA/$c.tar not found"; done
  if ! command -v "$DOCKERD" >/dev/null || [ ! -x "$DK" ]; then
    die "$DOCKERD or $DK not found (apt-get install docker.io)"
  fi
fi
if has_part commit; then
  for c in $COMMIT_CASES; do [ -f "$DATA/$c.tar" ] || die "$DATA/$c.tar not found"; done
fi

OUT=$WORK/overlay2-bench
umount_under "$OUT"
rm -rf "$OUT"
mkdir -p "$OUT/logs"
copy_build "$DIST"
CLI=$OUT/layerstore/dist/cli/layerstore.mjs
results_files
check_fs "$WORK"
unset LAYERSTORE_OVERLAY2_NAIVE LAYERSTORE_ROOT LAYERSTORE_DRIVER

# ls_ ROOT ARGS...: our CLI on store ROOT with overlay2.
ls_() {
  local root=$1
  shift
  "$CLI" --root "$root" --driver overlay2 "$@"
}
# json_field FIELD: that field of the JSON object on stdin.
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

dockerd_setup overlay2-bench
cleanup() {
  stop_dockerd
  umount_under "$OUT" || true
  rm -rf "$RUNDIR"
}
trap cleanup EXIT

{
  echo "# overlay2: register, deep chain, commit"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -r), $(nproc) CPUs"
  echo "- node $(node --version); $(tar --version | head -1); layerstore $(git -C "$REPO" describe --always --dirty)"
  if has_part register; then
    echo "- docker: $("$DK" --version), daemon $("$DOCKERD" --version)"
  fi
  echo "- work dir: $WORK ($FSTYPE on $FSDEV, journal: $JOURNAL); runs: $RUNS"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# ---- register ----------------------------------------------------------------------------
# mkarchive LAYER.tar NAME OUT.tar: a docker-archive of the one layer (what `docker save` writes:
# manifest.json, the config with rootfs.diff_ids, the layer tar as it is); prints the DiffID.
mkarchive() {
  python3 - "$@" <<'PY'
import hashlib, io, json, sys, tarfile
layer, name, out = sys.argv[1:4]
h = hashlib.sha256()
with open(layer, 'rb') as f:
    while b := f.read(1 << 20):
        h.update(b)
diff_id = 'sha256:' + h.hexdigest()
config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {},
                     'rootfs': {'type': 'layers', 'diff_ids': [diff_id]}}).encode()
cfg = hashlib.sha256(config).hexdigest() + '.json'
lname = h.hexdigest() + '/layer.tar'
manifest = json.dumps([{'Config': cfg, 'RepoTags': [f'bench/{name}:latest'],
                        'Layers': [lname]}]).encode()
with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as t:
    def add(n, data):
        ti = tarfile.TarInfo(n)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    with open(layer, 'rb') as f:
        ti = t.gettarinfo(fileobj=f, arcname=lname)
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ''
        t.addfile(ti, f)
    add(cfg, config)
    add('manifest.json', manifest)
print(diff_id)
PY
}

if has_part register; then
  for c in $CASES; do
    T=$DATA/$c.tar
    C=$OUT/register/$c
    mkdir -p "$C"
    printf 'register\t%s\t%s\t%s\n' "$c" "$(stat -c %s "$T")" "$(tar -tf "$T" | wc -l)" >>"$CASEINFO"
    ARCH=$C/$c.docker.tar
    diff_id=$(mkarchive "$T" "$c" "$ARCH")
    for r in $(seq 1 "$RUNS"); do
      warm "$T"
      timed tar+sha256sum "$c" "$r" "$C/gnu" \
        sh -c 'mkdir "$2" && tar --numeric-owner --xattrs --xattrs-include="*" -xpf "$1" -C "$2" && sha256sum "$1" >/dev/null' \
        sh "$T" "$C/gnu"
      rm -rf "$C/gnu"
      warm "$T"
      timed register "$c" "$r" "$C/store" "$CLI" --root "$C/store" --driver overlay2 layer register "$T"
      start_dockerd "$C/docker"
      warm "$ARCH"
      TIMED_DAEMON=$DPID timed docker-load "$c" "$r" "" "$DK" load -q -i "$ARCH"
      if [ "$r" = 1 ]; then
        got=$("$DK" image inspect "bench/$c:latest" --format '{{join .RootFS.Layers " "}}' || true)
        check "register/$c" "docker load: DiffID $diff_id" "$([ "$got" = "$diff_id" ] && echo yes || echo "NO ($got)")"
      fi
      stop_dockerd
      umount_under "$C/docker"
      rm -rf "$C/docker"
    done
    # our layer, registered again (untimed): its DiffID, and its export hashes to it
    rm -rf "$C/store"
    ours=$(ls_ "$C/store" --json layer register "$T" | json_field diffId)
    check "register/$c" "layerstore: DiffID $diff_id" "$([ "$ours" = "$diff_id" ] && echo yes || echo "NO ($ours)")"
    chain=$(ls_ "$C/store" --json layer ls | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["chainId"])')
    exported=sha256:$(ls_ "$C/store" layer export "$chain" | sha256sum | cut -d' ' -f1)
    check "register/$c" "layer export hashes to the DiffID" "$([ "$exported" = "$diff_id" ] && echo yes || echo "NO ($exported)")"
    rm -rf "$C"
  done
fi

# ---- deep chain --------------------------------------------------------------------------
if has_part chain; then
  C=$OUT/chain
  S=$C/store
  mkdir -p "$C/tars"
  echo "== building a chain of $CHAIN_DEPTH layers (untimed)" >&2
  # layer i: d<i>/ with 4 files; from the second on, d<i-1>/f1 whited out
  python3 - "$C/tars" "$CHAIN_DEPTH" <<'PY'
import io, sys, tarfile
out, depth = sys.argv[1], int(sys.argv[2])
for i in range(1, depth + 1):
    with tarfile.open(f'{out}/{i}.tar', 'w', format=tarfile.PAX_FORMAT) as t:
        def add(name, data=None, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.mode = 1700000000 + i, mode
            if data is None:
                ti.type = tarfile.DIRTYPE
            else:
                ti.size = len(data)
            t.addfile(ti, None if data is None else io.BytesIO(data))
        if i > 1:
            add(f'd{i - 1:03}/', mode=0o755)
            add(f'd{i - 1:03}/.wh.f1', b'')
        add(f'd{i:03}/', mode=0o755)
        for k in range(1, 5):
            add(f'd{i:03}/f{k}', f'layer {i} file {k}\n'.encode() * (64 * k))
PY
  top=
  for i in $(seq 1 "$CHAIN_DEPTH"); do
    top=$(ls_ "$S" layer register ${top:+--parent "$top"} "$C/tars/$i.tar")
  done
  printf 'chain\tchain\t%s\t%s\n' "$CHAIN_DEPTH" "$(ls_ "$S" --json layer ls | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" >>"$CASEINFO"
  # A read-write layer that is never mounted holds the chain, as an image does in Docker:
  # without it, `rw rm` of the last read-write layer on the chain deletes the chain too.
  ls_ "$S" rw create hold --parent "$top" >/dev/null
  # the chain as the kernel sees it: the top's files, and the whiteouts applied
  ls_ "$S" rw create probe --parent "$top" >/dev/null
  m=$(ls_ "$S" rw mount probe)
  n=$(find "$m" -type f | wc -l)
  want=$((3 * (CHAIN_DEPTH - 1) + 4))
  check chain "mounted: $want files (4 per layer, one whited out by the next)" "$([ "$n" = "$want" ] && echo yes || echo "NO ($n)")"
  ls_ "$S" rw unmount probe
  ls_ "$S" rw rm probe >/dev/null
  x=chain-$CHAIN_DEPTH
  for r in $(seq 1 "$RUNS"); do
    timed node-startup "$x" "$r" "" node -e 0
    timed rw-create "$x" "$r" "" "$CLI" --root "$S" --driver overlay2 rw create "a$r" --parent "$top"
    timed rw-mount "$x" "$r" "" "$CLI" --root "$S" --driver overlay2 rw mount "a$r"
    timed rw-unmount "$x" "$r" "" "$CLI" --root "$S" --driver overlay2 rw unmount "a$r"
    timed rw-rm "$x" "$r" "" "$CLI" --root "$S" --driver overlay2 rw rm "a$r"
    timed rw-create+mount "$x" "$r" "" \
      sh -c 'node "$1" --root "$2" --driver overlay2 rw create "$3" --parent "$4" && node "$1" --root "$2" --driver overlay2 rw mount "$3"' \
      sh "$CLI" "$S" "b$r" "$top"
    timed rw-unmount+rm "$x" "$r" "" \
      sh -c 'node "$1" --root "$2" --driver overlay2 rw unmount "$3" && node "$1" --root "$2" --driver overlay2 rw rm "$3"' \
      sh "$CLI" "$S" "b$r"
  done
  left=$(ls_ "$S" --json rw ls | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  check chain "no read-write layer left after the runs but the holder" "$([ "$left" = 1 ] && echo yes || echo "NO ($left)")"
  ls_ "$S" rw rm hold >/dev/null
  umount_under "$C"
  rm -rf "$C"
fi

# ---- commit ------------------------------------------------------------------------------
if has_part commit; then
  for c in $COMMIT_CASES; do
    T=$DATA/$c.tar
    C=$OUT/commit/$c
    S=$C/store
    mkdir -p "$C"
    base=$(ls_ "$S" layer register "$T")
    ls_ "$S" rw create w --parent "$base" >/dev/null
    m=$(ls_ "$S" rw mount w)
    # rewrite COMMIT_FILES regular files (not hard-linked) spread evenly over the sorted tree
    changed=$(python3 - "$m" "$COMMIT_FILES" <<'PY'
import os, stat, sys
root, n = sys.argv[1], int(sys.argv[2])
files = []
for d, dirs, names in os.walk(root):
    dirs.sort()
    for name in sorted(names):
        p = os.path.join(d, name)
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            files.append(p)
if len(files) < n:
    sys.exit(f'only {len(files)} regular files in the tree, {n} asked')
for i in range(n):
    p = files[i * len(files) // n]
    with open(p, 'wb') as f:
        f.write(f'changed by bench/overlay2.sh: {os.path.relpath(p, root)}\n'.encode())
print(n)
PY
)
    nchanges=$(ls_ "$S" rw changes w | wc -l)
    printf 'commit\t%s\t%s\t%s\n' "$c" "$changed" "$nchanges" >>"$CASEINFO"
    # once, untimed: both diffs give the same layer, and its export hashes to its DiffID
    native=$(ls_ "$S" --json rw commit w)
    chain=$(json_field chainId <<<"$native")
    nid=$(json_field diffId <<<"$native")
    exported=sha256:$(ls_ "$S" layer export "$chain" | sha256sum | cut -d' ' -f1)
    check "commit/$c" "native: export hashes to the DiffID" "$([ "$exported" = "$nid" ] && echo yes || echo "NO ($exported)")"
    ls_ "$S" layer rm "$chain" >/dev/null
    vid=$(LAYERSTORE_OVERLAY2_NAIVE=1 ls_ "$S" --json rw commit w | json_field diffId)
    check "commit/$c" "naive: same DiffID as native ($nid)" "$([ "$vid" = "$nid" ] && echo yes || echo "NO ($vid)")"
    ls_ "$S" layer rm "$chain" >/dev/null
    for r in $(seq 1 "$RUNS"); do
      timed commit-native "$c" "$r" "" "$CLI" --root "$S" --driver overlay2 rw commit w
      ls_ "$S" layer rm "$chain" >/dev/null
      LAYERSTORE_OVERLAY2_NAIVE=1 timed commit-naive "$c" "$r" "" \
        "$CLI" --root "$S" --driver overlay2 rw commit w
      ls_ "$S" layer rm "$chain" >/dev/null
    done
    ls_ "$S" rw unmount w
    ls_ "$S" rw rm w >/dev/null
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
def table(title, labels, base, desc):
    table_head(title, f'time / {base}')
    for case, d in desc:
        b = median_wall(rows, base, case)
        for label in labels:
            rs = runs(rows, label, case)
            if not rs:
                continue
            f = figures(rs)
            tool = label + (' (client + daemon)' if f['daemon'] else '')
            table_row(d, tool, f, f"{f['wall'] / b:.2f}" if b else '-')
    print()
reg = [(c, f'{c} ({int(a) / 1e6:.3g} MB, {int(b):,} entries)') for p, c, a, b in cases if p == 'register']
if reg:
    table('layer register (overlay2) vs tar -x + sha256sum vs docker load (overlay2)',
          ['tar+sha256sum', 'register', 'docker-load'], 'tar+sha256sum', reg)
ch = [(f'chain-{a}', f'{a} layers') for p, c, a, b in cases if p == 'chain']
if ch:
    table('read-write layer on a deep chain',
          ['node-startup', 'rw-create', 'rw-mount', 'rw-create+mount', 'rw-unmount', 'rw-rm',
           'rw-unmount+rm'], 'node-startup', ch)
cm = [(c, f'{c}, {int(a):,} files rewritten ({int(b):,} changes)') for p, c, a, b in cases if p == 'commit']
if cm:
    table('rw commit: native diff vs naive diff', ['commit-native', 'commit-naive'], 'commit-native', cm)
if reg:
    print("docker load: CPU is the client's and the daemon's (with its reaped children); max RSS is")
    print("the largest of the client's and the sampled peak of the daemon's process tree (dockerd and")
    print("its containerd). Every other CPU and RSS figure is the timed process tree's.\n")
print_checks(checks)
PY
cat "$OUT/results.md"
if grep -q $'\tNO' "$CHECKS" || awk -F'\t' '$8 != 0 { bad = 1 } END { exit !bad }' "$TIMES"; then
  exit 1
fi
