// Runs a model exported by `train --export-onnx model.onnx` in ONNX Runtime
// and prints its predictions beside zerograd's, for the ten test images
// train wrote to model.onnx.samples.json.
//
//   npm ci --prefix tests/onnx --ignore-scripts   # onnxruntime-node, once
//   node examples/onnx_predict.js out/model.onnx
const fs = require('fs');
const path = require('path');

function runtime() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    return require(path.join(__dirname, '..', 'tests', 'onnx', 'node_modules', 'onnxruntime-node'));
  }
}

function argmax(values, row, width) {
  let best = 0;
  for (let j = 1; j < width; j++) if (values[row * width + j] > values[row * width + best]) best = j;
  return best;
}

async function main() {
  const model = process.argv[2];
  if (!model) {
    console.error('usage: node examples/onnx_predict.js MODEL.onnx  (with MODEL.onnx.samples.json beside it)');
    process.exit(2);
  }
  const ort = runtime();
  const samples = JSON.parse(fs.readFileSync(`${model}.samples.json`, 'utf8'));
  const session = await ort.InferenceSession.create(model);
  const x = new ort.Tensor('float32', Float32Array.from(samples.input), samples.input_shape);
  const y = (await session.run({ [session.inputNames[0]]: x }))[session.outputNames[0]];
  const rows = samples.input_shape[0], width = y.dims[1];
  let diff = 0;
  console.log(`${model}: input ${session.inputNames[0]} [${samples.input_shape}], output [${y.dims}]`);
  console.log('image  label  onnxruntime  zerograd  largest |difference| of the row');
  for (let i = 0; i < rows; i++) {
    let rowDiff = 0;
    for (let j = 0; j < width; j++)
      rowDiff = Math.max(rowDiff, Math.abs(y.data[i * width + j] - samples.zerograd_output[i * width + j]));
    diff = Math.max(diff, rowDiff);
    console.log(`${String(i).padStart(5)}  ${String(samples.labels[i]).padStart(5)}  ` +
                `${String(argmax(y.data, i, width)).padStart(11)}  ` +
                `${String(argmax(samples.zerograd_output, i, width)).padStart(8)}  ${rowDiff.toExponential(2)}`);
  }
  console.log(`largest difference between ONNX Runtime's and zerograd's outputs: ${diff.toExponential(2)}`);
}

main().catch((e) => {
  console.error(`onnx_predict: ${e.message || e}`);
  process.exit(1);
});
