#!/usr/bin/env python3
"""The ONNX export test's second step: every exported model passes ONNX's own
checker (full_check: with strict shape inference) and its shape inference
gives each output a shape, its batch axis symbolic (but in *_fixed_batch models),
and axis 1 of the input is the symbolic sequence where the runs have two lengths.
The recurrent models hold one ONNX LSTM, GRU or RNN node per layer and
direction, and few other nodes: no copy of the cell per step.

    /usr/bin/python3 check.py OUT_DIR
"""
import sys

try:
    import onnx
    from onnx import shape_inference
except ImportError:
    print("SKIP: python3-onnx is not installed (apt-get install python3-onnx)", file=sys.stderr)
    sys.exit(77)

# model -> (ONNX operator, one node per layer and direction)
RECURRENT = {"lstm_lm": ("LSTM", 2), "gru_lm": ("GRU", 1), "bidirectional_lstm": ("LSTM", 4), "rnn_tanh": ("RNN", 1)}

out = sys.argv[1]
runs = [line.split() for line in open(f"{out}/manifest.txt")]
names = sorted({r[0] for r in runs})
failed = 0
for name in names:
    model = onnx.load(f"{out}/{name}.onnx")
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:  # the checker's own message says what is wrong
        print(f"FAIL {name}: {e}")
        failed += 1
        continue
    opset = {o.domain: o.version for o in model.opset_import}[""]
    dims = [d.dim_param or d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"ok {name}: opset {opset}, {len(model.graph.node)} nodes, output {dims}, ops {' '.join(ops)}")
    if dims[0] != "batch" and not name.endswith("_fixed_batch"):
        print(f"FAIL {name}: the output's axis 0 is {dims[0]}, not the symbolic batch")
        failed += 1
    lengths = {r[2].split(",")[1] for r in runs if r[0] == name and "," in r[2]}
    axis1 = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:2]
    if len(lengths) > 1 and axis1 != ["sequence"]:
        print(f"FAIL {name}: runs on lengths {sorted(lengths)}, but the input's axis 1 is {axis1}, not the symbolic sequence")
        failed += 1
    if name in RECURRENT:
        op, want = RECURRENT[name]
        got = sum(n.op_type == op for n in model.graph.node)
        # Each node comes with about 20 that reorder its weights; a cell
        # unrolled over 8 steps would be well over 100 per layer.
        if got != want or len(model.graph.node) > 30 * want + 30:
            print(f"FAIL {name}: {got} {op} nodes (want {want}) in {len(model.graph.node)} nodes")
            failed += 1
for name in sorted(set(RECURRENT) - set(names)):
    print(f"FAIL {name}: not exported")
    failed += 1
sys.exit(1 if failed else 0)
