# scipy side of bench/ot/lap-side.ts (run by it with Debian's /usr/bin/python3, one BLAS/OpenMP thread).
# Usage: python3 lap_side.py C.f64 n reps → one JSON line: scipy.optimize.linear_sum_assignment's user+system CPU
# seconds per solve (median over reps, getrusage of this process), its cost (sum of the assigned entries) and its
# assignment (row → column) written next to C as C.f64.scipy.i32.
import json, resource, sys
import numpy as np
import scipy
from scipy.optimize import linear_sum_assignment

C = np.fromfile(sys.argv[1], dtype=np.float64).reshape(int(sys.argv[2]), int(sys.argv[2]))
reps = int(sys.argv[3])


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


times, cols = [], None
for _ in range(reps):
    t = cpu()
    rows, cols = linear_sum_assignment(C)
    times.append(cpu() - t)
cols.astype(np.int32).tofile(sys.argv[1] + '.scipy.i32')
print(json.dumps({'cpu_s': sorted(times)[len(times) // 2], 'cost': float(C[rows, cols].sum()), 'scipy': scipy.__version__}))
