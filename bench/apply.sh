#!/usr/bin/env bash
# Applying a layer tar to a directory: ours (`apply()`, plain and overlay form) next to GNU
# `tar -x` and npm's `tar` package (node-tar), on the same tars, in one run: wall time and max
# RSS (median of RUNS, runs interleaved tool by tool), and a check that our tree equals GNU
# tar's entry by entry (modes, owners, contents, links, xattrs, times).
#
# usage: bench/apply.sh DATA_DIR WORK_DIR [RUNS]
#   DATA_DIR  holds rootfs.tar and smallfiles.tar (read only)
#   WORK_DIR  scratch space on the benchmark filesystem (a journaled ext4, see
#             ../shared/bench/README.md); the run goes under WORK_DIR/apply-bench, wiped at
#             the start; node-tar is installed once into WORK_DIR/node-tools
#   RUNS      timed runs per tool and case (default 5)
# env: CASES="rootfs smallfiles"   which DATA_DIR/NAME.tar to run
#      QUIET_WAIT=30                wait up to this many seconds for an idle second per run
#      LAYERSTORE_DIST=DIR          our build to test (default: the repo's dist/)
# Run as root (owners, devices, trusted xattrs), like the peers it is compared with.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
bench_args "$@"
CASES=${CASES:-rootfs smallfiles}
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIST=${LAYERSTORE_DIST:-$REPO/dist}
die() {
  echo "apply.sh: $*" >&2
  exit 1
}
[ -f "$DIST/archive/apply.js" ] || die "$DIST/archive/apply.js not found; build first"
for c in $CASES; do [ -f "$DATA/$c.tar" ] || die "$DATA/$c.tar not found"; done

OUT=$WORK/apply-bench
rm -rf "$OUT"
mkdir -p "$OUT/logs"
copy_build "$DIST"
export LAYERSTORE_DIST=$OUT/layerstore/dist
results_files
check_fs "$WORK"

TOOLS=$WORK/node-tools
if [ ! -d "$TOOLS/node_modules/tar" ]; then
  echo "== installing node-tar into $TOOLS (once)" >&2
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && npm init -y >/dev/null && npm install --no-audit --no-fund tar@7 >npm.log 2>&1)
fi
export NODE_PATH=$TOOLS/node_modules
NODE_TAR_VERSION=$(node -p "require('$TOOLS/node_modules/tar/package.json').version")

{
  echo "# apply: ours vs GNU tar -x vs node-tar"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -r), $(nproc) CPUs," \
    "$(free -g | awk '/^Mem:/{print $2}') GiB RAM"
  echo "- node $(node --version); $(tar --version | head -1); node-tar $NODE_TAR_VERSION;" \
    "layerstore $(git -C "$REPO" rev-parse --short HEAD)$(
      git -C "$REPO" diff --quiet HEAD -- src || echo ' + uncommitted changes in src/')"
  echo "- work dir: $WORK ($FSTYPE on $FSDEV, journal: $JOURNAL); runs: $RUNS; uid $(id -u)"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

for c in $CASES; do
  T=$DATA/$c.tar
  C=$OUT/$c
  mkdir -p "$C"
  printf '%s\t%s\t%s\n' "$c" "$(stat -c %s "$T")" "$(tar -tf "$T" | wc -l)" >>"$CASEINFO"
  echo "== $c: apply x $RUNS" >&2
  for r in $(seq 1 "$RUNS"); do
    warm "$T"
    timed gnu-tar "$c" "$r" "$C/gnu" \
      sh -c 'mkdir "$2" && exec tar --numeric-owner --xattrs --xattrs-include="*" -xpf "$1" -C "$2"' \
      sh "$T" "$C/gnu"
    warm "$T"
    timed node-tar "$c" "$r" "$C/node-tar" node "$REPO/bench/node-tar-x.mjs" "$T" "$C/node-tar"
    warm "$T"
    timed ours "$c" "$r" "$C/ours" node "$REPO/bench/apply-run.mjs" "$T" "$C/ours"
    warm "$T"
    timed ours-overlay "$c" "$r" "$C/ours-overlay" \
      node "$REPO/bench/apply-run.mjs" --overlay "$T" "$C/ours-overlay"
  done
  echo "== $c: checks" >&2
  for tool in ours ours-overlay node-tar; do
    if node "$REPO/bench/tree-diff.mjs" "$C/gnu" "$C/$tool" >"$OUT/logs/$c-$tool.diff" 2>&1; then
      res=identical
    else
      res="DIFFERENT ($(wc -l <"$OUT/logs/$c-$tool.diff") lines in logs/$c-$tool.diff)"
    fi
    printf '%s\t%s\t%s\n' "$c" "$tool" "$res" >>"$CHECKS"
    echo "  check $c $tool: $res" >&2
  done
  rm -rf "$C"
done

python3 - "$OUT" >"$OUT/results.md" <<'PY'
import statistics, sys
out = sys.argv[1]
rows = [l.rstrip('\n').split('\t') for l in open(f'{out}/times.tsv') if l.strip()]
cases = [l.rstrip('\n').split('\t') for l in open(f'{out}/cases.tsv') if l.strip()]
checks = [l.rstrip('\n').split('\t') for l in open(f'{out}/checks.tsv') if l.strip()]
TOOLS = [('gnu-tar', 'GNU `tar -xpf`'), ('node-tar', 'node-tar `x()`'),
         ('ours', 'ours `apply()`'), ('ours-overlay', 'ours `apply()`, overlay form')]
print(open(f'{out}/header.md').read())
print('Wall time: median of runs, tools interleaved, tar in the page cache and `sync` before '
      'each run (untimed); includes process start-up (node: ~0.1 s). Ratio: tool / GNU tar. '
      'Max RSS: median of the runs\' max RSS, MiB. "other CPU": most CPU-seconds other '
      'processes used during one run (large: re-run).')
print()
print('| case | tool | median s | MB/s | max RSS MiB | time / GNU tar | runs (s) | other CPU s |')
print('|---|---|---:|---:|---:|---:|---|---:|')
for case, size, entries in cases:
    size = int(size)
    base = [float(r[3]) for r in rows if r[0] == 'gnu-tar' and r[1] == case]
    b = statistics.median(base) if base else None
    for label, name in TOOLS:
        rs = [r for r in rows if r[0] == label and r[1] == case]
        if not rs:
            continue
        walls = [float(r[3]) for r in rs]
        w = statistics.median(walls)
        ok = all(r[7] == '0' for r in rs)
        rss = statistics.median(int(r[4]) for r in rs) / 1024
        other = max(float(r[6]) for r in rs)
        ratio = f'{w / b:.2f}' if b else ''
        print(f"| {case} ({size / 1e6:.0f} MB, {int(entries):,} entries) | {name} "
              f"| {w:.3f}{'' if ok else ' FAILED'} | {size / 1e6 / w:.0f} | {rss:.0f} | {ratio} "
              f"| {' '.join(f'{x:.2f}' for x in walls)} | {other:.2f} |")
print()
print('Trees compared with GNU tar\'s (bench/tree-diff.mjs):')
print()
print('| case | tool | result |')
print('|---|---|---|')
for case, tool, res in checks:
    print(f'| {case} | {tool} | {res} |')
PY
cat "$OUT/results.md"
echo "(results: $OUT/results.md; raw runs: $TIMES)" >&2
