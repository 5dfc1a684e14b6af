// The ONNX export test's last step: ONNX Runtime (onnxruntime-node) runs each
// exported model on the inputs export_models wrote (batches of 1 and 7, and
// two sequence lengths for sequence models) and its outputs must equal zerograd's
// to 1e-5 relative (the largest difference over the output's largest value).
// usage: node run_ort.js OUT_DIR
const fs = require('fs');
const ort = require('onnxruntime-node');

const TOLERANCE = 1e-5;

function readFloats(path) {
  const b = fs.readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

async function main() {
  const out = process.argv[2];
  const cases = fs.readFileSync(`${out}/manifest.txt`, 'utf8').trim().split('\n').map((l) => l.split(' '));
  const worst = {};
  let failed = 0;
  const sessions = {};
  for (const [name, run, inDims, outDims] of cases) {
    sessions[name] = sessions[name] || await ort.InferenceSession.create(`${out}/${name}.onnx`);
    const session = sessions[name];
    const dims = inDims.split(',').map(Number);
    const x = new ort.Tensor('float32', readFloats(`${out}/${name}.r${run}.in`), dims);
    const result = await session.run({ [session.inputNames[0]]: x });
    const y = result[session.outputNames[0]];
    const want = readFloats(`${out}/${name}.r${run}.out`);
    if (y.dims.join(',') !== outDims) {
      console.log(`FAIL ${name} on (${inDims}): ONNX Runtime gives shape ${y.dims}, zerograd ${outDims}`);
      failed++;
      continue;
    }
    let diff = 0, scale = 0;
    for (let i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs(y.data[i] - want[i]));
      scale = Math.max(scale, Math.abs(want[i]));
    }
    const rel = diff / Math.max(scale, 1e-30);
    worst[name] = Math.max(worst[name] || 0, rel);
    const ok = rel <= TOLERANCE && Number.isFinite(rel);
    if (!ok) failed++;
    console.log(`${ok ? 'ok' : 'FAIL'} ${name} on (${inDims}): output (${outDims}), ` +
                `largest difference ${diff.toExponential(2)} (${rel.toExponential(2)} relative)`);
  }
  console.log('largest relative difference per model: ' +
              Object.entries(worst).map(([n, r]) => `${n} ${r.toExponential(2)}`).join(', '));
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
