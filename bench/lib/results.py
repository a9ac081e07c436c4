"""Shared by the bench scripts' result tables: reading OUT's tsv files (see common.sh) and one
table row's figures. Columns of times.tsv: label case run wall_s maxrss_kb cpu_s other_cpu_s rc
majflt refaults [daemon_cpu_s daemon_rss_kb]."""
import statistics


def load(out):
    """times.tsv, cases.tsv and checks.tsv of OUT, as lists of fields; and the header text."""
    def tsv(name):
        return [l.rstrip('\n').split('\t') for l in open(f'{out}/{name}') if l.strip()]
    return tsv('times.tsv'), tsv('cases.tsv'), tsv('checks.tsv'), open(f'{out}/header.md').read()


def runs(rows, label, case):
    return [r for r in rows if r[0] == label and r[1] == case]


def median_wall(rows, label, case):
    rs = runs(rows, label, case)
    return statistics.median(float(r[3]) for r in rs) if rs else None


def figures(rs):
    """Median wall, all ok, median CPU (with a daemon's), median max RSS in MiB (the larger of
    the process tree's and a daemon's), the walls, the most CPU other processes used, and
    whether a daemon took part."""
    walls = [float(r[3]) for r in rs]
    daemon_cpu = lambda r: float(r[10]) if len(r) > 10 else 0.0
    daemon_rss = lambda r: int(r[11]) if len(r) > 11 else 0
    return {
        'wall': statistics.median(walls),
        'ok': all(r[7] == '0' for r in rs),
        'cpu': statistics.median(float(r[5]) + daemon_cpu(r) for r in rs),
        'rss': statistics.median(max(int(r[4]), daemon_rss(r)) for r in rs) / 1024,
        'walls': ' '.join(f'{w:.2f}' for w in walls),
        'other': max(float(r[6]) for r in rs),
        'daemon': any(daemon_cpu(r) > 0 or daemon_rss(r) > 0 for r in rs),
    }


def table_head(title, ratio_column):
    print(f'## {title}\n')
    print(f'| case | tool | median s | CPU s | max RSS MiB | {ratio_column} | runs (s) | other CPU s |')
    print('|---|---|---:|---:|---:|---:|---|---:|')


def table_row(case, tool, f, ratio):
    print(f"| {case} | {tool} | {f['wall']:.3f}{'' if f['ok'] else ' FAILED'} | {f['cpu']:.2f} "
          f"| {f['rss']:.0f} | {ratio} | {f['walls']} | {f['other']:.2f} |")


def print_checks(checks):
    for what, check, res in checks:
        print(f'- {what}: {check}: {res}')
