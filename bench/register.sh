#!/usr/bin/env bash
# Registering a layer: `layerstore layer register` (vfs: extract + sha256 + tar-split in one
# pass) next to GNU `tar -x` + `sha256sum` of the same file, on the same tars, in one run: wall
# time and max RSS (median of RUNS, runs interleaved), and a check that the registered layer
# exports byte for byte.
#
# usage: bench/register.sh DATA_DIR WORK_DIR [RUNS]
#   DATA_DIR  holds rootfs.tar and smallfiles.tar (read only)
#   WORK_DIR  scratch space on the benchmark filesystem (a journaled ext4); the run goes under
#             WORK_DIR/register-bench, wiped at the start
# env: CASES, QUIET_WAIT, LAYERSTORE_DIST as in apply.sh. Run as root.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
bench_args "$@"
CASES=${CASES:-rootfs smallfiles}
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIST=${LAYERSTORE_DIST:-$REPO/dist}
[ -f "$DIST/cli/layerstore.mjs" ] || {
  echo "register.sh: $DIST/cli/layerstore.mjs not found; build first" >&2
  exit 1
}
OUT=$WORK/register-bench
rm -rf "$OUT"
mkdir -p "$OUT/logs"
copy_build "$DIST"
CLI=$OUT/layerstore/dist/cli/layerstore.mjs
results_files
check_fs "$WORK"
{
  echo "# layer register: ours vs GNU tar -x + sha256sum"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -r), $(nproc) CPUs"
  echo "- node $(node --version); $(tar --version | head -1); layerstore $(git -C "$REPO" rev-parse --short HEAD)"
  echo "- work dir: $WORK ($FSTYPE on $FSDEV, journal: $JOURNAL); runs: $RUNS"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

for c in $CASES; do
  T=$DATA/$c.tar
  C=$OUT/$c
  mkdir -p "$C"
  printf '%s\t%s\t%s\n' "$c" "$(stat -c %s "$T")" "$(tar -tf "$T" | wc -l)" >>"$CASEINFO"
  for r in $(seq 1 "$RUNS"); do
    warm "$T"
    timed tar+sha256sum "$c" "$r" "$C/gnu" \
      sh -c 'mkdir "$2" && tar --numeric-owner --xattrs --xattrs-include="*" -xpf "$1" -C "$2" && sha256sum "$1" >/dev/null' \
      sh "$T" "$C/gnu"
    warm "$T"
    timed register "$c" "$r" "$C/store" "$CLI" --root "$C/store" --driver vfs layer register "$T"
  done
  id=$("$CLI" --root "$C/store" --driver vfs layer register "$T")
  if "$CLI" --root "$C/store" --driver vfs layer export "$id" | cmp -s - "$T"; then
    res=identical
  else res=DIFFERENT; fi
  printf '%s\texport\t%s\n' "$c" "$res" >>"$CHECKS"
  rm -rf "$C"
done

python3 - "$OUT" >"$OUT/results.md" <<'PY'
import statistics, sys
out = sys.argv[1]
rows = [l.rstrip('\n').split('\t') for l in open(f'{out}/times.tsv') if l.strip()]
cases = [l.rstrip('\n').split('\t') for l in open(f'{out}/cases.tsv') if l.strip()]
checks = [l.rstrip('\n').split('\t') for l in open(f'{out}/checks.tsv') if l.strip()]
print(open(f'{out}/header.md').read())
print('| case | tool | median s | max RSS MiB | time / (tar + sha256sum) | runs (s) | other CPU s |')
print('|---|---|---:|---:|---:|---|---:|')
for case, size, entries in cases:
    base = [float(r[3]) for r in rows if r[0] == 'tar+sha256sum' and r[1] == case]
    b = statistics.median(base) if base else None
    for label in ('tar+sha256sum', 'register'):
        rs = [r for r in rows if r[0] == label and r[1] == case]
        if not rs:
            continue
        walls = [float(r[3]) for r in rs]
        w = statistics.median(walls)
        ok = all(r[7] == '0' for r in rs)
        rss = statistics.median(int(r[4]) for r in rs) / 1024
        print(f"| {case} ({int(size) / 1e6:.0f} MB, {int(entries):,} entries) | {label} "
              f"| {w:.3f}{'' if ok else ' FAILED'} | {rss:.0f} | {w / b:.2f} "
              f"| {' '.join(f'{x:.2f}' for x in walls)} | {max(float(r[6]) for r in rs):.2f} |")
print()
for case, what, res in checks:
    print(f'- {case}: registered layer exported byte for byte: {res}')
PY
cat "$OUT/results.md"
