#!/usr/bin/env bash
# Our `layerstore tar-split disasm|asm` next to Go's `tar-split` (same roles, same metadata
# format), on the same tars, in one run: wall time and max RSS (median of RUNS, runs
# interleaved tool by tool), byte-identity of every assembled tar, cross-assembly (each tool
# assembles the other's metadata), and a markdown table.
#
# usage: bench/tarsplit.sh DATA_DIR WORK_DIR [RUNS]
#   DATA_DIR  holds rootfs.tar and smallfiles.tar (read only)
#   WORK_DIR  scratch space on the benchmark filesystem (a journaled ext4, see
#             ../shared/bench/README.md); everything this script creates goes under
#             WORK_DIR/tarsplit-bench, which is wiped at the start
#   RUNS      timed runs per tool and case (default 5)
# env: CASES="rootfs smallfiles"   which DATA_DIR/NAME.tar to run
#      KEEP=1                       keep the extracted trees
#      QUIET_WAIT=30                before each timed run, wait up to this many seconds for a
#                                   second in which other processes use < 0.2 CPU-s (0: off)
#      LAYERSTORE_DIST=DIR          our build to test (default: the repo's dist/)
#
# Build first: (cd "$(dirname "$0")/.." && npx tsc -p .). The build is copied under WORK_DIR
# at the start, so a rebuild of the repo during the run does not change what is measured.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
bench_args "$@"
CASES=${CASES:-rootfs smallfiles}
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIST=${LAYERSTORE_DIST:-$REPO/dist}

die() {
  echo "tarsplit.sh: $*" >&2
  exit 1
}
[ -f "$DIST/cli/layerstore.mjs" ] || die "$DIST/cli/layerstore.mjs not found; build first: (cd $REPO && npm run build)"
command -v tar-split >/dev/null || die "Go tar-split not installed (apt-get install tar-split)"
command -v node >/dev/null || die "node not found"
for c in $CASES; do [ -f "$DATA/$c.tar" ] || die "$DATA/$c.tar not found"; done

OUT=$WORK/tarsplit-bench
rm -rf "$OUT"
mkdir -p "$OUT/logs"
copy_build "$DIST"
CLI=$OUT/layerstore/dist/cli/layerstore.mjs
results_files

check_fs "$WORK"
fstype=$FSTYPE fsdev=$FSDEV journal=$JOURNAL

GO=(tar-split)
OURS=("$CLI" tar-split)
go_asm() { "${GO[@]}" asm --input "$1" --path "$2" --output "$3"; }
ours_asm() { "${OURS[@]}" asm --input "$1" --path "$2" -o "$3"; }

# check CASE NAME FILE INPUT: byte-identity of an assembled tar, recorded in checks.tsv.
check() {
  local res
  if [ -f "$3" ] && cmp -s "$3" "$4"; then res=identical; else res=DIFFERENT; fi
  [ -f "$3" ] || res=MISSING
  printf '%s\t%s\t%s\n' "$1" "$2" "$res" >>"$CHECKS"
  echo "  check $1 $2: $res" >&2
}

{
  echo "# tar-split: ours vs Go"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -r), $(nproc) CPUs," \
    "$(free -g | awk '/^Mem:/{print $2}') GiB RAM"
  echo "- node $(node --version); Go tar-split $(tar-split --version 2>&1 | awk '{print $NF}')" \
    "(dpkg $(dpkg-query -W -f '${Version}' tar-split 2>/dev/null || echo '?'));" \
    "layerstore $DIST$(
      [ "$DIST" != "$REPO/dist" ] || echo " (repo $(git -C "$REPO" rev-parse --short HEAD)$(
        git -C "$REPO" diff --quiet HEAD -- src || echo ' + uncommitted changes in src/'))"
    ), built $(date -u -r "$DIST/cli/layerstore.mjs" +%H:%MZ)"
  echo "- work dir: $WORK ($fstype on $fsdev, journal: $journal); runs: $RUNS"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

for c in $CASES; do
  T=$DATA/$c.tar
  C=$OUT/$c
  mkdir -p "$C/tree"
  echo "== $c: prepare (untimed)" >&2
  entries=$(tar -tf "$T" | wc -l)
  tar --numeric-owner --xattrs -xpf "$T" -C "$C/tree"
  printf '%s\t%s\t%s\n' "$c" "$(stat -c %s "$T")" "$entries" >>"$CASEINFO"

  echo "== $c: disasm x $RUNS" >&2
  for r in $(seq 1 "$RUNS"); do
    warm "$T"
    timed go-disasm "$c" "$r" "$C/go.json.gz" \
      "${GO[@]}" disasm --no-stdout --output "$C/go.json.gz" "$T"
    warm "$T"
    timed ours-disasm "$c" "$r" "$C/ours.json.gz" \
      "${OURS[@]}" disasm --no-stdout -o "$C/ours.json.gz" "$T"
    warm "$T"
    timed ours-disasm-l6 "$c" "$r" "$C/ours6.json.gz" \
      "${OURS[@]}" disasm --no-stdout -o "$C/ours6.json.gz" --level 6 "$T"
  done

  echo "== $c: asm x $RUNS (each tool from its own metadata)" >&2
  for r in $(seq 1 "$RUNS"); do
    warm "$C/go.json.gz" "$C/tree"
    timed go-asm "$c" "$r" "$C/asm-go.tar" \
      "${GO[@]}" asm --input "$C/go.json.gz" --path "$C/tree" --output "$C/asm-go.tar"
    warm "$C/ours.json.gz" "$C/tree"
    timed ours-asm "$c" "$r" "$C/asm-ours.tar" \
      "${OURS[@]}" asm --input "$C/ours.json.gz" --path "$C/tree" -o "$C/asm-ours.tar"
  done

  echo "== $c: checks" >&2
  check "$c" "Go asm (Go meta)" "$C/asm-go.tar" "$T"
  check "$c" "ours asm (ours meta)" "$C/asm-ours.tar" "$T"
  rm -f "$C/asm-go.tar" "$C/asm-ours.tar"
  go_asm "$C/ours.json.gz" "$C/tree" "$C/x.tar" 2>>"$OUT/logs/$c-cross.err" || true
  check "$c" "Go asm (ours meta, level 1)" "$C/x.tar" "$T"
  rm -f "$C/x.tar"
  go_asm "$C/ours6.json.gz" "$C/tree" "$C/x.tar" 2>>"$OUT/logs/$c-cross.err" || true
  check "$c" "Go asm (ours meta, level 6)" "$C/x.tar" "$T"
  rm -f "$C/x.tar"
  ours_asm "$C/go.json.gz" "$C/tree" "$C/x.tar" 2>>"$OUT/logs/$c-cross.err" || true
  check "$c" "ours asm (Go meta)" "$C/x.tar" "$T"
  rm -f "$C/x.tar"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$C/tree"
done

rc=0
python3 - "$OUT" "$RUNS" >"$OUT/results.md" <<'PY' || rc=$?
import gzip, os, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rows = [l.rstrip('\n').split('\t') for l in open(f'{out}/times.tsv') if l.strip()]
cases = [l.rstrip('\n').split('\t') for l in open(f'{out}/cases.tsv') if l.strip()]
checks = [l.rstrip('\n').split('\t') for l in open(f'{out}/checks.tsv') if l.strip()]
TOOLS = [  # label, shown as, baseline label
    ('go-disasm', 'Go `disasm --no-stdout`', None),
    ('ours-disasm', 'ours `disasm --no-stdout` (level 1)', 'go-disasm'),
    ('ours-disasm-l6', 'ours `disasm --no-stdout --level 6`', 'go-disasm'),
    ('go-asm', 'Go `asm`', None),
    ('ours-asm', 'ours `asm`', 'go-asm'),
]
def stats(label, case):
    rs = [r for r in rows if r[0] == label and r[1] == case]
    if not rs:
        return None
    ok = all(r[7] == '0' for r in rs)
    return dict(ok=ok, wall=statistics.median(float(r[3]) for r in rs),
                majflt=max(int(r[8]) for r in rs), refaults=max(int(r[9]) for r in rs),
                rss=statistics.median(int(r[4]) for r in rs) / 1024,
                walls=[float(r[3]) for r in rs], other=max(float(r[6]) for r in rs))
print(open(f'{out}/header.md').read())
print('Wall time: median of runs (runs of the tools interleaved; inputs read into the page '
      'cache and `sync` before each run, untimed). MB/s = tar bytes / median time, '
      '1 MB = 10^6 B. Max RSS: median over runs of the process max RSS, MiB. Ratio: ours / Go '
      '(> 1: ours slower or bigger). Disturbance, worst run: "other CPU" = CPU-seconds used by '
      'other processes; "majflt" = major page faults of the process; "refaults" = page-cache '
      'pages the machine re-read (evicted by memory pressure). Large values: re-run.')
print()
print('| case | tool | median s | MB/s | max RSS MiB | time ours/Go | RSS ours/Go '
      '| runs (s) | other CPU s | majflt | refaults |')
print('|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|')
slow = []
for case, size, entries in cases:
    size = int(size)
    for label, name, base in TOOLS:
        s = stats(label, case)
        if s is None:
            continue
        b = stats(base, case) if base else None
        runs_s = ' '.join(f'{w:.2f}' for w in s['walls'])
        if not s['ok']:
            print(f'| {case} | {name} | FAILED | | | | | {runs_s} | | | |')
            slow.append((case, label, 'failed'))
            continue
        tr = rr = ''
        if b and b['ok']:
            tr, rr = s['wall'] / b['wall'], s['rss'] / b['rss']
            if tr > 1.5:
                slow.append((case, label, f'{tr:.1f}x Go'))
            tr, rr = f'{tr:.2f}', f'{rr:.2f}'
        print(f"| {case} ({size / 1e6:.0f} MB, {int(entries):,} entries) | {name} "
              f"| {s['wall']:.3f} | {size / 1e6 / s['wall']:.0f} | {s['rss']:.0f} | {tr} | {rr} "
              f"| {runs_s} | {s['other']:.2f} | {s['majflt']} | {s['refaults']} |")
print()
print('Metadata (tar-split.json.gz):')
print()
print('| case | Go (gzip default = 6) | ours level 1 | ours level 6 | JSON uncompressed '
      '(Go / ours) | JSON lines equal |')
print('|---|---:|---:|---:|---:|---|')
for case, size, entries in cases:
    p = lambda n: f'{out}/{case}/{n}.json.gz'
    if not all(os.path.exists(p(n)) for n in ('go', 'ours', 'ours6')):
        print(f'| {case} | missing | | | | |')
        continue
    sz = {n: os.path.getsize(p(n)) for n in ('go', 'ours', 'ours6')}
    try:
        g = gzip.open(p('go')).read()
        o = gzip.open(p('ours')).read()
        o6 = gzip.open(p('ours6')).read()
    except Exception as e:
        print(f'| {case} | unreadable: {e} | | | | |')
        continue
    gl, ol = g.splitlines(), o.splitlines()
    if gl == ol:
        eq = 'yes'
    else:
        nd = sum(1 for a, c in zip(gl, ol) if a != c) + abs(len(gl) - len(ol))
        eq = f'no: {nd} of {len(gl)}/{len(ol)} lines differ'
        if gl[:-1] == ol and (b'"payload":""' in gl[-1] or b'"payload":null' in gl[-1]):
            eq = 'yes, but for the empty trailing segment Go 0.11 always writes'
    eq += '' if o6 == o else '; level 6 JSON differs from level 1!'
    pct = lambda n: f'{sz[n]:,} ({100 * sz[n] / int(size):.2f} %)'
    print(f"| {case} | {pct('go')} | {pct('ours')} | {pct('ours6')} | {len(g):,} / {len(o):,} "
          f'| {eq} |')
print()
print('Checks (assembled tar vs input, `cmp`):')
print()
print('| case | assembly | result |')
print('|---|---|---|')
for case, what, res in checks:
    print(f'| {case} | {what} | {res} |')
bad = [c for c in checks if c[2] != 'identical']
print()
print(f"**{len(checks) - len(bad)} of {len(checks)} assembled tars identical to their input.**")
if slow:
    print()
    print('Ours failed or is slow (' + ', '.join(f'{c} {l}: {w}' for c, l, w in slow) + '). '
          'Profile hint:')
    print()
    print('```sh')
    print('node --cpu-prof --cpu-prof-dir=/tmp/prof dist/cli/main.js tar-split disasm '
          '--no-stdout -o /tmp/prof/meta.json.gz DATA_DIR/smallfiles.tar')
    print('node bench/cpuprof-top.mjs /tmp/prof/*.cpuprofile   # top self-time functions')
    print('```')
sys.exit(1 if bad else 0)
PY
cat "$OUT/results.md"
echo "(results: $OUT/results.md; raw runs: $TIMES)" >&2
exit $rc
