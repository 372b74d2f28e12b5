// A small SVG renderer for the Vega-Lite subset the host proposes (engine/charts.rs):
//   mark: "bar" | "line"
//   encoding.{x,y}: {field, type: nominal|ordinal|quantitative|temporal, aggregate?: "sum", sort?: "-x"|"-y", title?}
//   data: {name: "table"} (the table given) or {values: [...]}
// A bar chart with a nominal y is horizontal (categories down the side); a line has a temporal or
// ordinal x. Everything is built with DOM calls: no innerHTML, no inline script or style.
'use strict';
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var MAX_BARS = 24;

  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Rows as objects: from a table view {columns:[{name}|name], rows:[[...]]} or from data.values.
  function records(spec, table) {
    if (spec.data && Array.isArray(spec.data.values)) return spec.data.values;
    if (!table) return [];
    var names = (table.columns || []).map(function (c) { return typeof c === 'string' ? c : c.name; });
    return (table.rows || []).map(function (r) {
      var o = {};
      names.forEach(function (n, i) { o[n] = r[i]; });
      return o;
    });
  }

  function num(v) {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && v.trim() !== '' && !isNaN(Number(v))) return Number(v);
    return null;
  }

  function fmt(v) {
    if (v === null || v === undefined) return '';
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'B';
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
    return Math.round(v * 100) / 100 + '';
  }

  function full(v) {
    return (Math.round(v * 100) / 100).toLocaleString('en-US');
  }

  // "Nice" ticks from 0 (or the minimum) to the maximum.
  function ticks(lo, hi, n) {
    if (hi === lo) { hi = lo + 1; }
    var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = span / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [], start = Math.floor(lo / step) * step;
    for (var t = start; t <= hi + step * 0.5; t += step) out.push(Math.round(t * 1e6) / 1e6);
    return out;
  }

  function clip(s, n) {
    s = String(s === null || s === undefined ? '(none)' : s);
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }

  function channels(spec) {
    var e = spec.encoding || {}, x = e.x || {}, y = e.y || {};
    var category, measure;
    if (y.type === 'quantitative') { category = x; measure = y; } else { category = y; measure = x; }
    return { category: category, measure: measure, horizontal: y.type !== 'quantitative' };
  }

  function group(rows, cat, meas, aggregate) {
    var order = [], sums = {};
    rows.forEach(function (r) {
      var k = r[cat.field], v = num(r[meas.field]);
      if (v === null) return;
      var key = k === null || k === undefined ? '(none)' : String(k);
      if (!(key in sums)) { order.push(key); sums[key] = 0; }
      sums[key] = aggregate ? sums[key] + v : (sums[key] + v);
    });
    return order.map(function (k) { return { key: k, value: sums[k] }; });
  }

  function renderBar(svg, spec, rows, width) {
    var ch = channels(spec);
    var data = group(rows, ch.category, ch.measure, ch.measure.aggregate === 'sum');
    var sort = (ch.category.sort || '').replace('-', '');
    if (sort) data.sort(function (a, b) { return b.value - a.value; });
    var rest = data.slice(MAX_BARS);
    data = data.slice(0, MAX_BARS);
    if (rest.length) data.push({ key: 'Other (' + rest.length + ')', value: rest.reduce(function (s, d) { return s + d.value; }, 0) });
    var labelW = Math.min(210, Math.max(80, 7.2 * Math.max.apply(null, data.map(function (d) { return clip(d.key, 30).length; }).concat([4]))));
    var top = 40, rowH = 26, left = labelW + 14, right = 70;
    var height = top + data.length * rowH + 34;
    var plotW = Math.max(120, width - left - right);
    var lo = Math.min(0, Math.min.apply(null, data.map(function (d) { return d.value; }).concat([0])));
    var hi = Math.max.apply(null, data.map(function (d) { return d.value; }).concat([0]));
    var t = ticks(lo, hi, 5);
    lo = Math.min(lo, t[0]); hi = Math.max(hi, t[t.length - 1]);
    var sx = function (v) { return left + (v - lo) / (hi - lo || 1) * plotW; };
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    var grid = el('g', { class: 'grid' }), axis = el('g', { class: 'axis' });
    t.forEach(function (v) {
      grid.appendChild(el('line', { x1: sx(v), x2: sx(v), y1: top - 6, y2: top + data.length * rowH }));
      axis.appendChild(el('text', { x: sx(v), y: top + data.length * rowH + 16, 'text-anchor': 'middle' }, fmt(v)));
    });
    svg.appendChild(grid);
    svg.appendChild(axis);
    var bars = el('g', { class: 'bars' });
    data.forEach(function (d, i) {
      var y = top + i * rowH;
      var x0 = sx(Math.min(0, d.value)), x1 = sx(Math.max(0, d.value));
      var g = el('g', { class: 'mark', 'data-key': d.key, 'data-value': d.value });
      g.appendChild(el('text', { class: 'label', x: labelW + 6, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, clip(d.key, 30)));
      var r = el('rect', { class: 'bar', x: x0, y: y + 4, width: Math.max(1, x1 - x0), height: rowH - 8, rx: 3 });
      r.appendChild(el('title', {}, d.key + ': ' + full(d.value)));
      g.appendChild(r);
      g.appendChild(el('text', { class: 'value', x: x1 + 5, y: y + rowH / 2 + 4 }, fmt(d.value)));
      bars.appendChild(g);
    });
    svg.appendChild(bars);
    var mt = ch.measure.title || ch.measure.field;
    svg.appendChild(el('text', { class: 'label', x: left + plotW / 2, y: height - 2, 'text-anchor': 'middle' }, mt + (ch.measure.aggregate === 'sum' && !/^Sum/.test(mt) ? ' (sum)' : '')));
    return data.length;
  }

  function parseTime(v) {
    if (typeof v !== 'string') return null;
    var t = Date.parse(v.length === 10 ? v + 'T00:00:00Z' : v);
    return isNaN(t) ? null : t;
  }

  function renderLine(svg, spec, rows, width) {
    var e = spec.encoding || {}, x = e.x || {}, y = e.y || {};
    var temporal = x.type === 'temporal';
    var pts = group(rows, x, y, true).map(function (d) {
      return { key: d.key, x: temporal ? parseTime(d.key) : null, value: d.value };
    }).filter(function (p) { return !temporal || p.x !== null; });
    if (temporal) pts.sort(function (a, b) { return a.x - b.x; });
    if (!pts.length) return 0;
    var height = 300, top = 40, left = 62, right = 24, bottom = 46;
    var plotW = Math.max(140, width - left - right), plotH = height - top - bottom;
    var xs = pts.map(function (p, i) { return temporal ? p.x : i; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var sx = function (v) { return left + (x1 === x0 ? plotW / 2 : (v - x0) / (x1 - x0) * plotW); };
    var vals = pts.map(function (p) { return p.value; });
    var t = ticks(Math.min(0, Math.min.apply(null, vals)), Math.max.apply(null, vals.concat([0])), 5);
    var lo = t[0], hi = t[t.length - 1];
    var sy = function (v) { return top + plotH - (v - lo) / (hi - lo || 1) * plotH; };
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    var grid = el('g', { class: 'grid' }), axis = el('g', { class: 'axis' });
    t.forEach(function (v) {
      grid.appendChild(el('line', { x1: left, x2: left + plotW, y1: sy(v), y2: sy(v) }));
      axis.appendChild(el('text', { x: left - 8, y: sy(v) + 4, 'text-anchor': 'end' }, fmt(v)));
    });
    var every = Math.max(1, Math.ceil(pts.length / 6));
    pts.forEach(function (p, i) {
      if (i % every !== 0 && i !== pts.length - 1) return;
      var label = temporal ? new Date(p.x).toISOString().slice(0, 10) : clip(p.key, 14);
      axis.appendChild(el('text', { x: sx(xs[i]), y: top + plotH + 18, 'text-anchor': 'middle' }, label));
    });
    axis.appendChild(el('line', { x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH }));
    svg.appendChild(grid);
    svg.appendChild(axis);
    var d = pts.map(function (p, i) { return (i ? 'L' : 'M') + sx(xs[i]).toFixed(1) + ' ' + sy(p.value).toFixed(1); }).join(' ');
    var area = d + ' L' + sx(xs[xs.length - 1]).toFixed(1) + ' ' + sy(Math.max(lo, 0)) + ' L' + sx(xs[0]).toFixed(1) + ' ' + sy(Math.max(lo, 0)) + ' Z';
    svg.appendChild(el('path', { class: 'area', d: area }));
    svg.appendChild(el('path', { class: 'line', d: d }));
    var marks = el('g', { class: 'marks' });
    pts.forEach(function (p, i) {
      var c = el('circle', { class: 'dot mark', cx: sx(xs[i]), cy: sy(p.value), r: 3.5, 'data-key': p.key, 'data-value': p.value });
      c.appendChild(el('title', {}, p.key + ': ' + full(p.value)));
      marks.appendChild(c);
    });
    svg.appendChild(marks);
    svg.appendChild(el('text', { class: 'label', x: 14, y: top + plotH / 2, transform: 'rotate(-90 14 ' + (top + plotH / 2) + ')', 'text-anchor': 'middle' }, y.title || y.field));
    svg.appendChild(el('text', { class: 'label', x: left + plotW / 2, y: height - 4, 'text-anchor': 'middle' }, x.title || x.field));
    return pts.length;
  }

  // Draw `spec` over `table` into `container` (emptied first). Returns the number of marks drawn.
  function render(spec, table, container, width) {
    while (container.firstChild) container.removeChild(container.firstChild);
    if (!spec || !spec.mark) return 0;
    var rows = records(spec, table);
    var w = width || Math.max(420, Math.min(container.clientWidth || 720, 1100));
    var svg = el('svg', { role: 'img', class: 'chart-svg', 'data-mark': spec.mark });
    var title = typeof spec.title === 'string' ? spec.title : (spec.title && spec.title.text) || '';
    svg.appendChild(el('text', { class: 'title', x: 8, y: 20 }, title));
    var n = spec.mark === 'line' || (spec.mark && spec.mark.type === 'line') ? renderLine(svg, spec, rows, w) : renderBar(svg, spec, rows, w);
    svg.setAttribute('aria-label', title + ' (' + n + ' marks)');
    if (!n) {
      var p = document.createElement('p');
      p.className = 'muted small';
      p.textContent = 'Nothing to chart: no numeric values.';
      container.appendChild(p);
      return 0;
    }
    container.appendChild(svg);
    return n;
  }

  window.ClariChart = { render: render, records: records };
})();
