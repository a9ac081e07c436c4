# Shared by the bench scripts: their arguments, the copy of our build they measure, the
# benchmark-filesystem check, page-cache warming and the timed run. Source it after setting
# REPO (the repository); set OUT (the script's output directory) and TIMES (its times.tsv)
# before calling copy_build, warm or timed.

# bench_args "$@": DATA_DIR WORK_DIR [RUNS] -> DATA, WORK (absolute) and RUNS (default 5);
# anything else is a usage error (exit 2).
bench_args() {
  if [ $# -lt 2 ] || [ $# -gt 3 ] || ! [[ ${3:-5} =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 DATA_DIR WORK_DIR [RUNS]" >&2
    exit 2
  fi
  DATA=$(cd "$1" && pwd)
  WORK=$(cd "$2" && pwd)
  RUNS=${3:-5}
}

# copy_build DIST: our build (DIST, the native addon in build/, package.json) copied to
# $OUT/layerstore, so that a rebuild during the run cannot change what is measured.
copy_build() {
  mkdir -p "$OUT/layerstore"
  cp -a "$1" "$OUT/layerstore/dist"
  cp -a "$REPO/build" "$OUT/layerstore/build" # the native addon, found relative to dist/
  cp "$REPO/package.json" "$OUT/layerstore/"
}

# check_fs DIR: warns unless DIR is on a journaled ext4 (see ../shared/bench/README.md: on the
# journal-less root fs, creating files after mass deletes is slow and would be measured).
# Sets FSTYPE, FSDEV and JOURNAL for the results header.
check_fs() {
  FSTYPE=$(findmnt -no FSTYPE -T "$1" || true)
  FSDEV=$(findmnt -no SOURCE -T "$1" || true)
  JOURNAL=unknown
  if [ "$FSTYPE" = ext4 ] && command -v dumpe2fs >/dev/null; then
    if dumpe2fs -h "$FSDEV" 2>/dev/null | grep -q '^Filesystem features:.*has_journal'; then
      JOURNAL=yes
    else
      JOURNAL=no
    fi
  fi
  if [ "$FSTYPE" != ext4 ] || [ "$JOURNAL" = no ]; then
    echo "WARNING: $1 is on $FSTYPE ($FSDEV, journal: $JOURNAL), not a journaled ext4" >&2
  fi
}

# warm PATH...: read files, and every file under directories, into the page cache. Done before
# each run, not once: on a shared VM, other sessions' memory use evicts it.
warm() {
  local p
  for p in "$@"; do
    if [ -d "$p" ]; then
      find "$p" -type f -print0 | xargs -0 -r cat >/dev/null
    else
      cat "$p" >/dev/null
    fi
  done
}

# timed LABEL CASE RUN CLEANUP_PATH CMD...: remove CLEANUP_PATH and sync (untimed), time CMD.
# Wall time, max RSS, CPU, major faults and the CPU other processes used go to $TIMES.
timed() {
  local label=$1 case=$2 run=$3 out=$4
  shift 4
  rm -rf "$out"
  sync
  python3 "$(dirname "${BASH_SOURCE[0]}")/timed.py" "$TIMES" "$label" "$case" "$run" \
    "$OUT/logs/$case-$label.err" "$@"
}

# results_files: empty $OUT/times.tsv (label case run wall_s maxrss_kb cpu_s other_cpu_s rc
# majflt refaults [daemon_cpu_s daemon_rss_kb], see timed.py), cases.tsv and checks.tsv
# (TIMES, CASEINFO, CHECKS), and
# `check WHAT CHECK RESULT` to add a line to the checks.
results_files() {
  TIMES=$OUT/times.tsv
  CASEINFO=$OUT/cases.tsv
  CHECKS=$OUT/checks.tsv
  : >"$TIMES"
  : >"$CASEINFO"
  : >"$CHECKS"
}
check() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$CHECKS"; }

# umount_under DIR: unmounts every mount below DIR, deepest first (a leftover overlay mount
# would make rm -rf delete through it).
umount_under() {
  findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r | xargs -r -n1 umount
}

# A private dockerd (see ../shared/bench/bench-docker.sh): `dockerd_setup` once (a short
# RUNDIR in /tmp for its socket and exec root, DOCKER_HOST), then `start_dockerd ROOT` on a
# fresh data root (DPID; overlay2, unix socket, no networking, not the host's daemon.json) and
# `stop_dockerd` (by PID; SIGKILL after 30 s). Needs DOCKERD, DK and OUT; logs to
# $OUT/logs/dockerd.log.
dockerd_setup() {
  RUNDIR=$(mktemp -d "/tmp/$1.XXXXXX")
  DPID=
  export DOCKER_HOST=unix://$RUNDIR/docker.sock
  echo '{}' >"$RUNDIR/daemon.json"
}
start_dockerd() {
  local root=$1
  rm -rf "$root" "$RUNDIR/exec"
  setsid "$DOCKERD" --config-file "$RUNDIR/daemon.json" --data-root "$root" \
    --exec-root "$RUNDIR/exec" --pidfile "$RUNDIR/docker.pid" --host "$DOCKER_HOST" \
    --storage-driver overlay2 --iptables=false --ip6tables=false --ip-forward=false \
    --ip-masq=false --bridge=none --userland-proxy=false --log-level=warn \
    >>"$OUT/logs/dockerd.log" 2>&1 </dev/null &
  DPID=$!
  local i
  for i in $(seq 120); do
    "$DK" version >/dev/null 2>&1 && break
    kill -0 "$DPID" 2>/dev/null || die "dockerd exited (see $OUT/logs/dockerd.log)"
    [ "$i" -lt 120 ] || die "dockerd did not answer in 60 s (see $OUT/logs/dockerd.log)"
    sleep 0.5
  done
  [ "$(cat "$RUNDIR/docker.pid")" = "$DPID" ] || die "dockerd pid file does not match"
  [ "$("$DK" info --format '{{.Driver}}')" = overlay2 ] || die "dockerd is not on overlay2"
}
stop_dockerd() {
  [ -n "$DPID" ] || return 0
  kill "$DPID" 2>/dev/null || true
  local i
  for i in $(seq 60); do
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$DPID" 2>/dev/null; then # not stopped in 30 s: the next run needs its pidfile
    echo "dockerd $DPID did not stop on SIGTERM; killed" >&2
    kill -9 "$DPID" 2>/dev/null || true
    sleep 1
  fi
  DPID=
}
