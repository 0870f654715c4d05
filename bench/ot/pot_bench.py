# Times POT's ot.emd and ot.sinkhorn on a cost matrix saved by ot.bench.ts (run with Debian's /usr/bin/python3).
# Usage: python3 pot_bench.py M.npy reg repeats [emd|no-emd]  → prints one JSON line.
import json, resource, sys, time
import numpy as np
import ot

M = np.load(sys.argv[1])
reg = float(sys.argv[2])
reps = int(sys.argv[3])
with_emd = len(sys.argv) < 5 or sys.argv[4] != 'no-emd'
n, m = M.shape
a, b = np.ones(n) / n, np.ones(m) / m

def med(f):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]

out = {'pot': ot.__version__, 'emd_s': med(lambda: ot.emd(a, b, M)) if with_emd else None,
       'sinkhorn_s': med(lambda: ot.sinkhorn(a, b, M, reg)),
       'emd_cost': float(np.sum(ot.emd(a, b, M) * M)) if with_emd else None,
       'maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(out))
