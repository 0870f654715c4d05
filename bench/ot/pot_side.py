# POT side of bench/ot/side-by-side.ts (run by it with Debian's /usr/bin/python3, one BLAS/OpenMP thread).
# Usage: python3 pot_side.py M.npy reg reps inner outdir [emd|no-emd] [inner_sinkhorn] → prints one JSON line; writes POT's
# plans to outdir.
# Times `inner` calls in a row in user CPU seconds (getrusage, this process) and wall seconds, per call; median over reps.
import json, os, resource, sys, time
import numpy as np
import ot

M = np.load(sys.argv[1])
reg, reps, inner, outdir = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with_emd = len(sys.argv) < 7 or sys.argv[6] != 'no-emd'
inner_sinkhorn = int(sys.argv[7]) if len(sys.argv) > 7 else inner
n, m = M.shape
a, b = np.ones(n) / n, np.ones(m) / m
# POT's default pivot limit (100,000) stops the network simplex early at 3072² with a worse plan; give it enough
# pivots to finish so both sides solve the same problem exactly.
EMD_ITERS = 100_000_000


def user():
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def measure(f, inner=inner):
    us, ws, out = [], [], None
    for _ in range(reps):
        u, w = user(), time.perf_counter()
        for _ in range(inner):
            out = f()
        ws.append((time.perf_counter() - w) / inner)
        us.append((user() - u) / inner)
    return sorted(us)[len(us) // 2], sorted(ws)[len(ws) // 2], out


res = {'pot': ot.__version__, 'numpy': np.__version__}
if with_emd:
    u, w, G = measure(lambda: ot.emd(a, b, M, numItermax=EMD_ITERS))
    res.update(emd_user_s=u, emd_wall_s=w, emd_cost=float(np.sum(G * M)))
    np.save(os.path.join(outdir, 'pot_emd.npy'), G)
u, w, G = measure(lambda: ot.sinkhorn(a, b, M, reg), inner_sinkhorn)
res.update(sinkhorn_user_s=u, sinkhorn_wall_s=w)
# untimed: POT's iteration count (its log's niter is the last loop index ii; otfuse counts ii + 1)
_, log = ot.sinkhorn(a, b, M, reg, log=True)
res['sinkhorn_iterations'] = int(log['niter']) + 1
np.save(os.path.join(outdir, 'pot_sinkhorn.npy'), G)
res['maxrss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(res))
