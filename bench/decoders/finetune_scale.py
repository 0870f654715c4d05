#!/work/wt/venv-hf/bin/python
"""Decoder finetune speed and memory, otfuse vs PyTorch, on the 124M GPT-2 of bench/decoders/make_scale.py
(issue 31 item 4: "finetune at >= PyTorch's speed with <= 1.2x its memory").

Both sides do the same work: the causal-LM loss on blocks of --length tokens of train.txt (each line + EOS,
concatenated, cut into blocks), --batch blocks per step, AdamW (lr 2e-4, weight decay 0.01, betas 0.9/0.999),
gradient clipping at norm 1, float32, 2 threads (ONNX Runtime's default on this 2-core machine; torch.set_num_threads(2)).
otfuse: `node bin/otfuse.js finetune MODEL --data train.txt --max-length L --batch-size B --max-steps N -o out.onnx`
(needs `npm run build`). PyTorch: this file with --torch-child (transformers' GPT2LMHeadModel.from_pretrained).

Each side runs as its own child process twice, with --steps-short and --steps-long steps; the per-step cost is the
difference of the two runs' user+system CPU seconds divided by the step difference (setup: import, graph building,
tokenization cancel out), and memory is each child's peak RSS (wait4's ru_maxrss) of the long run. The machine is
shared: CPU seconds, not wall time, are the comparable figure; the load average is recorded.

Usage: /work/wt/venv-hf/bin/python bench/decoders/finetune_scale.py [--model .cache/decoders-scale/gpt2-124m-s0]
       [--batch 4] [--length 128] [--steps-short 2] [--steps-long 6] [--out bench/decoders/finetune-scale.json]
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def torch_child(a):
    import torch
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast
    torch.set_num_threads(2)
    torch.manual_seed(0)
    tok = PreTrainedTokenizerFast.from_pretrained(a.model)
    ids = []
    with open(a.data, encoding='utf-8') as fh:
        for ln in fh:
            if ln.strip():
                ids += tok(ln.strip())['input_ids'] + [tok.eos_token_id]
    n = len(ids) // a.length
    data = torch.tensor(ids[: n * a.length]).view(n, a.length)
    model = GPT2LMHeadModel.from_pretrained(a.model, dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(n, generator=g)
    step_cpu = []
    for step in range(a.steps):
        c0 = time.process_time()
        x = data[order[step * a.batch:(step + 1) * a.batch]]
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step_cpu.append(time.process_time() - c0)
    print(json.dumps(dict(loss=float(loss), step_cpu=step_cpu)))


def run_child(cmd):
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read().decode('utf-8', 'replace')
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f'{cmd[0]} failed ({status}):\n{out[-3000:]}')
    return dict(cpu=ru.ru_utime + ru.ru_stime, user=ru.ru_utime, sys=ru.ru_stime, wall=time.time() - t0,
                peak_rss_mib=ru.ru_maxrss / 1024, tail=out.strip().splitlines()[-3:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default=os.path.join(ROOT, '.cache', 'decoders-scale', 'gpt2-124m-s0'))
    ap.add_argument('--data', default=None)
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--length', type=int, default=128)
    ap.add_argument('--steps', type=int, default=0)
    ap.add_argument('--steps-short', type=int, default=2)
    ap.add_argument('--steps-long', type=int, default=6)
    ap.add_argument('--only', default='otfuse,torch')
    ap.add_argument('--out', default=None)
    ap.add_argument('--torch-child', action='store_true')
    a = ap.parse_args()
    a.data = a.data or os.path.join(os.path.dirname(a.model), 'train.txt')
    if a.torch_child:
        return torch_child(a)
    tmp = tempfile.mkdtemp(prefix='otfuse-ftscale-')
    load0 = os.getloadavg()
    sides = {}
    for side in a.only.split(','):
        runs = {}
        for steps in (a.steps_short, a.steps_long):
            if side == 'otfuse':
                cmd = ['node', 'bin/otfuse.js', 'finetune', a.model, '--data', a.data, '--max-length', str(a.length),
                       '--batch-size', str(a.batch), '--max-steps', str(steps), '--lr', '2e-4', '--weight-decay', '0.01',
                       '--clip-norm', '1', '-o', os.path.join(tmp, f'ft{steps}.onnx')]
            else:
                cmd = [sys.executable, os.path.abspath(__file__), '--torch-child', '--model', a.model, '--data', a.data,
                       '--batch', str(a.batch), '--length', str(a.length), '--steps', str(steps)]
            runs[steps] = run_child(cmd)
            print(side, steps, {k: v for k, v in runs[steps].items()}, flush=True)
        s, l = runs[a.steps_short], runs[a.steps_long]
        sides[side] = dict(runs={str(k): v for k, v in runs.items()},
                           cpu_per_step=(l['cpu'] - s['cpu']) / (a.steps_long - a.steps_short),
                           peak_rss_mib=l['peak_rss_mib'])
    report = dict(date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), machine=f'{os.cpu_count()} cores, {platform.processor() or platform.machine()}',
                  load_avg_start=load0, load_avg_end=os.getloadavg(), model=os.path.relpath(a.model, ROOT), batch=a.batch,
                  length=a.length, steps=[a.steps_short, a.steps_long], sides=sides)
    if 'otfuse' in sides and 'torch' in sides:
        report['cpu_per_step_ratio_otfuse_over_torch'] = sides['otfuse']['cpu_per_step'] / sides['torch']['cpu_per_step']
        report['peak_rss_ratio_otfuse_over_torch'] = sides['otfuse']['peak_rss_mib'] / sides['torch']['peak_rss_mib']
    print(json.dumps({k: v for k, v in report.items() if k != 'sides'}, indent=1))
    if a.out:
        with open(a.out, 'w') as fh:
            json.dump(report, fh, indent=1)
            fh.write('\n')


if __name__ == '__main__':
    main()
