# One timed run for the bench scripts (see bench/lib/common.sh `timed`).
# usage: python3 timed.py TIMES.tsv LABEL CASE RUN ERRLOG CMD...
# env: TIMED_DAEMON=PID: CMD is a client of that daemon (dockerd). Its CPU during the run (with
# reaped children) and the peak RSS of its process tree (sampled every 20 ms) are recorded too,
# and its CPU is not counted as other processes'.
import os, subprocess, sys, threading, time
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
daemon = int(os.environ.get('TIMED_DAEMON') or 0)
def proc_cpu(pid):
    with open(f'/proc/{pid}/stat') as f:
        v = f.read().rsplit(')', 1)[1].split()
    return sum(int(x) for x in v[11:15]) / tck  # utime stime cutime cstime
def tree_rss_kb(root):
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        try:
            with open(f'/proc/{p}/statm') as f:
                total += int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024
            for t in os.listdir(f'/proc/{p}/task'):
                with open(f'/proc/{p}/task/{t}/children') as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass  # exited meanwhile
    return total
peak = [0]
stop = threading.Event()
def sample():
    while True:
        peak[0] = max(peak[0], tree_rss_kb(daemon))
        if stop.wait(0.02):
            return
with open(errlog, 'ab') as err:
    if daemon:
        d0 = proc_cpu(daemon)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    r0 = refaults()
    b0 = busy()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    b1 = busy()
    r1 = refaults()
    dcpu = 0.0
    if daemon:
        dcpu = proc_cpu(daemon) - d0
        stop.set()
        sampler.join()
p.returncode = rc = os.waitstatus_to_exitcode(status)
cpu = ru.ru_utime + ru.ru_stime
other = max(0.0, b1 - b0 - cpu - dcpu)
with open(times, 'a') as f:
    f.write(f'{label}\t{case}\t{run}\t{wall:.4f}\t{ru.ru_maxrss}\t{cpu:.3f}\t{other:.2f}\t{rc}\t{ru.ru_majflt}\t{r1 - r0}'
            f'\t{dcpu:.3f}\t{peak[0]}\n')
print(f'  {case:<10} {label:<16} run {run}: {wall:7.3f} s  {ru.ru_maxrss / 1024:7.1f} MiB'
      f'  cpu {cpu:6.2f} s  other {other:5.2f} s  majflt {ru.ru_majflt}  refaults {r1 - r0}'
      + (f'  daemon cpu {dcpu:6.2f} s  tree {peak[0] / 1024:7.1f} MiB' if daemon else '')
      + ('' if rc == 0 else f'  EXIT {rc}'),
      file=sys.stderr)
