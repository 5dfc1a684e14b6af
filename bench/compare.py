#!/usr/bin/python3
"""zerograd against PyTorch on the issue's workloads, same machine, same run.

Runs each zerograd benchmark binary (mlp_epoch, simple_cnn, op_overhead,
deep_chain) and its PyTorch version (this file, --worker) alternately,
--pairs times for each thread setting, every run in a fresh process, then
prints a table of medians and zerograd / PyTorch ratios (lower is better):
first one line per workload and metric at the best thread setting of each
side, then one line per thread setting. Every line ends in the ratio.
op_overhead and deep_chain also run against LibTorch (PyTorch's C++ API,
bench/libtorch_chain, when built): the issue's targets for them are against
LibTorch. matmul_efficiency has no PyTorch side: its lines are zerograd /
raw sgemm (the worst variant per shape), higher is better.

The PyTorch versions do what the C++ ones do: the same IDX files (gzip +
numpy), float32, the same model, batch, optimizer, shuffling by a random
permutation each epoch, warm-up, iteration and repetition counts, and the
same JSON fields. Threads: OMP/MKL/OPENBLAS_NUM_THREADS in the environment
and torch.set_num_threads(n); OMP_WAIT_POLICY=PASSIVE for PyTorch unless
set or --torch-omp-wait-policy says otherwise, and zerograd with the
environment's own (see thread_env).

Instruction sets: --isa avx2 runs every process of both sides with each
library held to its AVX2 code (ISA_ENV), on any machine that has AVX2;
--isa native removes those variables, so each library picks the best the
CPU has; without --isa the environment stands as it is. The header says
what each library ran with, and --json records it.

Usage: bench/compare (builds the Release benchmarks, installs python3-torch
if missing, then runs this), or directly:
  bench/compare.py --bin build/bench [--pairs 3] [--threads 1,2] [--workloads ...]
  bench/compare.py --worker mlp_epoch --threads 1   # one PyTorch measurement
"""
import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import time

WORKLOADS = ["mlp_epoch", "simple_cnn", "deep_cnn", "op_overhead", "deep_chain", "lstm_lm", "gru_lm", "gpt_char",
             "attention"]
# The sequence workloads are one zerograd binary, bench/lm_step --workload W.
SEQUENCE = ("lstm_lm", "gru_lm", "gpt_char", "attention")
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"

# The metric that picks each side's best thread setting; the other metrics of
# that workload are reported at the same setting.
PRIMARY = {"mlp_epoch": "ms_per_iter", "simple_cnn": "ms_per_iter", "deep_cnn": "ms_per_iter",
           "op_overhead": "total_ns_per_op",
           "deep_chain": "total_s", "lstm_lm": "ms_per_step", "gru_lm": "ms_per_step", "gpt_char": "ms_per_step",
           "attention": "ms_per_step"}

# Settings both sides get in a compare run (chosen to keep it under ~10 min).
RUN_ARGS = {
    "mlp_epoch": ["--iterations", "600", "--repeats", "3", "--warmup", "20"],
    "simple_cnn": ["--iterations", "50", "--repeats", "3", "--warmup", "5"],
    "deep_cnn": ["--iterations", "20", "--repeats", "3", "--warmup", "3"],
    "op_overhead": ["--ops", "10000", "--repeats", "11", "--warmup", "2"],
    "deep_chain": ["--ops", "1000000", "--repeats", "1"],
    "lstm_lm": ["--iterations", "10", "--repeats", "3", "--warmup", "3"],
    "gru_lm": ["--iterations", "10", "--repeats", "3", "--warmup", "3"],
    "gpt_char": ["--iterations", "20", "--repeats", "3", "--warmup", "5"],
    "attention": ["--iterations", "50", "--repeats", "3", "--warmup", "10"],
}

# (workload, JSON field, label, format, target on the ratio or None, baseline
# side: "pytorch" = PyTorch eager from Python, "libtorch" = bench/libtorch_chain)
METRICS = [
    ("mlp_epoch", "ms_per_iter", "ms/iter", "{:.3f}", "<= 0.5", "pytorch"),
    ("mlp_epoch", "s_per_epoch", "s/epoch (600 it)", "{:.2f}", "<= 0.5", "pytorch"),
    ("mlp_epoch", "peak_rss_mb", "peak RSS MB", "{:.0f}", "<= 0.6", "pytorch"),
    ("simple_cnn", "ms_per_iter", "ms/iter", "{:.2f}", "<= 0.5", "pytorch"),
    ("simple_cnn", "peak_rss_mb", "peak RSS MB", "{:.0f}", None, "pytorch"),
    ("deep_cnn", "ms_per_iter", "ms/iter", "{:.2f}", "<= 0.6", "pytorch"),
    ("deep_cnn", "peak_rss_mb", "peak RSS MB", "{:.0f}", None, "pytorch"),
    ("op_overhead", "forward_ns_per_op", "fwd ns/op", "{:.0f}", None, "pytorch"),
    ("op_overhead", "backward_ns_per_op", "bwd ns/op", "{:.0f}", None, "pytorch"),
    ("op_overhead", "total_ns_per_op", "fwd+bwd ns/op", "{:.0f}", "zg <= 1000 ns", "pytorch"),
    ("op_overhead", "forward_ns_per_op", "fwd ns/op", "{:.0f}", None, "libtorch"),
    ("op_overhead", "backward_ns_per_op", "bwd ns/op", "{:.0f}", None, "libtorch"),
    ("op_overhead", "total_ns_per_op", "fwd+bwd ns/op", "{:.0f}", "zg <= 1000 ns", "libtorch"),
    ("deep_chain", "forward_s", "fwd s", "{:.3f}", None, "pytorch"),
    ("deep_chain", "backward_s", "bwd s", "{:.3f}", None, "pytorch"),
    ("deep_chain", "teardown_s", "teardown s", "{:.3f}", None, "pytorch"),
    ("deep_chain", "total_s", "total s", "{:.3f}", None, "pytorch"),
    ("deep_chain", "peak_bytes_per_op", "peak B/op", "{:.0f}", None, "pytorch"),
    ("deep_chain", "forward_s", "fwd s", "{:.3f}", None, "libtorch"),
    ("deep_chain", "backward_s", "bwd s", "{:.3f}", None, "libtorch"),
    ("deep_chain", "teardown_s", "teardown s", "{:.3f}", None, "libtorch"),
    ("deep_chain", "total_s", "total s", "{:.3f}", "<= 0.25", "libtorch"),
    ("deep_chain", "peak_bytes_per_op", "peak B/op", "{:.0f}", "<= 0.5", "libtorch"),
    ("lstm_lm", "ms_per_step", "ms/step", "{:.1f}", "<= 0.6", "pytorch"),
    ("lstm_lm", "peak_rss_mb", "peak RSS MB", "{:.0f}", "<= 1.0", "pytorch"),
    ("gru_lm", "ms_per_step", "ms/step", "{:.1f}", "<= 0.6", "pytorch"),
    ("gru_lm", "peak_rss_mb", "peak RSS MB", "{:.0f}", "<= 1.0", "pytorch"),
    ("gpt_char", "ms_per_step", "ms/step", "{:.1f}", "<= 0.6", "pytorch"),
    ("gpt_char", "peak_rss_mb", "peak RSS MB", "{:.0f}", "<= 1.0", "pytorch"),
    ("attention", "ms_per_step", "fwd+bwd ms", "{:.2f}", "<= 0.6", "pytorch"),
]


# ---------------------------------------------------------------- PyTorch side

def proc_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def rss_mb():
    return proc_kb("VmRSS") / 1024.0


def peak_rss_mb():
    kb = proc_kb("VmHWM")
    if kb < 0:
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def read_idx(path):
    import numpy as np
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find_file(data_dir, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz]")


def load_train(data_dir):
    """Images (N, 1, 28, 28) float32 in [0, 1] and int64 labels, as zerograd loads them."""
    import numpy as np
    import torch
    images = read_idx(find_file(data_dir, "train-images-idx3-ubyte"))
    labels = read_idx(find_file(data_dir, "train-labels-idx1-ubyte"))
    x = images.astype(np.float32)
    np.divide(x, np.float32(255), out=x)  # in place: no second 188 MB copy
    x = torch.from_numpy(x).reshape(-1, 1, 28, 28)
    t = torch.from_numpy(labels.astype(np.int64))
    return x, t


def timed_runs(step, a):
    """ms per step of each of a.repeats runs of a.iterations steps, after a.warmup untimed ones."""
    for _ in range(a.warmup):
        step()
    ms = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        for _ in range(a.iterations):
            step()
        ms.append((time.perf_counter() - start) * 1e3 / a.iterations)
    return ms


def torch_training(a, name):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    x_all, t_all = load_train(a.data)
    if name == "mlp_epoch":
        x_all = x_all.reshape(x_all.shape[0], -1)
    data_rss = rss_mb()
    torch.manual_seed(a.seed)

    def init(m):
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def he_init(m):  # DeepConvNet: std sqrt(2 / fan_in), as zerograd's Init::he()
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)

    if name == "mlp_epoch":
        model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
        model.apply(init)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        opt_desc = "SGD lr 0.1"
    elif name == "deep_cnn":
        def conv(c_in, c_out, pad=1):
            return [nn.Conv2d(c_in, c_out, 3, padding=pad), nn.ReLU()]
        model = nn.Sequential(*conv(1, 16), *conv(16, 16), nn.MaxPool2d(2), *conv(16, 32), *conv(32, 32, 2),
                              nn.MaxPool2d(2), *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, 10),
                              nn.Dropout(0.5))
        model.apply(he_init)
        opt = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-7)
        opt_desc = "Adam lr 0.001"
    else:
        model = nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                              nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10))
        model.apply(init)
        opt = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-7)
        opt_desc = "Adam lr 0.001"
    model.train()
    n, batch = x_all.shape[0], a.batch
    epoch_iters = (n + batch - 1) // batch
    state = {"perm": torch.randperm(n), "cursor": 0, "loss": None}

    def step():
        if state["cursor"] >= n:
            state["perm"], state["cursor"] = torch.randperm(n), 0
        idx = state["perm"][state["cursor"]:state["cursor"] + batch]
        state["cursor"] += batch
        xb, tb = x_all[idx], t_all[idx]
        loss = F.cross_entropy(model(xb), tb)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["loss"] = loss

    ms = timed_runs(step, a)
    m = statistics.median(ms)
    return {"bench": name, "threads": a.threads, "batch": batch, "optimizer": opt_desc,
            "iterations": a.iterations, "repeats": a.repeats, "warmup": a.warmup,
            "ms_per_iter": round(m, 4), "ms_per_iter_reps": [round(v, 4) for v in ms],
            "epoch_iterations": epoch_iters, "s_per_epoch": round(m * epoch_iters / 1e3, 4),
            "final_loss": round(float(state["loss"]), 4), "data_rss_mb": round(data_rss, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def torch_language_model(a, name):
    """bench/lm_step's workloads in PyTorch: the same architectures, parameter counts, optimizer and clipping,
    seeded random tokens (B, T + 1), each step from a zero state."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.manual_seed(a.seed)
    if name == "gpt_char":
        V, B, T, C, H, layers = 65, 12, 64, 128, 4, 4

        class Block(nn.Module):  # nanoGPT's: pre-norm, causal self-attention, GELU MLP 4x
            def __init__(self):
                super().__init__()
                self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
                self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
                self.mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C))
                self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

            def forward(self, x):
                b, t, c = x.shape
                q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
                q, k, v = (z.view(b, t, H, c // H).transpose(1, 2) for z in (q, k, v))
                att = (q @ k.transpose(-2, -1)) * (1.0 / (c // H) ** 0.5)
                att = F.softmax(att.masked_fill(~self.mask[:t, :t], float("-inf")), dim=-1)
                x = x + self.c_proj((att @ v).transpose(1, 2).contiguous().view(b, t, c))
                return x + self.mlp(self.ln_2(x))

        class GPT(nn.Module):
            def __init__(self):
                super().__init__()
                self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
                self.h = nn.Sequential(*[Block() for _ in range(layers)])
                self.ln_f, self.lm_head = nn.LayerNorm(C), nn.Linear(C, V, bias=False)

            def forward(self, idx):
                x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
                return self.lm_head(self.ln_f(self.h(x)))

        model = GPT()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01)
        clip, opt_desc = 1.0, "AdamW lr 0.001"
    else:
        V, B, T = 96, 32, 64
        rnn = nn.GRU if name == "gru_lm" else nn.LSTM

        class LM(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed, self.rnn, self.head = nn.Embedding(V, 128), rnn(128, 256, 2, batch_first=True), nn.Linear(256, V)

            def forward(self, idx):
                return self.head(self.rnn(self.embed(idx))[0])

        model = LM()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        clip, opt_desc = 0.25, "Adam lr 0.001"
    tokens = torch.randint(0, V, (B, T + 1), generator=torch.Generator().manual_seed(a.seed))
    x, y = tokens[:, :T], tokens[:, 1:].reshape(-1)
    model.train()
    state = {"loss": None}

    def step():
        loss = F.cross_entropy(model(x).reshape(B * T, V), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["loss"] = loss

    ms = timed_runs(step, a)
    return {"bench": name, "threads": a.threads, "parameters": sum(p.numel() for p in model.parameters()),
            "batch": B, "seq": T, "optimizer": opt_desc, "iterations": a.iterations, "repeats": a.repeats,
            "warmup": a.warmup, "ms_per_step": round(statistics.median(ms), 3),
            "final_loss": round(float(state["loss"]), 4), "peak_rss_mb": round(peak_rss_mb(), 1)}


def torch_attention(a):
    """bench/lm_step --workload attention in PyTorch: nn.MultiheadAttention, causal, forward and backward."""
    import torch
    torch.manual_seed(a.seed)
    B, T, C, H = 16, 64, 128, 4
    mha = torch.nn.MultiheadAttention(C, H, batch_first=True)
    x = torch.randn(B, T, C, requires_grad=True)
    r = torch.randn(B, T, C)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(T)

    def step():
        (mha(x, x, x, attn_mask=mask, need_weights=False)[0] * r).sum().backward()
        mha.zero_grad(set_to_none=True)
        x.grad = None

    ms = timed_runs(step, a)
    return {"bench": "attention", "threads": a.threads, "parameters": sum(p.numel() for p in mha.parameters()),
            "batch": B, "seq": T, "iterations": a.iterations, "repeats": a.repeats, "warmup": a.warmup,
            "ms_per_step": round(statistics.median(ms), 3), "peak_rss_mb": round(peak_rss_mb(), 1)}


def chain(x, ops):
    y = x
    for _ in range(ops // 2):
        y = y * 1.0001
        y = y + 0.5
    if ops % 2:
        y = y * 1.0001
    return y


def torch_op_overhead(a):
    import torch
    x = torch.tensor(1.0, dtype=torch.float32, requires_grad=True)
    fwd, bwd, down = [], [], []
    for r in range(-a.warmup, a.repeats):
        x.grad = None
        t0 = time.perf_counter()
        y = chain(x, a.ops)
        f = time.perf_counter() - t0
        t0 = time.perf_counter()
        y.backward()
        b = time.perf_counter() - t0
        t0 = time.perf_counter()
        del y
        d = time.perf_counter() - t0
        if r >= 0:
            fwd.append(f)
            bwd.append(b)
            down.append(d)
    f, b = statistics.median(fwd), statistics.median(bwd)
    return {"bench": "op_overhead", "threads": a.threads, "ops": a.ops, "repeats": a.repeats, "warmup": a.warmup,
            "forward_ns_per_op": round(f * 1e9 / a.ops, 1), "backward_ns_per_op": round(b * 1e9 / a.ops, 1),
            "total_ns_per_op": round((f + b) * 1e9 / a.ops, 1),
            "teardown_ns_per_op": round(statistics.median(down) * 1e9 / a.ops, 1),
            "forward_ms": round(f * 1e3, 4), "backward_ms": round(b * 1e3, 4),
            "x_grad": float(x.grad), "x_grad_expected": 1.0001 ** ((a.ops + 1) // 2),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def torch_deep_chain(a):
    import torch
    x = torch.tensor(1.0, dtype=torch.float32, requires_grad=True)
    fwd, bwd, down = [], [], []
    start_mb = after_forward_mb = peak_mb = 0.0
    peak_reset = False
    for r in range(a.repeats):
        x.grad = None
        if r == 0:
            start_mb = rss_mb()
            peak_reset = reset_peak_rss()
        t0 = time.perf_counter()
        y = chain(x, a.ops)
        fwd.append(time.perf_counter() - t0)
        if r == 0:
            after_forward_mb = rss_mb()
        t0 = time.perf_counter()
        y.backward()
        bwd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        del y
        down.append(time.perf_counter() - t0)
        if r == 0:
            peak_mb = peak_rss_mb()
    f, b, d = statistics.median(fwd), statistics.median(bwd), statistics.median(down)
    mb = 1024.0 * 1024.0
    return {"bench": "deep_chain", "threads": a.threads, "ops": a.ops, "repeats": a.repeats,
            "forward_s": round(f, 4), "backward_s": round(b, 4), "teardown_s": round(d, 4),
            "total_s": round(f + b + d, 4), "start_rss_mb": round(start_mb, 1),
            "graph_rss_mb": round(after_forward_mb - start_mb, 1),
            "peak_rss_delta_mb": round(peak_mb - start_mb, 1),
            "graph_bytes_per_op": round((after_forward_mb - start_mb) * mb / a.ops, 1),
            "peak_bytes_per_op": round((peak_mb - start_mb) * mb / a.ops, 1),
            "peak_rss_mb": round(peak_mb, 1), "peak_reset": peak_reset,
            "x_grad": float(x.grad), "x_grad_expected": 1.0001 ** ((a.ops + 1) // 2)}


WORKER_DEFAULTS = {  # the C++ binaries' defaults
    "mlp_epoch": dict(iterations=600, repeats=3, warmup=20),
    "simple_cnn": dict(iterations=50, repeats=3, warmup=5),
    "deep_cnn": dict(iterations=20, repeats=3, warmup=3),
    "op_overhead": dict(ops=10000, repeats=51, warmup=5),
    "deep_chain": dict(ops=1000000, repeats=3, warmup=0),
    "lstm_lm": dict(iterations=20, repeats=3, warmup=5),
    "gru_lm": dict(iterations=20, repeats=3, warmup=5),
    "gpt_char": dict(iterations=20, repeats=3, warmup=5),
    "attention": dict(iterations=50, repeats=3, warmup=10),
}


def worker_main(argv):
    p = argparse.ArgumentParser(prog="compare.py --worker", description="One PyTorch measurement, one JSON line")
    p.add_argument("--worker", choices=WORKLOADS, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iterations", type=int)
    p.add_argument("--ops", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", default=DEFAULT_DATA)
    a = p.parse_args(argv)
    for k, v in WORKER_DEFAULTS[a.worker].items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    if a.iterations is not None and a.ops is None:
        a.ops = a.iterations
    import torch
    torch.set_num_threads(max(1, a.threads))
    if a.worker in ("mlp_epoch", "simple_cnn", "deep_cnn"):
        out = torch_training(a, a.worker)
    elif a.worker == "attention":
        out = torch_attention(a)
    elif a.worker in SEQUENCE:
        out = torch_language_model(a, a.worker)
    elif a.worker == "op_overhead":
        out = torch_op_overhead(a)
    else:
        out = torch_deep_chain(a)
    out["torch"] = torch.__version__
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- the runner

TORCH_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
MALLOC = "tuned"


def thread_env(n, side):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(n)
    # PyTorch's OpenMP workers spin by default (libgomp); when the cores are
    # shared with other work (load above the core count) two spinning threads
    # made its 2-thread runs 5-50x slower here. PASSIVE lets them sleep.
    # zerograd runs its loops on the same libgomp threads as its oneDNN
    # convolutions (Note [One thread team]), where PASSIVE made DeepConvNet
    # at 2 threads slower (21-31 ms against 16-24), so its side keeps the
    # environment's setting.
    if side != "zerograd":
        if TORCH_OMP_WAIT_POLICY == "default":
            env.pop("OMP_WAIT_POLICY", None)
        else:
            env["OMP_WAIT_POLICY"] = TORCH_OMP_WAIT_POLICY
    # zerograd sets these three with mallopt at start-up (autograd/src/
    # parallel.cpp): without them glibc hands every array over 128 KB out as a
    # fresh mmap and unmaps it when freed, so each op's output page-faults in
    # again. Unset, that cost PyTorch 1.13 here half its DeepConvNet time
    # (113 ms per iteration at one thread; 54 ms with them). Both sides run
    # with the same allocator settings; --malloc default measures glibc's own.
    if MALLOC == "tuned":
        env["GLIBC_TUNABLES"] = ("glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456:"
                                 "glibc.malloc.mxfast=0")
    return env


def run_json(cmd, env, timeout):
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timeout after {timeout} s", time.perf_counter() - start
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        why = f"exit status {p.returncode}" + (f" ({-p.returncode} = signal)" if p.returncode < 0 else "")
        tail = (p.stderr.strip().splitlines() or [""])[-1]
        return None, f"{why}: {tail}", time.perf_counter() - start
    return json.loads(lines[-1]), None, time.perf_counter() - start


def zerograd_command(bin_dir, w):
    return [os.path.join(bin_dir, "lm_step"), "--workload", w] if w in SEQUENCE else [os.path.join(bin_dir, w)]


def fmt(spec, v):
    return "-" if v is None else spec.format(v)


# What --isa sets for every process of both sides (None: removed).
ISA_ENV = {
    "avx2": {"ZEROGRAD_MAX_ISA": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
             "LIBXSMM_TARGET": "hsw", "ATEN_CPU_CAPABILITY": "avx2"},
    "native": {"ZEROGRAD_MAX_ISA": None, "ONEDNN_MAX_CPU_ISA": None, "OPENBLAS_CORETYPE": None,
               "LIBXSMM_TARGET": None, "ATEN_CPU_CAPABILITY": None},
}


def set_isa(isa):
    for k, v in ISA_ENV.get(isa, {}).items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def isa_report(bin_dir):
    """The instruction set each library runs with under this environment, as its own query says."""
    try:
        zg = json.loads(subprocess.run([os.path.join(bin_dir, "matmul_efficiency"), "--isa-report"],
                                       capture_output=True, text=True, timeout=60).stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        zg = {}
    try:
        import torch
        pt = next((l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines()
                   if "CPU capability usage" in l), "unknown")
    except ImportError:
        pt = "unknown"
    return {"zerograd_kernels": zg.get("zerograd", "unknown"), "onednn": zg.get("onednn", "unknown"),
            "libxsmm": zg.get("libxsmm", "unknown"), "openblas_zerograd": zg.get("openblas", "unknown"),
            "pytorch": pt}


def blas_cores(bin_dir):
    """Which OpenBLAS kernels zerograd's benchmarks and this PyTorch run on (OPENBLAS_CORETYPE may force one)."""
    try:
        zg = subprocess.run([os.path.join(bin_dir, "matmul_efficiency"), "--blas-info"], capture_output=True,
                            text=True, timeout=60).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        zg = "unknown"
    pt = "no OpenBLAS found in the PyTorch process"
    try:
        import ctypes
        import torch
        torch.mm(torch.ones(4, 4), torch.ones(4, 4))  # loads the BLAS PyTorch uses
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line and line.split()[-1].startswith("/")})
        for lib in libs:
            blas = ctypes.CDLL(lib)
            if hasattr(blas, "openblas_get_corename"):
                blas.openblas_get_corename.restype = ctypes.c_char_p
                pt = f"core {blas.openblas_get_corename().decode()} ({os.path.basename(lib)})"
                break
    except (OSError, ImportError):
        pass
    return zg, pt


def main(argv):
    if "--worker" in argv:
        return worker_main(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default="build/bench", help="directory holding the zerograd benchmark binaries")
    p.add_argument("--pairs", type=int, default=3, help="zerograd/PyTorch run pairs per workload and thread setting")
    p.add_argument("--threads", default="1,2", help="thread settings, comma-separated")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of " + ",".join(WORKLOADS))
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--no-matmul", action="store_true", help="skip the matmul_efficiency lines")
    p.add_argument("--no-conv", action="store_true", help="skip the conv_bench lines (run with deep_cnn)")
    p.add_argument("--no-libtorch", action="store_true", help="skip the LibTorch C++ baseline even if built")
    p.add_argument("--json", help="also write every measurement (JSON lines) to this file")
    p.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                   help="glibc malloc settings of both sides: zerograd's (tuned) or glibc's defaults")
    p.add_argument("--torch-omp-wait-policy", default=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
                   help="OMP_WAIT_POLICY of the PyTorch and LibTorch side: PASSIVE, ACTIVE or default (unset)")
    p.add_argument("--timeout", type=float, default=300, help="seconds before a run counts as failed")
    p.add_argument("--isa", choices=sorted(ISA_ENV),
                   help="hold every library to its AVX2 code (avx2) or let each pick the CPU's best (native); "
                        "default: the environment as it is")
    a = p.parse_args(argv)
    set_isa(a.isa)  # before torch is imported: OpenBLAS reads OPENBLAS_CORETYPE when it loads
    global MALLOC, TORCH_OMP_WAIT_POLICY
    MALLOC = a.malloc
    TORCH_OMP_WAIT_POLICY = a.torch_omp_wait_policy
    threads = [int(t) for t in a.threads.split(",") if t]
    workloads = [w for w in a.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w}")
        if not os.access(zerograd_command(a.bin, w)[0], os.X_OK):
            p.error(f"{zerograd_command(a.bin, w)[0]} is missing: build the Release benchmarks first (bench/compare does)")
    libtorch_bin = os.path.join(a.bin, "libtorch_chain")
    use_libtorch = not a.no_libtorch and os.access(libtorch_bin, os.X_OK)

    import torch
    me = os.path.abspath(__file__)
    log = open(a.json, "w") if a.json else None
    results = {}  # (side, workload, threads) -> [json]
    errors = {}
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    for w in workloads:
        data_args = ["--data", a.data] if w in ("mlp_epoch", "simple_cnn", "deep_cnn") else []
        for i in range(a.pairs):
            for n in threads:
                sides = [("zerograd", zerograd_command(a.bin, w) + ["--threads", str(n)] + RUN_ARGS[w] + data_args),
                         ("pytorch", [sys.executable, me, "--worker", w, "--threads", str(n)] + RUN_ARGS[w] + data_args)]
                if use_libtorch and w in ("op_overhead", "deep_chain"):
                    sides.append(("libtorch", [libtorch_bin, "--bench", w, "--threads", str(n)] + RUN_ARGS[w]))
                k = i % len(sides)
                sides = sides[k:] + sides[:k]  # rotate who goes first
                for side, cmd in sides:
                    out, err, secs = run_json(cmd, thread_env(n, side), a.timeout)
                    key = (side, w, n)
                    status = "ok" if out else "FAILED: " + err
                    print(f"[{time.perf_counter() - t_start:4.0f}s] {w:<12} {side:<8} threads={n} run {i + 1}/{a.pairs}"
                          f" {secs:5.1f}s {status}", file=sys.stderr, flush=True)
                    if out:
                        results.setdefault(key, []).append(out)
                        if log:
                            log.write(json.dumps(dict(out, side=side)) + "\n")
                            log.flush()
                    else:
                        errors.setdefault(key, []).append(err)

    # matmul_efficiency and conv_bench set the threads themselves (1, then 2): no *_NUM_THREADS caps.
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    matmul = []
    if not a.no_matmul and os.access(os.path.join(a.bin, "matmul_efficiency"), os.X_OK):
        p2 = subprocess.run([os.path.join(a.bin, "matmul_efficiency")], env=env, stdout=subprocess.PIPE,
                            text=True, timeout=a.timeout)
        matmul = [json.loads(l) for l in p2.stdout.splitlines() if l.startswith("{")]
        if log:
            for m in matmul:
                log.write(json.dumps(dict(m, bench="matmul_efficiency", side="zerograd")) + "\n")

    conv = []
    if not a.no_conv and "deep_cnn" in workloads and os.access(os.path.join(a.bin, "conv_bench"), os.X_OK):
        p3 = subprocess.run([os.path.join(a.bin, "conv_bench")], env=env,
                            stdout=subprocess.PIPE, text=True, timeout=a.timeout)
        conv = [json.loads(l) for l in p3.stdout.splitlines() if l.startswith("{")]
        if log:
            for c in conv:
                log.write(json.dumps(dict(c, bench="conv_bench", side="zerograd")) + "\n")

    def med(side, w, n, field):
        vals = [r[field] for r in results.get((side, w, n), []) if r.get(field) is not None]
        return statistics.median(vals) if vals else None

    def best(side, w, field):
        """The median at the thread setting where this side's PRIMARY metric of w is lowest."""
        cands = [(med(side, w, n, PRIMARY[w]), n) for n in threads]
        cands = [c for c in cands if c[0] is not None]
        if not cands:
            return None, None
        n = min(cands)[1]
        return med(side, w, n, field), n

    def ratio(z, b):
        return f"{z / b:.3f}" if z is not None and b else "n/a"

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    names = {"pytorch": "PyTorch", "libtorch": "LibTorch"}
    zg_blas, torch_blas = blas_cores(a.bin)
    isa = isa_report(a.bin)
    if log:
        log.write(json.dumps({"blas": {"zerograd": zg_blas, "pytorch": torch_blas}}) + "\n")
        log.write(json.dumps({"isa": dict(isa, option=a.isa or "environment")}) + "\n")

    def with_verdict(target, zv, bv):
        """'<= 0.5 no', '>= 0.9 yes', 'zg <= 1000 ns yes': the target and whether it is met."""
        if not target or zv is None or not bv:
            return target or ""
        parts = target.split()
        if parts[0] == "zg":  # absolute, on zerograd's own value
            ok = zv <= float(parts[2])
        else:
            r, limit = zv / bv, float(parts[1])
            ok = r <= limit if parts[0] == "<=" else r >= limit
        return f"{target} {'yes' if ok else 'NO'}"
    metrics = [m for m in METRICS if m[0] in workloads and (m[5] != "libtorch" or use_libtorch)]
    print()
    print(f"zerograd vs PyTorch {torch.__version__} (PyTorch: eager from Python; LibTorch: its C++ API), float32, "
          f"{cpu}, {os.cpu_count()} cores")
    print(f"medians of {a.pairs} runs per side and thread setting, sides alternating; ratio = zerograd / baseline, "
          f"lower is better")
    print(f"OpenBLAS: zerograd on {zg_blas}; PyTorch on {torch_blas}")
    print(f"instruction sets (--isa {a.isa or 'not given: the environment as it is'}): zerograd's kernels "
          f"{isa['zerograd_kernels']}, oneDNN {isa['onednn']}, libxsmm {isa['libxsmm']}, OpenBLAS "
          f"{isa['openblas_zerograd']}; PyTorch's kernels {isa['pytorch']}")
    print(f"glibc malloc: {MALLOC} on both sides; OMP_WAIT_POLICY {TORCH_OMP_WAIT_POLICY} for PyTorch, {os.environ.get('OMP_WAIT_POLICY', 'unset')} for zerograd; load average {load_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    head = (f"{'workload':<12} {'metric':<19} {'threads':<11} {'zerograd':>10} {'baseline':>10} {'vs':<9} "
            f"{'target, met?':<18} {'ratio':>6}")
    print()
    print("best thread setting of each side, by time (threads = zerograd's/baseline's):")
    print(head)
    print("-" * len(head))
    for w, field, label, spec, target, base in metrics:
        zv, zn = best("zerograd", w, field)
        bv, bn = best(base, w, field)
        tn = f"{zn or '-'}/{bn or '-'}"
        print(f"{w:<12} {label:<19} {'best ' + tn:<11} {fmt(spec, zv):>10} {fmt(spec, bv):>10} {names[base]:<9} "
              f"{with_verdict(target, zv, bv):<18} {ratio(zv, bv):>6}")
    for m in matmul:
        worst = min(m["matmul_fwd_ratio"], m["linear_fwd_ratio"], m["matmul_fwd_bwd_ratio"], m["linear_fwd_bwd_ratio"])
        print(f"{'matmul_eff':<12} {m['shape']:<19} {str(m.get('threads', 1)):<11} {m['matmul_fwd_gflops']:>10.1f} "
              f"{m['raw_sgemm_fwd_gflops']:>10.1f} {'sgemm':<9} {with_verdict('>= 0.9', worst, 1.0):<18} {worst:>6.3f}")
    print()
    print("per thread setting (the same threads on both sides):")
    print(head)
    print("-" * len(head))
    for w, field, label, spec, target, base in metrics:
        for n in threads:
            zv, bv = med("zerograd", w, n, field), med(base, w, n, field)
            print(f"{w:<12} {label:<19} {str(n):<11} {fmt(spec, zv):>10} {fmt(spec, bv):>10} {names[base]:<9} "
                  f"{with_verdict(target, zv, bv):<18} {ratio(zv, bv):>6}")
    if errors:
        print()
        for (side, w, n), errs in sorted(errors.items()):
            print(f"FAILED: {side} {w} threads={n}: {len(errs)} run(s): {errs[0]}")
    if conv:
        print()
        print("conv_bench: zerograd's conv2d per layer shape, GFLOPS against the direct-arithmetic count "
              "(forward 2 N FN C KH KW OH OW flops; forward+backward 3x that)")
        print(f"{'x':<20} {'W':<18} {'pad':>3} {'threads':>7} {'fwd ms':>8} {'fwd GF':>7} {'fwd+bwd ms':>10} {'GF':>7}")
        fwd = {(c["x"], c["W"], c["threads"]): c for c in conv if c.get("op") == "conv2d_forward"}
        for c in conv:
            if c.get("op") != "conv2d_forward_backward":
                continue
            f = fwd.get((c["x"], c["W"], c["threads"]), {})
            print(f"{c['x']:<20} {c['W']:<18} {c['pad']:>3} {c['threads']:>7} {f.get('ms', 0):>8.2f} "
                  f"{f.get('gflops', 0):>7.1f} {c['ms']:>10.2f} {c['gflops']:>7.1f}")
    print()
    print("matmul_eff: GFLOPS of zerograd's matmul forward and of raw cblas_sgemm (OpenBLAS's own threads) at the "
          "thread count shown;\nthe ratio is the worst of matmul/linear forward and forward+backward against sgemm "
          "(higher is better). "
          f"Total time {time.perf_counter() - t_start:.0f} s.")
    if log:
        log.close()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
