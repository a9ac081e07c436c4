# One timed run for the bench scripts (see bench/lib/common.sh `timed`).
# usage: python3 timed.py TIMES.tsv LABEL CASE RUN ERRLOG CMD...
import os, subprocess, sys, time
times, label, case, run, errlog = sys.argv[1:6]
cmd = sys.argv[6:]
tck = os.sysconf('SC_CLK_TCK')
def busy():
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / tck
quiet = float(os.environ.get('QUIET_WAIT', '30'))
deadline = time.monotonic() + quiet
while time.monotonic() < deadline:
    b = busy()
    time.sleep(1)
    if busy() - b < 0.2:
        break
def refaults():
    with open('/proc/vmstat') as f:
        return sum(int(l.split()[1]) for l in f if l.startswith('workingset_refault'))
with open(errlog, 'ab') as err:
    r0 = refaults()
    b0 = busy()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    b1 = busy()
    r1 = refaults()
p.returncode = rc = os.waitstatus_to_exitcode(status)
cpu = ru.ru_utime + ru.ru_stime
other = max(0.0, b1 - b0 - cpu)
with open(times, 'a') as f:
    f.write(f'{label}\t{case}\t{run}\t{wall:.4f}\t{ru.ru_maxrss}\t{cpu:.3f}\t{other:.2f}\t{rc}\t{ru.ru_majflt}\t{r1 - r0}\n')
print(f'  {case:<10} {label:<16} run {run}: {wall:7.3f} s  {ru.ru_maxrss / 1024:7.1f} MiB'
      f'  cpu {cpu:6.2f} s  other {other:5.2f} s  majflt {ru.ru_majflt}  refaults {r1 - r0}'
      + ('' if rc == 0 else f'  EXIT {rc}'),
      file=sys.stderr)
