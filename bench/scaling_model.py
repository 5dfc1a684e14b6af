#!/usr/bin/env python3
"""Step time and efficiency of data-parallel training on N hosts, predicted
from one host's measurements (bench/scaling_measure, run by bench/scaling).

The model, per training step on each host:
  - forward, backward and the optimizer take what they took on one host
    (weak scaling: every host keeps its batch, the global batch is N times
    it, and a host's compute does not change with N);
  - DDP's buckets become ready during backward at the measured times; each
    is all-reduced by a ring over N hosts, costing
        2 (N - 1) / N x bytes / bandwidth + 2 (N - 1) x alpha
    (reduce-scatter and all-gather, each N - 1 hops of 1/N of the bucket;
    full-duplex links; no compression);
  - buckets go one after another in DDP's launch order: bucket k starts
    when it is ready, the buckets before it started, and the all-reduce
    before it finished (one link, used by one bucket at a time);
  - step = forward + max(backward, end of the last all-reduce) + optimizer;
    efficiency = the one-host step / step, so N hosts do N x efficiency
    times the one-host work per second.

Usage: scaling_model.py INPUTS.json [--alpha-us 25] [--gbits 10,25,100]
       [--hosts 2,4,8,16,32,64] [--bucket-kb KB] [--json]
INPUTS.json: {"profiles": [scaling_measure --model lines], optional
"sync": {"shared_memory": ..., "tcp_loopback": ...} (scaling_measure --sync
lines) and "measured": {"shared_memory": ..., "tcp_loopback": ...}
(ddp_scaling lines, 2 processes) for the check at N = 2, and "source": a
sentence saying where the numbers come from}.
Standard library only.
"""
import argparse
import json
import sys


def ring_ms(nbytes, hosts, alpha_ms, bytes_per_ms):
    """One ring all-reduce of nbytes over `hosts` hosts, in ms."""
    if hosts < 2:
        return 0.0
    return 2 * (hosts - 1) / hosts * nbytes / bytes_per_ms + 2 * (hosts - 1) * alpha_ms


def overlapped_end(buckets, cost):
    """When the last bucket's all-reduce ends, in ms after backward starts.

    buckets: [{"bytes", "ms_ready"}] in DDP's launch order; cost(bytes) in ms.
    """
    end = launched = 0.0
    for b in buckets:
        launched = max(launched, b["ms_ready"])  # DDP launches in bucket order
        end = max(launched, end) + cost(b["bytes"])
    return end


def step_ms(profile, buckets, cost):
    comm = overlapped_end(buckets, cost) if buckets else 0.0
    return profile["ms_forward"] + max(profile["ms_backward"], comm) + profile["ms_optimizer"]


def one_host_ms(profile):
    return profile["ms_forward"] + profile["ms_backward"] + profile["ms_optimizer"]


def layout(profile, bucket_kb):
    """DDP's buckets at bucket_kb (the profile's first layout when None)."""
    layouts = profile["layouts"]
    if bucket_kb is None:
        return layouts[0]
    for lay in layouts:
        if lay["bucket_kb"] == bucket_kb:
            return lay
    raise SystemExit("scaling_model: %s was measured with buckets of %s KB, not %s" %
                     (profile["model"], [lay["bucket_kb"] for lay in layouts], bucket_kb))


def link_bytes_per_ms(gbits):
    return gbits * 1e9 / 8 / 1e3


def predict(profile, buckets, hosts, gbits, alpha_us):
    """{(n, gbits): (step ms, efficiency)} over a network."""
    one = one_host_ms(profile)
    out = {}
    for g in gbits:
        for n in hosts:
            s = step_ms(profile, buckets, lambda nb: ring_ms(nb, n, alpha_us / 1e3, link_bytes_per_ms(g)))
            out[(n, g)] = (s, one / s)
    return out


def line_cost(sync):
    """2 processes, measured: ms = fixed + per byte x bytes for one bucket."""
    return lambda nb: sync["ms_fixed"] + sync["ms_per_mb"] * nb / 1e6


def check_two(profiles, inputs):
    """The prediction for 2 processes on this machine against ddp_scaling.

    Both ranks run the profile measured at ddp_scaling's per-rank batch;
    the window syncs after backward (its copies during backward are in its
    measured cost), a bucket as the measured line for 2 processes says.
    Each row also gives what the sync adds: predicted over the profile's
    step, measured over ddp_scaling's step with gradients kept local.
    """
    sync, measured = inputs.get("sync", {}), inputs.get("measured", {})
    rows = []
    for way, where, key_sync, key_step in (
            ("gradients kept local", "shared_memory", None, "ms_per_step_no_sync"),
            ("shared-memory window", "shared_memory", "window", "ms_per_step"),
            ("all-reduce buckets, shared memory", "shared_memory", "all_reduce", "ms_per_step_all_reduce"),
            ("all-reduce buckets, TCP on loopback", "tcp_loopback", "all_reduce", "ms_per_step_all_reduce")):
        if where not in measured or (key_sync and key_sync not in sync.get(where, {})):
            continue
        m = measured[where]
        per_rank = m["global_batch"] // m["processes"]
        profile = next((p for p in profiles if p["model"] == "simple-cnn" and p["batch"] == per_rank), None)
        if profile is None:
            continue
        compute = one_host_ms(profile)
        if key_sync is None:
            predicted = compute
        elif key_sync == "window":
            predicted = compute + line_cost(sync[where][key_sync])(profile["gradient_bytes"])
        else:
            # ddp_scaling's buckets are DDP's default size.
            predicted = step_ms(profile, layout(profile, 25 << 10)["buckets"], line_cost(sync[where][key_sync]))
        rows.append({"way": way, "per_rank_batch": per_rank, "predicted_ms": predicted, "measured_ms": m[key_step],
                     "predicted_added_ms": predicted - compute,
                     "measured_added_ms": m[key_step] - m["ms_per_step_no_sync"]})
    return rows


def fmt(x, digits=2):
    return "%.*f" % (digits, x)


def markdown(inputs, profiles, args):
    out = []
    out.append("Inputs (%s):" % inputs.get("source", "measured by bench/scaling_measure"))
    out.append("")
    out.append("| model | batch per host | gradient | forward | backward | optimizer | one-host step | "
               "buckets at %s: MB, ready at ms into backward |" % bucket_label(args.bucket_kb))
    out.append("|---|---|---|---|---|---|---|---|")
    for p in profiles:
        lay = layout(p, args.bucket_kb)
        b = ", ".join("%s MB @ %s" % (fmt(x["bytes"] / 1e6), fmt(x["ms_ready"], 1)) for x in lay["buckets"])
        out.append("| %s | %s | %s MB | %s ms | %s ms | %s ms | %s ms | %s |" % (
            p["description"].split(",")[0], batch_label(p), fmt(p["gradient_bytes"] / 1e6),
            fmt(p["ms_forward"]), fmt(p["ms_backward"]), fmt(p["ms_optimizer"]), fmt(one_host_ms(p)), b))
    sync = inputs.get("sync", {})
    if sync:
        out.append("")
        out.append("| gradient sync, 2 processes on this machine | fixed | per MB | as alpha per hop | "
                   "as bandwidth |")
        out.append("|---|---|---|---|---|")
        for where, label in (("shared_memory", "shared memory"), ("tcp_loopback", "TCP on loopback")):
            for key, way in (("window", "window"), ("all_reduce", "all-reduce bucket")):
                if where in sync and key in sync[where]:
                    s = sync[where][key]
                    alpha = "%s us" % fmt(s["ms_fixed"] * 1e3 / 2, 1) if key == "all_reduce" else "-"
                    out.append("| %s, %s | %s ms | %s ms | %s | %s Gbit/s |" % (
                        way, label, fmt(s["ms_fixed"], 3), fmt(s["ms_per_mb"], 3), alpha,
                        fmt(8 / s["ms_per_mb"], 1)))
    out.append("")
    out.append("Network: ring all-reduce, alpha %s us per hop, link %s Gbit/s (full duplex), "
               "buckets of %s." % (fmt(args.alpha_us, 0), ", ".join(fmt(g, 0) for g in args.gbits),
                                    bucket_label(args.bucket_kb)))
    rows = check_two(profiles, inputs)
    if rows:
        out.append("")
        out.append("| 2 processes on this machine, SimpleConvNet, batch %d per rank | predicted ms per step | "
                   "measured (ddp_scaling) | sync adds, predicted | measured |" % rows[0]["per_rank_batch"])
        out.append("|---|---|---|---|---|")
        for r in rows:
            out.append("| %s | %s | %s | %s | %s |" % (r["way"], fmt(r["predicted_ms"]), fmt(r["measured_ms"]),
                                                     fmt(r["predicted_added_ms"]), fmt(r["measured_added_ms"])))
    out.append("")
    out.append("Predicted ms per step and efficiency (one-host step / step) on N hosts:")
    out.append("")
    out.append("| model | link | " + " | ".join("N = %d" % n for n in args.hosts) + " |")
    out.append("|---|---|" + "---|" * len(args.hosts))
    for p in predictable(profiles):
        pred = predict(p, layout(p, args.bucket_kb)["buckets"], args.hosts, args.gbits, args.alpha_us)
        for i, g in enumerate(args.gbits):
            cells = ["%s, %s" % (fmt(pred[(n, g)][0], 1), fmt(pred[(n, g)][1])) for n in args.hosts]
            out.append("| %s | %s Gbit/s | %s |" % (p["description"].split(",")[0] if i == 0 else "", fmt(g, 0),
                                                     " | ".join(cells)))
    return "\n".join(out)


def predictable(profiles):
    """The profiles at each model's own batch (not the ones kept for the check)."""
    default = {"simple-cnn": 100, "deep-cnn": 100, "lstm": 32, "gpt": 12}
    return [p for p in profiles if p["batch"] == default.get(p["model"], p["batch"])]


def batch_label(p):
    return "%d x 64 tokens" % p["batch"] if p["model"] in ("lstm", "gpt") else "%d images" % p["batch"]


def bucket_label(kb):
    if kb is None:
        return "DDP's default"
    return "%s MB" % fmt(kb / 1024, 0) if kb % 1024 == 0 else "%d KB" % kb


def parse_list(text, kind):
    try:
        values = [kind(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError("not a comma-separated list of numbers: %r" % text)
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("needs positive values: %r" % text)
    return values


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", help="JSON written by bench/scaling")
    ap.add_argument("--alpha-us", type=float, default=25.0, help="latency per ring hop on the network (default 25)")
    ap.add_argument("--gbits", type=lambda s: parse_list(s, float), default=[10.0, 25.0, 100.0],
                    help="link bandwidths in Gbit/s (default 10,25,100)")
    ap.add_argument("--hosts", type=lambda s: parse_list(s, int), default=[2, 4, 8, 16, 32, 64],
                    help="host counts (default 2,4,8,16,32,64)")
    ap.add_argument("--bucket-kb", type=int, default=None,
                    help="which measured bucket layout to use (default: the first, DDP's default size)")
    ap.add_argument("--json", action="store_true", help="print the predictions as JSON instead of Markdown")
    args = ap.parse_args(argv)
    if not args.alpha_us >= 0:
        ap.error("--alpha-us must be >= 0, got %s" % args.alpha_us)
    try:
        with open(args.inputs) as f:
            inputs = json.load(f)
        profiles = inputs["profiles"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit("scaling_model: cannot read %s: %s" % (args.inputs, e))
    try:
        if args.json:
            result = []
            for p in predictable(profiles):
                pred = predict(p, layout(p, args.bucket_kb)["buckets"], args.hosts, args.gbits, args.alpha_us)
                for (n, g), (s, e) in sorted(pred.items()):
                    result.append({"model": p["model"], "hosts": n, "gbits": g, "ms_per_step": s, "efficiency": e})
            print(json.dumps({"alpha_us": args.alpha_us, "predictions": result,
                              "check_two_processes": check_two(profiles, inputs)}))
        else:
            print(markdown(inputs, profiles, args))
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as e:
        raise SystemExit("scaling_model: %s is not what bench/scaling writes (%s: %s)" %
                         (args.inputs, type(e).__name__, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
