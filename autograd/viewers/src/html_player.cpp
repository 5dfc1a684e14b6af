// The graph player: plain CSS and JavaScript, no libraries, so that a page
// opens from disk with no network. Data: vars [{n name, s shape, v value,
// g final grad, leaf, c constant, freed, lab (value shown on the graph)}],
// fns [{n name, a attributes, i input vars, o output vars}], rules {name:
// [rule per input]}, steps [{k "f" forward | "b" backward, f fn, up
// upstream grads, in [{g grad, d arithmetic, skip, freed}], lg [[var,
// accumulated grad]]}].
#include "html_player.hpp"

namespace zg::detail {

const char* html_player_style() {
  return R"CSS(
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, Helvetica, Arial, sans-serif; color: #222; background: #fafafa;
  display: flex; flex-direction: column; height: 100vh; }
header { padding: 6px 12px; background: #263238; color: #fff; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 16px; margin: 0; font-weight: 600; }
#zg-counter { font-variant-numeric: tabular-nums; }
#zg-controls { padding: 6px 12px; display: flex; gap: 6px; align-items: center; flex-wrap: wrap;
  border-bottom: 1px solid #ddd; background: #fff; }
#zg-controls button { font: inherit; padding: 3px 10px; border: 1px solid #bbb; border-radius: 4px; background: #f4f4f4;
  cursor: pointer; }
#zg-controls button:hover { background: #e8e8e8; }
#zg-slider { flex: 1; min-width: 160px; }
main { flex: 1; display: flex; min-height: 0; }
#zg-graph { flex: 1; min-width: 0; position: relative; overflow: hidden; cursor: grab; background: #fff; }
#zg-graph.dragging { cursor: grabbing; }
#zg-graph svg text { font-family: Helvetica, Arial, sans-serif; font-size: 11px; }
#zg-graph svg { width: 100%; height: 100%; display: block; user-select: none; }
aside { width: 380px; border-left: 1px solid #ddd; overflow: auto; padding: 8px 12px; background: #fcfcfc; }
#zg-step h2 { font-size: 15px; margin: 4px 0 6px; }
#zg-step .pass { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-size: 12px; margin-right: 6px; }
#zg-step .pass.forward { background: #ef6c00; }
#zg-step .pass.backward { background: #6a1b9a; }
#zg-step ul { padding-left: 18px; margin: 4px 0; }
#zg-step li { margin: 3px 0; }
#zg-step .rule { color: #555; font-style: italic; }
#zg-step .num, #zg-vars td.num { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; word-break: break-all; }
#zg-step .freed { color: #b71c1c; }
#zg-vars { border-collapse: collapse; width: 100%; margin-top: 10px; }
#zg-vars th, #zg-vars td { border-bottom: 1px solid #e3e3e3; text-align: left; padding: 2px 4px; vertical-align: top; }
#zg-vars tr.active td { background: #fff3c4; }
#zg-vars tr.pending td.num { color: #aaa; }
.zg-help { color: #666; font-size: 12px; margin-top: 10px; }
svg g.node.pending { opacity: 0.35; }
svg g.node.freed ellipse { stroke: #b71c1c; stroke-dasharray: 4 3; }
svg g.node.act-fn.fwd polygon, svg g.node.act-fn.fwd path { fill: #ffcc80; stroke: #ef6c00; stroke-width: 3; }
svg g.node.act-fn.bwd polygon, svg g.node.act-fn.bwd path { fill: #e1bee7; stroke: #6a1b9a; stroke-width: 3; }
svg g.node.act-out ellipse { stroke: #ef6c00; stroke-width: 3; }
svg g.node.act-out.bwd ellipse { stroke: #6a1b9a; }
svg g.node.act-in ellipse { stroke: #2e7d32; stroke-width: 3; }
svg g.edge.act-edge path { stroke: #ef6c00; stroke-width: 2.5; }
svg g.edge.act-edge polygon { fill: #ef6c00; stroke: #ef6c00; }
svg g.edge.act-edge.bwd path { stroke: #6a1b9a; }
svg g.edge.act-edge.bwd polygon { fill: #6a1b9a; stroke: #6a1b9a; }
)CSS";
}

const char* html_player_script() {
  return R"JS(
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('zg-data').textContent);
  const steps = data.steps, vars = data.vars, fns = data.fns;
  const $ = (id) => document.getElementById(id);
  const svg = document.querySelector('#zg-graph svg');
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
  const varName = (v) => vars[v].n || ('unnamed ' + (vars[v].s === '()' ? 'scalar' : vars[v].s));
  const rule = (f, i) => ((data.rules[fns[f].n] || [])[i]) || data.generic;

  // When each Variable gets its value and each grad it shows, by step.
  const valueStep = vars.map((v) => (v.leaf ? 0 : Infinity));
  const gradSteps = vars.map(() => []);
  fns.forEach((f) => { f.fwd = 0; });
  steps.forEach((s, k) => { if (s.k === 'f') fns[s.f].fwd = k + 1; });
  // A Function seen only in backward ran before the recording began.
  fns.forEach((f) => { if (!f.fwd) f.o.forEach((v) => { valueStep[v] = 0; }); });
  // An intermediate used once has its whole gradient as soon as its one
  // consumer sends it; one used more waits for its creator's step, where
  // the engine has summed every part.
  const uses = vars.map(() => 0);
  fns.forEach((f) => f.i.forEach((v) => { uses[v]++; }));
  steps.forEach((s, k) => {
    const step = k + 1, f = fns[s.f];
    if (s.k === 'f') f.o.forEach((v) => { valueStep[v] = Math.min(valueStep[v], step); });
    else {
      f.o.forEach((v, j) => { if (s.up[j] !== null) gradSteps[v].push([step, s.up[j]]); });
      f.i.forEach((v, j) => { if (!vars[v].leaf && uses[v] === 1 && !s.in[j].skip) gradSteps[v].push([step, s.in[j].g]); });
      (s.lg || []).forEach(([v, g]) => gradSteps[v].push([step, g]));
    }
  });
  // A page drawn from a graph has no backward steps: the grads it holds
  // show once the forward is done.
  if (!steps.some((s) => s.k === 'b')) vars.forEach((v, i) => { if (v.g !== null) gradSteps[i].push([steps.length, v.g]); });
  const gradAt = (v, step) => {
    let g = null;
    for (const [k, value] of gradSteps[v]) if (k <= step) g = value;
    return g;
  };

  const nodeEl = (id) => document.getElementById(id);
  const varEls = vars.map((v, i) => nodeEl('v' + i));
  const gradLine = varEls.map((el) => {
    if (!el) return null;
    for (const t of el.querySelectorAll('text')) if (t.textContent.startsWith('grad ')) return t;
    return null;
  });
  const valueLine = varEls.map((el) => {
    if (!el) return null;
    for (const t of el.querySelectorAll('text')) if (t.textContent.startsWith('= ')) return t;
    return null;
  });
  vars.forEach((v, i) => { if (v.freed && varEls[i]) varEls[i].classList.add('freed'); });

  const table = $('zg-vars-body');
  const rows = [];
  vars.forEach((v, i) => {
    if (!v.n) return;
    const tr = document.createElement('tr');
    tr.dataset.name = v.n;
    tr.dataset.var = i;
    tr.innerHTML = '<td>' + esc(v.n) + (v.freed ? ' <span class="freed">(freed)</span>' : '') +
      '</td><td class="num value"></td><td class="num grad"></td>';
    table.appendChild(tr);
    rows.push([i, tr]);
  });

  const fnEls = fns.map((f, i) => nodeEl('f' + i));
  const shownVar = vars.map(() => null), shownFn = fns.map(() => null);
  let current = 0, timer = null, marked = [];
  const mark = (el, ...cls) => { if (el) { el.classList.add(...cls); marked.push([el, cls]); } };
  const clearMarks = () => { marked.forEach(([el, cls]) => el.classList.remove(...cls)); marked = []; };

  function highlight(s) {
    const f = fns[s.f], dir = s.k === 'f' ? 'fwd' : 'bwd';
    mark(nodeEl('f' + s.f), 'act-fn', dir);
    f.o.forEach((v, j) => { mark(varEls[v], 'act-out', dir); mark(nodeEl('f' + s.f + '-o' + j), 'act-edge', dir); });
    f.i.forEach((v, j) => {
      if (s.k === 'b' && s.in[j].skip) return;
      mark(varEls[v], 'act-in', dir);
      mark(nodeEl('f' + s.f + '-i' + j), 'act-edge', dir);
    });
  }

  function describe(s, k) {
    const f = fns[s.f], fname = esc(f.n) + (f.a ? ' <span class="rule">' + esc(f.a) + '</span>' : '');
    const outs = f.o.map((v) => '<b>' + esc(varName(v)) + '</b>').join(', ');
    if (s.k === 'f') {
      const ins = f.i.map((v) => '<li>' + esc(varName(v)) + ' = <span class="num">' + esc(vars[v].v) + '</span>' +
        (vars[v].freed && !vars[v].leaf ? ' <span class="freed">(freed once no longer held: ' + esc(f.n) + ' keeps only its shape)</span>' : '') +
        '</li>').join('');
      const res = f.o.map((v) => '<li><b>' + esc(varName(v)) + '</b> = <span class="num out-value">' + esc(vars[v].v) +
        '</span></li>').join('');
      return '<h2><span class="pass forward">forward</span>' + fname + ' makes ' + outs + '</h2>' +
        'Inputs:<ul>' + ins + '</ul>Output:<ul>' + res + '</ul>';
    }
    const up = f.o.map((v, j) => '<li>d/d ' + esc(varName(v)) + ' = <span class="num upstream">' +
      esc(s.up[j] === null ? '0 (unused output)' : s.up[j]) + '</span></li>').join('');
    const ins = f.i.map((v, j) => {
      const x = s.in[j], who = '<b class="in-name">' + esc(varName(v)) + '</b>' +
        (x.freed ? ' <span class="freed">(freed: ' + esc(f.n) + ' kept only its shape)</span>' : '');
      if (x.skip) return '<li>' + who + ': needs no gradient (a constant)</li>';
      return '<li class="recv" data-name="' + esc(vars[v].n) + '">' + who + ' receives <span class="num grad">' + esc(x.g) +
        '</span>' + (x.d ? ' <span class="num">= ' + esc(x.d) + '</span>' : '') +
        '<br><span class="rule">' + esc(rule(s.f, j)) + '</span></li>';
    }).join('');
    return '<h2><span class="pass backward">backward</span>' + fname + ' (made ' + outs + ')</h2>' +
      'Upstream gradient:<ul>' + up + '</ul>Each input receives:<ul>' + ins + '</ul>';
  }

  function render() {
    const step = current, s = steps[step - 1];
    clearMarks();
    // Only what changed touches the DOM: a step on a big graph stays fast.
    vars.forEach((v, i) => {
      const el = varEls[i];
      if (!el) return;
      const has = valueStep[i] <= step, g = gradAt(i, step), key = has + '|' + g;
      if (shownVar[i] === key) return;
      shownVar[i] = key;
      el.classList.toggle('pending', !has);
      if (valueLine[i]) valueLine[i].style.visibility = has ? 'visible' : 'hidden';
      if (gradLine[i]) {
        gradLine[i].style.visibility = g === null ? 'hidden' : 'visible';
        if (g !== null) gradLine[i].textContent = 'grad ' + g;
      }
    });
    fns.forEach((f, i) => {
      const pending = f.fwd > step;
      if (shownFn[i] === pending) return;
      shownFn[i] = pending;
      if (fnEls[i]) fnEls[i].classList.toggle('pending', pending);
    });
    rows.forEach(([i, tr]) => {
      const has = valueStep[i] <= step, g = gradAt(i, step);
      tr.classList.toggle('pending', !has);
      tr.querySelector('.value').textContent = has ? vars[i].v : '';
      tr.querySelector('.grad').textContent = g === null ? '' : g;
      tr.classList.toggle('active', !!s && (fns[s.f].o.includes(i) || fns[s.f].i.includes(i)));
    });
    const nf = steps.filter((x) => x.k === 'f').length;
    let label = 'Step ' + step + ' / ' + steps.length;
    if (s) label += s.k === 'f' ? ' (forward ' + step + ' / ' + nf + ')' : ' (backward ' + (step - nf) + ' / ' + (steps.length - nf) + ')';
    $('zg-counter').textContent = label;
    $('zg-slider').value = step;
    if (s) { highlight(s); $('zg-step').innerHTML = describe(s, step); follow(s); }
    else $('zg-step').innerHTML = '<h2>Before the forward pass</h2>Only the inputs (leaves) have values. Press Next (or &rarr;) to run the graph one Function at a time.';
  }

  function go(step) {
    current = Math.max(0, Math.min(steps.length, step));
    render();
  }

  // Pan and zoom by changing the viewBox; the layout's own box is the fit.
  const base = svg.viewBox.baseVal;
  const full = {x: base.x, y: base.y, w: base.width, h: base.height};
  const view = Object.assign({}, full);
  const graph0 = svg.querySelector('g.graph');
  const shift = graph0 && graph0.transform.baseVal.numberOfItems ? graph0.transform.baseVal.consolidate().matrix : {e: 0, f: 0};
  // Measured once, before any step restyles the graph: a getBBox after a
  // class change would lay the whole SVG out again, 15 ms on 2,000 nodes.
  const fnCenter = fnEls.map((el) => {
    if (!el) return null;
    const b = el.getBBox();
    return [b.x + b.width / 2 + shift.e, b.y + b.height / 2 + shift.f];
  });
  const apply = () => svg.setAttribute('viewBox', [view.x, view.y, view.w, view.h].join(' '));
  const unitsPerPixel = () => { const r = svg.getBoundingClientRect(); return Math.max(view.w / r.width, view.h / r.height); };
  function zoom(factor, cx, cy) {
    view.x = cx - (cx - view.x) * factor; view.y = cy - (cy - view.y) * factor;
    view.w *= factor; view.h *= factor; apply();
  }
  function toGraph(ev) {
    const r = svg.getBoundingClientRect(), u = unitsPerPixel();
    return [view.x + view.w / 2 + (ev.clientX - r.left - r.width / 2) * u, view.y + view.h / 2 + (ev.clientY - r.top - r.height / 2) * u];
  }
  function fit() { Object.assign(view, full); apply(); }
  function follow(s) {
    if (!$('zg-follow').checked) return;
    if (!fnCenter[s.f]) return;
    const [cx, cy] = fnCenter[s.f], m = 0.1;
    if (cx > view.x + view.w * m && cx < view.x + view.w * (1 - m) && cy > view.y + view.h * m && cy < view.y + view.h * (1 - m)) return;
    view.x = cx - view.w / 2; view.y = cy - view.h / 2; apply();
  }
  const host = $('zg-graph');
  host.addEventListener('wheel', (ev) => { ev.preventDefault(); const [x, y] = toGraph(ev); zoom(Math.exp(ev.deltaY * 0.0015), x, y); }, {passive: false});
  let drag = null;
  host.addEventListener('pointerdown', (ev) => { drag = [ev.clientX, ev.clientY]; host.classList.add('dragging'); host.setPointerCapture(ev.pointerId); });
  host.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    const u = unitsPerPixel();
    view.x -= (ev.clientX - drag[0]) * u; view.y -= (ev.clientY - drag[1]) * u;
    drag = [ev.clientX, ev.clientY]; apply();
  });
  const endDrag = () => { drag = null; host.classList.remove('dragging'); };
  host.addEventListener('pointerup', endDrag);
  host.addEventListener('pointercancel', endDrag);

  function play(on) {
    if (timer) { clearInterval(timer); timer = null; }
    if (on) {
      if (current >= steps.length) go(0);
      timer = setInterval(() => { go(current + 1); if (current >= steps.length) play(false); }, 1000 / Number($('zg-speed').value));
    }
    $('zg-play').textContent = timer ? 'Pause' : 'Play';
  }

  $('zg-slider').max = steps.length;
  $('zg-slider').addEventListener('input', (ev) => go(Number(ev.target.value)));
  $('zg-next').addEventListener('click', () => go(current + 1));
  $('zg-prev').addEventListener('click', () => go(current - 1));
  $('zg-first').addEventListener('click', () => go(0));
  $('zg-last').addEventListener('click', () => go(steps.length));
  $('zg-play').addEventListener('click', () => play(!timer));
  $('zg-speed').addEventListener('change', () => { if (timer) play(true); });
  $('zg-fit').addEventListener('click', fit);
  $('zg-zoom-in').addEventListener('click', () => zoom(1 / 1.25, view.x + view.w / 2, view.y + view.h / 2));
  $('zg-zoom-out').addEventListener('click', () => zoom(1.25, view.x + view.w / 2, view.y + view.h / 2));
  document.addEventListener('keydown', (ev) => {
    if (ev.target.tagName === 'INPUT' && ev.target.type !== 'checkbox') return;
    const keys = {ArrowRight: () => go(current + 1), ArrowLeft: () => go(current - 1), Home: () => go(0),
      End: () => go(steps.length), ' ': () => play(!timer), '+': () => $('zg-zoom-in').click(), '-': () => $('zg-zoom-out').click()};
    if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
  });

  // A big graph starts at a readable scale around the first Function
  // instead of fitted into the window as a grey line.
  const r = host.getBoundingClientRect();
  if (full.w > 3 * r.width || full.h > 3 * r.height) {
    view.w = r.width; view.h = r.height;
    view.x = full.x; view.y = full.y + full.h / 2 - view.h / 2;
    apply();
  }
  window.zgPlayer = {go, steps: steps.length, current: () => current};
  go(0);
})();
)JS";
}

}  // namespace zg::detail
