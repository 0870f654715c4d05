#!/work/wt/venv-hf/bin/python
"""Scale decoder pairs for the decoder benches (fusion time/memory, finetune speed): random-init, never trained.

Writes into --out (default .cache/decoders-scale/):
  gpt2-124m-s0/, gpt2-124m-s1/   GPT2LMHeadModel, the GPT-2-small config (768 wide, 12 layers, 12 heads, MLP 3072,
                                 1024 positions, vocab 50257, tied LM head) = 124.4M parameters
  llama-gqa-s0/, llama-gqa-s1/   LlamaForCausalLM of similar size: 768 wide, 12 layers, 12 query heads / 4 key-value
                                 heads (grouped-query attention), SwiGLU MLP 2048, RoPE (theta 10000), RMSNorm,
                                 vocab 50257, untied LM head (--llama-tied ties it) = 152.7M parameters (114.1M tied)
  heldout.txt, calib.txt, train.txt   text copied from test/fixtures/decoders/ (held-out, calibration, and the
                                 fixture generator's training split, for finetune benches)
  summary.json                   parameter counts, configs, seconds
Each model folder holds config.json + model.safetensors (transformers' save_pretrained) and the tokenizer files of
test/fixtures/decoders/gpt2-s0 (the fixtures' shared byte-level BPE, vocab 384; its ids are a subset of the models'
50257-entry vocabulary, so the embedding/LM-head cost is GPT-2-small's while the text is tokenized exactly like the
fixtures'). --vocab 384 gives models whose vocabulary equals the tokenizer's (smaller: ~85M for GPT-2).

Weights: transformers' own _init_weights (normal(0, 0.02)), seeds 0 and 1. These pairs measure time and memory, not
quality (perplexity ~ vocab size).

Usage: /work/wt/venv-hf/bin/python bench/decoders/make_scale.py [--out DIR] [--only gpt2,llama] [--vocab 50257]
       [--llama-tied]   (from the repository root; ~30 s per model, 0.5 GB per GPT-2 folder, 0.61 GB per Llama)
"""
import argparse
import glob
import json
import os
import shutil
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, 'test', 'fixtures', 'decoders')
TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']


def gpt2_config(vocab):
    return GPT2Config(vocab_size=vocab, n_positions=1024, n_embd=768, n_layer=12, n_head=12, n_inner=3072,
                      bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      tie_word_embeddings=True)


def llama_config(vocab, tied):
    return LlamaConfig(vocab_size=vocab, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                       num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=1024,
                       rope_theta=10000.0, rms_norm_eps=1e-5, hidden_act='silu', tie_word_embeddings=tied,
                       bos_token_id=0, eos_token_id=0, attention_bias=False, mlp_bias=False)


def copy_tokenizer(folder):
    src = os.path.join(FIX, 'gpt2-s0')
    for name in TOKENIZER_FILES:
        if os.path.isfile(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(folder, name))


def training_lines():
    """The fixture generator's training split (make_decoders.py: license texts, every line but each 10th)."""
    out = []
    for f in sorted(glob.glob('/usr/share/common-licenses/*')):
        if os.path.isfile(f):
            with open(f, encoding='utf-8', errors='replace') as fh:
                out += [ln.strip() for ln in fh if ln.strip()]
    return [ln for i, ln in enumerate(out) if i % 10 != 0]


def write_model(out, name, make, config, seed):
    t0 = time.time()
    torch.manual_seed(seed)
    model = make(config)
    model.eval()
    folder = os.path.join(out, name)
    tmp = folder + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    copy_tokenizer(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    params = sum(p.numel() for p in model.parameters())  # tied weights counted once
    return dict(folder=name, seed=seed, parameters=int(params), seconds=round(time.time() - t0, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=os.path.join(ROOT, '.cache', 'decoders-scale'))
    ap.add_argument('--only', default='gpt2,llama', help='comma list of gpt2, llama')
    ap.add_argument('--vocab', type=int, default=50257)
    ap.add_argument('--llama-tied', action='store_true')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    only = set(a.only.split(','))
    summary = dict(vocab=a.vocab, tokenizer='test/fixtures/decoders/gpt2-s0 (byte-level BPE, 384 ids)', models={})
    for fam, prefix, make, config in [
        ('gpt2', 'gpt2-124m', GPT2LMHeadModel, gpt2_config(a.vocab)),
        ('llama', 'llama-gqa', LlamaForCausalLM, llama_config(a.vocab, a.llama_tied)),
    ]:
        if fam not in only:
            continue
        for seed in (0, 1):
            info = write_model(a.out, f'{prefix}-s{seed}', make, config, seed)
            summary['models'][info['folder']] = info
            print(info, flush=True)
    for name in ('heldout.txt', 'calib.txt'):
        shutil.copyfile(os.path.join(FIX, name), os.path.join(a.out, name))
    with open(os.path.join(a.out, 'train.txt'), 'w', encoding='utf-8') as fh:
        fh.write('\n'.join(training_lines()) + '\n')
    with open(os.path.join(a.out, 'summary.json'), 'w') as fh:
        json.dump(summary, fh, indent=1)
    print('wrote', a.out)


if __name__ == '__main__':
    main()
