# Reference comparison against PyTorch on the same machine (run where torch and onnxruntime 1.30 are
# installed, e.g. the lent device machine; this is a benchmark helper, not part of the product):
#  1. PyTorch autograd gradients of the fixture ViT (weights read from the ONNX file) vs the gradients of
#     our generated gradient graph (grad.onnx), on real Fashion-MNIST images;
#  2. training-step throughput: PyTorch (forward + CE + backward + clip + AdamW) vs our step graph
#     (step.onnx) in ONNX Runtime, both on CPU at the same thread counts, batch 128.
# Inputs are written by `node dist-bench/train/finetune.bench.js export DIR`: DIR/grad.onnx, DIR/step.onnx,
# DIR/params.f32 (flat parameters in the step graph's layout). Usage: python3 torch_compare.py DIR OUT.json
import json
import math
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnx import numpy_helper

src, out_path = sys.argv[1], sys.argv[2]
vit = onnx.load('test/fixtures/vit/vit48_s10.onnx')
inits = {t.name: numpy_helper.to_array(t) for t in vit.graph.initializer}
# MatMul weights are exported transposed under anonymous names; the node names carry the module path.
weights = {}
for node in vit.graph.node:
    if node.op_type == 'MatMul' and node.input[1] in inits:
        module = node.name.strip('/').replace('/', '.').rsplit('.', 1)[0]
        weights[module + '.weight'] = (node.input[1], inits[node.input[1]].T.copy())
params = {k: torch.tensor(v) for k, v in inits.items() if not k.startswith('onnx::')}
params.update({k: torch.tensor(v[1]) for k, v in weights.items()})
onnx_name = {k: k for k in params}
onnx_name.update({k: v[0] for k, v in weights.items()})
transposed = set(weights)


def forward(p, x):
    e = F.conv2d(x, p['vit.embeddings.patch_embeddings.projection.weight'], p['vit.embeddings.patch_embeddings.projection.bias'], stride=7)
    e = e.flatten(2).transpose(1, 2)
    h = torch.cat([p['vit.embeddings.cls_token'].expand(x.shape[0], -1, -1), e], 1) + p['vit.embeddings.position_embeddings']
    for i in range(3):
        L = f'vit.encoder.layer.{i}.'
        lin = lambda t, n: F.linear(t, p[L + n + '.weight'], p[L + n + '.bias'])
        a = F.layer_norm(h, (48,), p[L + 'layernorm_before.weight'], p[L + 'layernorm_before.bias'], 1e-12)
        split = lambda t: t.view(t.shape[0], 17, 4, 12).transpose(1, 2)
        q, k, v = (split(lin(a, 'attention.attention.' + n)) for n in ('query', 'key', 'value'))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(12), -1) @ v
        h = h + lin(att.transpose(1, 2).reshape(x.shape[0], 17, 48), 'attention.output.dense')
        m = F.layer_norm(h, (48,), p[L + 'layernorm_after.weight'], p[L + 'layernorm_after.bias'], 1e-12)
        h = h + lin(F.gelu(lin(m, 'intermediate.dense')), 'output.dense')
    h = F.layer_norm(h, (48,), p['vit.layernorm.weight'], p['vit.layernorm.bias'], 1e-12)
    return F.linear(h[:, 0], p['classifier.weight'], p['classifier.bias'])


report = {'torch': torch.__version__, 'onnxruntime': ort.__version__, 'cpus': torch.get_num_threads()}
data = np.load('test/fixtures/vit/calib200.npz')
x = torch.tensor(data['x'][:64])
y = torch.tensor(data['y'][:64]).long()

# 1. gradients
tp = {k: v.clone().requires_grad_(True) for k, v in params.items()}
logits = forward(tp, x)
ref = ort.InferenceSession('test/fixtures/vit/vit48_s10.onnx', providers=['CPUExecutionProvider']).run(None, {'pixel_values': x.numpy()})[0]
report['forward_max_abs_diff'] = float(np.abs(logits.detach().numpy() - ref).max())
F.cross_entropy(logits, y).backward()
gs = ort.InferenceSession(f'{src}/grad.onnx', providers=['CPUExecutionProvider'])
feeds = {'pixel_values': x.numpy(), 'labels': y.numpy()}
for i in gs.get_inputs():
    if i.name not in feeds:
        feeds[i.name] = inits[i.name]
names = [o.name for o in gs.get_outputs()]
outs = dict(zip(names, gs.run(None, feeds)))
worst = []
for k, t in tp.items():
    g_ours = outs['grad:' + onnx_name[k]]
    g_ref = t.grad.numpy().T if k in transposed else t.grad.numpy()
    rel = float(np.abs(g_ours - g_ref).max() / max(np.abs(g_ref).max(), 1e-12))
    worst.append((rel, k))
worst.sort(reverse=True)
report['grad_tensors_compared'] = len(worst)
# Key biases have a true gradient of 0 (softmax ignores a per-row shift): compare those in absolute terms.
report['grad_worst_rel_err'] = [w for w in worst if 'key.bias' not in w[1]][:3]
report['key_bias_grad_max_abs'] = {k: [float(np.abs(outs['grad:' + k]).max()), float(np.abs(tp[k].grad.numpy()).max())] for k in tp if 'key.bias' in k}
report['loss_torch'] = float(F.cross_entropy(logits.detach(), y))
report['loss_ours'] = float(outs['loss'])


# 2. throughput
def torch_steps(threads, steps=40, batch=128):
    torch.set_num_threads(threads)
    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.AdamW(p.values(), lr=1e-4, weight_decay=0.01)
    xb = torch.randn(batch, 1, 28, 28)
    yb = torch.randint(0, 10, (batch,))
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        loss = F.cross_entropy(forward(p, xb), yb)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
        opt.step()
    return batch * steps / (time.perf_counter() - t0)


def ort_steps(threads, steps=40, batch=128, parallel=False):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 2 if parallel else 1
    if parallel:
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    s = ort.InferenceSession(f'{src}/step.onnx', so, providers=['CPUExecutionProvider'])
    flat = np.fromfile(f'{src}/params.f32', dtype=np.float32)
    m, v = np.zeros_like(flat), np.zeros_like(flat)
    xb = np.random.randn(batch, 1, 28, 28).astype(np.float32)
    yb = np.random.randint(0, 10, batch).astype(np.int64)
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        # The step graph returns the gradient and its norm; AdamW (clip 1, wd 0.01 on all, lr 1e-4) on the host, as otfuse does.
        g, norm = s.run(['grad', 'grad_norm'], {'pixel_values': xb, 'labels': yb, 'params': flat})
        g = g * min(1.0, 1.0 / (float(norm) + 1e-6))
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        flat = flat * (1 - 1e-4 * 0.01) - 1e-4 / (1 - 0.9 ** (i + 1)) * m / (np.sqrt(v / (1 - 0.999 ** (i + 1))) + 1e-8)
    return batch * steps / (time.perf_counter() - t0)


report['throughput'] = []
for threads in (1, 2, 4, 16):
    report['throughput'].append({'threads': threads, 'torch_img_s': round(torch_steps(threads)), 'ours_ort_img_s': round(ort_steps(threads)),
                                 'ours_ort_parallel_img_s': round(ort_steps(threads, parallel=True)) if threads > 1 else None})
    print(json.dumps(report['throughput'][-1]), flush=True)
json.dump(report, open(out_path, 'w'), indent=2)
print(json.dumps(report, indent=2))
