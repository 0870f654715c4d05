#!/usr/bin/python3
"""PyTorch anchor for the scale finetune: the same ViT-B/16 (scripts/fixtures/make_scale.py's module tree, random
init), AdamW, cross-entropy, batch 8, on the scale calibration images; prints img/s over the timed steps and the
process's peak RSS. Run it next to `otfuse finetune .cache/scale/vitB_s1.onnx --data .cache/scale/calib_vit224_200.npz
--batch-size 8 --max-steps 6` with the same thread count.

Usage: /usr/bin/python3 bench/scale/torch_finetune.py [--model vitB] [--batch 8] [--steps 6] [--threads 2]
"""
import argparse
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'scripts', 'fixtures'))
import make_scale  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='vitB')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--data', default='.cache/scale/calib_vit224_200.npz')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c = make_scale.CONFIGS[a.model]
    torch.manual_seed(1)
    model = make_scale.ViTForImageClassification(c)
    make_scale.init_weights(model)
    model.train()
    data = np.load(a.data)
    x, y = torch.from_numpy(data['x']), torch.from_numpy(data['y'].astype(np.int64))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    times = []
    for step in range(a.steps):
        i = (step * a.batch) % (len(x) - a.batch)
        t = time.time()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x[i:i + a.batch]), y[i:i + a.batch])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.time() - t)
    timed = times[1:] or times
    print(f'torch {torch.__version__} {a.model} batch {a.batch} threads {a.threads}: '
          f'{a.batch * len(timed) / sum(timed):.2f} img/s over {len(timed)} steps (first step {times[0]:.1f} s), '
          f'peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB')


if __name__ == '__main__':
    main()
