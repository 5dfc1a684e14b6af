#!/usr/bin/python3
"""Move models between PyTorch and zerograd as .npz state_dicts: the book's
image models, train-lm's LSTM language model and a GPT.

Needs PyTorch (Debian: apt-get install python3-torch) and numpy.

  # PyTorch -> zerograd: export a PyTorch model, predict with it in C++
  python3 examples/torch_interop.py export --model simple-cnn --out torch.npz \
      --inputs x.npy --predictions torch_y.npy
  ./build/examples/torch_interop --model simple-cnn --load torch.npz \
      --inputs x.npy --expect torch_y.npy

  # zerograd -> PyTorch: export from C++, predict with it in PyTorch
  ./build/examples/torch_interop --model simple-cnn --save zg.npz \
      --inputs x.npy --predictions zg_y.npy
  python3 examples/torch_interop.py predict --model simple-cnn --weights zg.npz \
      --inputs x.npy --expect zg_y.npy

The .npz holds one float32 array per state_dict entry under PyTorch's own
names and layouts; zerograd converts them (nn/torch_interop.hpp, Note
[PyTorch layouts]). The models here use PyTorch's usual attribute names
(conv, fc1, ...); the C++ example maps them onto zerograd's (conv1,
affine1, ...). num_batches_tracked is not written: it matters only with
momentum=None, and zerograd has no such counter.

lstm-lm and gpt read token ids (B, T), int64 as PyTorch's embeddings want
them (export writes random ones), and predict logits (B, T, vocab); their
sizes are set with --vocab, --embed, --hidden, --layers, --heads, --block.
"""
import argparse
import os
import sys

import numpy as np
import torch
from torch import nn


class TwoLayerNet(nn.Module):
    """The book's chapter 5 network: fc1 784-50, ReLU, fc2 50-10."""

    def __init__(self, size=28):
        super().__init__()
        self.fc1 = nn.Linear(size * size, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class SimpleConvNet(nn.Module):
    """Chapter 7: conv 30x5x5, ReLU, max pool 2, fc1 100, ReLU, fc2 10."""

    def __init__(self, size=28):
        super().__init__()
        pooled = (size - 4) // 2
        self.conv = nn.Conv2d(1, 30, 5)
        self.fc1 = nn.Linear(30 * pooled * pooled, 100)
        self.fc2 = nn.Linear(100, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def deep_conv_net(size=28):
    """Chapter 8, as one nn.Sequential: zerograd pairs its layers by order."""
    layers, c, s = [], 1, size
    for out, pad, pool in [(16, 1, False), (16, 1, True), (32, 1, False), (32, 2, True), (64, 1, False), (64, 1, True)]:
        layers += [nn.Conv2d(c, out, 3, padding=pad), nn.ReLU()]
        c, s = out, s + 2 * pad - 2
        if pool:
            layers.append(nn.MaxPool2d(2))
            s //= 2
    layers += [nn.Flatten(), nn.Linear(c * s * s, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, 10), nn.Dropout(0.5)]
    return nn.Sequential(*layers)


class LSTMLanguageModel(nn.Module):
    """train-lm --model lstm: Embedding, a batch-first nn.LSTM, a Linear
    over the vocabulary at every step; named as PyTorch's
    word_language_model example names them (encoder, rnn, decoder)."""

    def __init__(self, s):
        super().__init__()
        self.encoder = nn.Embedding(s.vocab, s.embed)
        self.rnn = nn.LSTM(s.embed, s.hidden, s.layers, batch_first=True)
        self.decoder = nn.Linear(s.hidden, s.vocab)

    def forward(self, tokens):
        return self.decoder(self.rnn(self.encoder(tokens))[0])


class GPT(nn.Module):
    """nanoGPT's model on PyTorch's own layers, as zerograd's nn::GPT builds
    it: token and position embeddings, pre-norm GELU blocks under a causal
    mask, a final LayerNorm and a bias-free lm_head. nanoGPT's names map as
    h.N -> blocks.layers.N, ln_1/ln_2 -> norm1/norm2, attn.c_attn (q, k, v
    stacked) -> self_attn.in_proj_weight/in_proj_bias, attn.c_proj ->
    self_attn.out_proj, mlp.c_fc/mlp.c_proj -> linear1/linear2."""

    def __init__(self, s):
        super().__init__()
        self.wte = nn.Embedding(s.vocab, s.embed)
        self.wpe = nn.Embedding(s.block, s.embed)
        self.drop = nn.Dropout(0.0)
        layer = nn.TransformerEncoderLayer(s.embed, s.heads, 4 * s.embed, 0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, s.layers, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(s.embed)
        self.lm_head = nn.Linear(s.embed, s.vocab, bias=False)

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.drop(self.wte(tokens) + self.wpe(torch.arange(t)))
        causal = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        return self.lm_head(self.ln_f(self.blocks(x, mask=causal)))


def jittered(model):
    """Fresh LayerNorms hold ones and zeros, and TransformerEncoder's layers
    start as copies of one layer: noise on every parameter makes a swapped
    or misplaced array change the outputs."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


MODELS = {"two-layer": lambda a: TwoLayerNet(a.size), "simple-cnn": lambda a: SimpleConvNet(a.size),
          "deep-cnn": lambda a: deep_conv_net(a.size), "lstm-lm": lambda a: jittered(LSTMLanguageModel(a)),
          "gpt": lambda a: jittered(GPT(a))}
SEQUENCE_MODELS = ("lstm-lm", "gpt")


def state_dict_arrays(model):
    """The state_dict as float32 numpy arrays, without num_batches_tracked."""
    return {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def load_arrays(model, path):
    """Loads an .npz written by zerograd (save_torch_npz) into model."""
    with np.load(path) as npz:
        state = {k: torch.from_numpy(npz[k]) for k in npz.files}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit("%s does not fit the model: missing %s, unexpected %s" % (path, missing, unexpected))


def predict(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.load(inputs))).numpy()


def check(got, path, tol):
    want = np.load(path)
    if got.shape != want.shape:
        sys.exit("predictions have shape %s, %s has %s" % (got.shape, path, want.shape))
    err = float(np.max(np.abs(got - want) / (1 + np.abs(want))))
    print("max |difference| / (1 + |expected|) = %.3g against %s (tolerance %g)" % (err, path, tol))
    if not err <= tol:
        sys.exit(1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["export", "predict"],
                   help="export: write a PyTorch model's state_dict; predict: load zerograd's and predict")
    p.add_argument("--model", choices=sorted(MODELS), default="simple-cnn")
    p.add_argument("--size", type=int, default=28, help="image side (default 28)")
    p.add_argument("--vocab", type=int, default=20, help="lstm-lm, gpt: vocabulary size (default 20)")
    p.add_argument("--embed", type=int, default=8, help="lstm-lm: embedding size; gpt: n_embd (default 8)")
    p.add_argument("--hidden", type=int, default=16, help="lstm-lm: LSTM hidden size (default 16)")
    p.add_argument("--layers", type=int, default=2, help="lstm-lm: LSTM layers; gpt: n_layer (default 2)")
    p.add_argument("--heads", type=int, default=2, help="gpt: n_head (default 2)")
    p.add_argument("--block", type=int, default=8, help="gpt: block_size, the longest sequence (default 8)")
    p.add_argument("--steps", type=int, default=5, help="export: T of the random token ids (default 5)")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the initial weights")
    p.add_argument("--out", help="export: the .npz to write")
    p.add_argument("--weights", help="predict: the .npz zerograd wrote")
    p.add_argument("--inputs", help="an .npy of float32 images (N, 1, size, size), or int64 token ids (B, T) for "
                   "lstm-lm and gpt; export writes random ones if missing")
    p.add_argument("--predictions", help="write the model's outputs on --inputs here (.npy)")
    p.add_argument("--expect", help="compare the outputs with this .npy and fail beyond --tolerance")
    p.add_argument("--tolerance", type=float, default=1e-5)
    a = p.parse_args()

    torch.manual_seed(a.seed)
    model = MODELS[a.model](a)
    if a.command == "export":
        if not a.out:
            p.error("export needs --out")
        np.savez(a.out, **state_dict_arrays(model))
        print("wrote %s (%d arrays)" % (a.out, len(model.state_dict())))
        if a.inputs and not os.path.exists(a.inputs) and a.model in SEQUENCE_MODELS:
            np.save(a.inputs, torch.randint(0, a.vocab, (3, a.steps)).numpy())
            print("wrote %s (random token ids)" % a.inputs)
        elif a.inputs and not os.path.exists(a.inputs):
            np.save(a.inputs, torch.randn(8, 1, a.size, a.size).numpy())
            print("wrote %s (random images)" % a.inputs)
    else:
        if not a.weights:
            p.error("predict needs --weights")
        load_arrays(model, a.weights)
    if a.inputs and (a.predictions or a.expect):
        y = predict(model, a.inputs)
        if a.predictions:
            np.save(a.predictions, y)
            print("wrote %s %s" % (a.predictions, y.shape))
        if a.expect:
            check(y, a.expect, a.tolerance)


if __name__ == "__main__":
    main()
