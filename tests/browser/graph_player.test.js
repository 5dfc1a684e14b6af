// Drives zerograd's HTML graph player in headless Chromium: the apple page
// written by `apple_shopping --html` must show, at every step, what the
// engine narrated on stdout; bigger pages must load and play to the end.
//
// usage: node graph_player.test.js APPLE_SHOPPING OUT_DIR [PAGE.html ...]
'use strict';
const {execFileSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

const CHROMIUM = process.env.ZEROGRAD_CHROMIUM || '/usr/bin/chromium';
const [appleBin, outDir, ...bigPages] = process.argv.slice(2);
if (!appleBin || !outDir) {
  console.error('usage: node graph_player.test.js APPLE_SHOPPING OUT_DIR [PAGE.html ...]');
  process.exit(2);
}

let failures = 0;
function check(ok, what) {
  if (!ok) {
    failures++;
    console.error('FAIL: ' + what);
  }
}

// The engine's own numbers, as apple_shopping's observer narrated them:
// per graph, forward [{fn, out, value}] and backward [{fn, out, upstream,
// inputs: [{name, grad}]}].
function narration(stdout) {
  return stdout.split(/^=== Graph/m).slice(1).map((text) => {
    const [fwdText, bwdText] = text.split(/^Backward:/m);
    const forward = [...fwdText.matchAll(/^\s+\[\d+\] (\w+) .*->\s+(\w+) = (\S+)$/gm)]
      .map(([, fn, out, value]) => ({fn, out, value}));
    const backward = [];
    for (const line of bwdText.split('\n')) {
      let m = line.match(/^\s+\[\d+\] (\w+) node that made (\w+): .* = (\S+)$/);
      if (m) { backward.push({fn: m[1], out: m[2], upstream: m[3], inputs: []}); continue; }
      m = line.match(/^\s+(\w+)\s+receives .* = (\S+)$/);
      if (m && backward.length) backward[backward.length - 1].inputs.push({name: m[1], grad: m[2]});
    }
    return {forward, backward};
  });
}

// What the page shows now: counter, highlighted nodes (first label line,
// i.e. the name), the step panel's numbers and the side table.
const snapshot = (page) => page.evaluate(() => {
  const first = (el) => (el.querySelector('text') || {}).textContent;
  const all = (sel) => [...document.querySelectorAll(sel)];
  return {
    counter: document.getElementById('zg-counter').textContent,
    current: window.zgPlayer.current(),
    pass: (document.querySelector('#zg-step .pass') || {}).textContent,
    fn: all('#zg-graph g.node.act-fn').map(first),
    out: all('#zg-graph g.node.act-out').map(first),
    ins: all('#zg-graph g.node.act-in').map(first),
    upstream: all('#zg-step .upstream').map((e) => e.textContent),
    outValue: all('#zg-step .out-value').map((e) => e.textContent),
    received: all('#zg-step li.recv').map((li) => [li.dataset.name, li.querySelector('.grad').textContent]),
    table: Object.fromEntries(all('#zg-vars-body tr').map((tr) => [tr.dataset.name, tr.querySelector('.grad').textContent])),
  };
});

async function distinctColors(browser, png) {
  const page = await browser.newPage();
  const n = await page.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data, seen = new Set();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, 'data:image/png;base64,' + png.toString('base64'));
  await page.close();
  return n;
}

async function open(browser, file) {
  const page = await browser.newPage();
  await page.setViewport({width: 1400, height: 800});
  const state = {requests: [], errors: []};
  page.on('request', (r) => { if (!/^(file|data):/.test(r.url())) state.requests.push(r.url()); });
  page.on('pageerror', (e) => state.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') state.errors.push(m.text()); });
  const t0 = Date.now();
  await page.goto('file://' + path.resolve(file), {waitUntil: 'load'});
  await page.waitForFunction(() => window.zgPlayer !== undefined, {timeout: 10000});
  state.loadMs = Date.now() - t0;
  return [page, state];
}

async function appleGraph(browser, file, story, graphNo) {
  const [page, state] = await open(browser, file);
  const name = path.basename(file, '.html');
  const steps = await page.evaluate(() => window.zgPlayer.steps);
  check(steps === story.forward.length + story.backward.length,
    `${name}: ${steps} steps, the engine ran ${story.forward.length} forward + ${story.backward.length} backward`);
  for (const [k, f] of story.forward.entries()) {
    await page.keyboard.press('ArrowRight');
    const s = await snapshot(page);
    const at = `${name} forward step ${k + 1}`;
    check(s.current === k + 1 && s.counter.startsWith(`Step ${k + 1} / ${steps}`), `${at}: counter says "${s.counter}"`);
    check(s.pass === 'forward', `${at}: panel says pass "${s.pass}"`);
    check(s.fn.length === 1 && s.fn[0] === f.fn, `${at}: highlighted Function ${JSON.stringify(s.fn)}, engine ran ${f.fn}`);
    check(s.out.length === 1 && s.out[0] === f.out, `${at}: highlighted output ${JSON.stringify(s.out)}, engine made ${f.out}`);
    check(s.outValue[0] === f.value, `${at}: value shown ${s.outValue[0]}, engine computed ${f.value}`);
    if (graphNo === 1 && k === 0) await page.screenshot({path: path.join(outDir, 'apple_forward.png')});
  }
  for (const [k, b] of story.backward.entries()) {
    await page.click('#zg-next');
    const s = await snapshot(page);
    const at = `${name} backward step ${k + 1}`;
    check(s.pass === 'backward', `${at}: panel says pass "${s.pass}"`);
    check(s.fn.length === 1 && s.fn[0] === b.fn, `${at}: highlighted Function ${JSON.stringify(s.fn)}, engine ran ${b.fn}`);
    check(s.out.length === 1 && s.out[0] === b.out, `${at}: highlighted output ${JSON.stringify(s.out)}, engine: ${b.out}`);
    check(s.upstream[0] === b.upstream, `${at}: upstream shown ${s.upstream[0]}, engine ${b.upstream}`);
    const shown = JSON.stringify(s.received), engine = JSON.stringify(b.inputs.map((x) => [x.name, x.grad]));
    check(shown === engine, `${at}: inputs receive ${shown} on the page, ${engine} in the engine`);
    check(JSON.stringify([...s.ins].sort()) === JSON.stringify(b.inputs.map((x) => x.name).sort()),
      `${at}: highlighted inputs ${JSON.stringify(s.ins)}`);
    if (graphNo === 1 && k === 0)
      check(s.table.apple_price === '1.1' && s.table.apple === '', `${name}: table after backward step 1 ${JSON.stringify(s.table)}`);
    if (graphNo === 1 && k === 1) await page.screenshot({path: path.join(outDir, 'apple_backward.png')});
  }
  const last = await snapshot(page);
  if (graphNo === 1) {
    // The book's numbers (chapter 5), which the engine must have produced.
    check(last.table.apple === '2.2' && last.table.apple_num === '110' && last.table.tax === '200',
      `${name}: table at the last step ${JSON.stringify(last.table)}, expected apple 2.2, apple_num 110, tax 200`);
    const received = Object.fromEntries(story.backward.flatMap((b) => b.inputs.map((x) => [x.name, x.grad])));
    check(received.apple === '2.2' && received.apple_num === '110' && received.tax === '200',
      `${name}: engine narrated ${JSON.stringify(received)}`);
  }
  const png = await page.screenshot({path: path.join(outDir, `${name}_last.png`)});
  const colors = await distinctColors(browser, png);
  check(png.length > 20000 && colors > 50, `${name}: last-step screenshot looks blank (${png.length} bytes, ${colors} colors)`);

  await page.keyboard.press('ArrowLeft');
  let s = await snapshot(page);
  const back = story.backward[story.backward.length - 2];
  check(s.current === steps - 1 && s.out[0] === back.out && s.upstream[0] === back.upstream,
    `${name}: ArrowLeft went to step ${s.current} showing ${JSON.stringify(s.out)}`);
  await page.click('#zg-prev');
  s = await snapshot(page);
  check(s.current === steps - 2, `${name}: Previous went to step ${s.current}, expected ${steps - 2}`);
  await page.keyboard.press('Home');
  s = await snapshot(page);
  check(s.current === 0 && s.fn.length === 0 && s.table.apple === '', `${name}: Home shows step ${s.current}, table ${JSON.stringify(s.table)}`);
  await page.select('#zg-speed', '20');
  await page.click('#zg-play');
  await page.waitForFunction((n) => window.zgPlayer.current() === n, {timeout: 5000}, steps);
  s = await snapshot(page);
  const label = await page.$eval('#zg-play', (b) => b.textContent);
  check(s.current === steps && label === 'Play', `${name}: Play stopped at step ${s.current}, button says ${label}`);
  await page.click('#zg-play');  // from the end it starts over
  await new Promise((r) => setTimeout(r, 120));
  await page.click('#zg-play');
  const paused = (await snapshot(page)).current;
  await new Promise((r) => setTimeout(r, 250));
  check(paused < steps && (await snapshot(page)).current === paused, `${name}: Pause did not hold step ${paused}`);
  check(state.requests.length === 0, `${name}: requests left the page: ${state.requests.join(', ')}`);
  check(state.errors.length === 0, `${name}: script errors: ${state.errors.join('; ')}`);
  await page.close();
}

// A big page: loads, plays to the end with the slider and End, zooms.
async function bigGraph(browser, file) {
  const [page, state] = await open(browser, file);
  const name = path.basename(file, '.html');
  const steps = await page.evaluate(() => window.zgPlayer.steps);
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) await page.keyboard.press('ArrowRight');
  const stepMs = (Date.now() - t0) / 20;
  await page.keyboard.press('End');
  let s = await snapshot(page);
  check(s.current === steps && s.pass === 'backward', `${name}: End went to step ${s.current} of ${steps} (${s.pass})`);
  await page.$eval('#zg-slider', (el) => { el.value = Math.floor(el.max / 2); el.dispatchEvent(new Event('input')); });
  s = await snapshot(page);
  check(s.current === Math.floor(steps / 2), `${name}: slider went to step ${s.current}`);
  const before = await page.$eval('#zg-graph svg', (el) => el.getAttribute('viewBox'));
  await page.mouse.move(700, 400);
  await page.mouse.wheel({deltaY: -300});
  const after = await page.$eval('#zg-graph svg', (el) => el.getAttribute('viewBox'));
  check(before !== after, `${name}: wheel did not zoom (viewBox ${before})`);
  await page.mouse.down();
  await page.mouse.move(500, 300, {steps: 4});
  await page.mouse.up();
  const dragged = await page.$eval('#zg-graph svg', (el) => el.getAttribute('viewBox'));
  check(dragged !== after, `${name}: dragging did not pan (viewBox ${after})`);
  await page.screenshot({path: path.join(outDir, `${name}.png`)});
  check(state.requests.length === 0, `${name}: requests left the page: ${state.requests.join(', ')}`);
  check(state.errors.length === 0, `${name}: script errors: ${state.errors.join('; ')}`);
  console.log(`${name}: ${fs.statSync(file).size} bytes, ${steps} steps, loaded in ${state.loadMs} ms, ${stepMs.toFixed(1)} ms per step`);
  await page.close();
}

async function main() {
  setTimeout(() => { console.error('FAIL: the browser test took over 60 s'); process.exit(1); }, 60000).unref();
  fs.mkdirSync(outDir, {recursive: true});
  const stdout = execFileSync(appleBin, ['--html', '--out', outDir], {encoding: 'utf8'});
  const stories = narration(stdout);
  check(stories.length === 2 && stories[0].backward.length === 2 && stories[1].backward.length === 4,
    `apple_shopping's narration: ${JSON.stringify(stories)}`);
  let browser;
  try {
    browser = await puppeteer.launch({executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu']});
  } catch (e) {
    console.error(`FAIL: Chromium (${CHROMIUM}) could not start, so the graph player is untested: ${e.message}\n` +
      'Install it with scripts/install-deps.sh (Debian package chromium) or point ZEROGRAD_CHROMIUM at a Chromium.');
    process.exit(1);
  }
  try {
    await appleGraph(browser, path.join(outDir, 'apple.html'), stories[0], 1);
    await appleGraph(browser, path.join(outDir, 'apple_orange.html'), stories[1], 2);
    for (const file of bigPages) await bigGraph(browser, file);
  } finally {
    await browser.close();
  }
  if (failures) {
    console.error(`${failures} check(s) failed`);
    process.exit(1);
  }
  console.log(`graph player: all checks passed; screenshots in ${outDir}`);
}

main().catch((e) => { console.error('FAIL: ' + (e.stack || e)); process.exit(1); });
