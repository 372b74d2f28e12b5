// A form from a tool's JSON Schema (the `properties` of an object schema): enums become selects,
// booleans a three-way select, numbers number fields, arrays of enums multi-selects, arrays of
// strings comma-separated text, anything else JSON. Required fields are marked and checked; defaults
// fill the fields. `values()` builds the arguments object, leaving out empty optional fields.
'use strict';
(function () {
  function node(tag, props, children) {
    var e = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      if (k === 'text') e.textContent = props[k];
      else if (k === 'className') e.className = props[k];
      else e.setAttribute(k, props[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  function typeOf(s) {
    if (!s) return 'any';
    var t = s.type;
    if (Array.isArray(t)) t = t.filter(function (x) { return x !== 'null'; })[0];
    if (!t && s.enum) t = typeof s.enum[0] === 'number' ? 'number' : 'string';
    if (!t && (s.anyOf || s.oneOf)) {
      var alt = (s.anyOf || s.oneOf).filter(function (x) { return x && x.type !== 'null'; })[0];
      return typeOf(alt);
    }
    return t || 'any';
  }

  function build(schema, container) {
    while (container.firstChild) container.removeChild(container.firstChild);
    var props = (schema && schema.properties) || {};
    var required = (schema && schema.required) || [];
    var fields = [];
    var names = Object.keys(props);
    // Required fields first, then the rest as the schema lists them.
    names.sort(function (a, b) { return (required.indexOf(b) >= 0) - (required.indexOf(a) >= 0); });
    if (!names.length) {
      container.appendChild(node('p', { className: 'muted small', text: 'This tool takes no arguments.' }));
    }
    names.forEach(function (name) {
      var s = props[name] || {}, t = typeOf(s), req = required.indexOf(name) >= 0;
      var id = 'arg-' + name.replace(/[^A-Za-z0-9_-]/g, '_');
      var label = node('label', { for: id, text: s.title || name });
      if (req) label.appendChild(node('span', { className: 'req', text: '*' }));
      var input, kind = t;
      var items = s.items || {};
      if (s.enum) {
        input = node('select', { id: id, name: name });
        if (!req || s.default === undefined) input.appendChild(node('option', { value: '', text: req ? 'Choose…' : '(any)' }));
        s.enum.forEach(function (v) { input.appendChild(node('option', { value: JSON.stringify(v), text: String(v) })); });
        if (s.default !== undefined) input.value = JSON.stringify(s.default);
        kind = 'enum';
      } else if (t === 'boolean') {
        input = node('select', { id: id, name: name });
        [['', '(not set)'], ['true', 'true'], ['false', 'false']].forEach(function (o) { input.appendChild(node('option', { value: o[0], text: o[1] })); });
        if (s.default !== undefined) input.value = String(s.default);
      } else if (t === 'integer' || t === 'number') {
        input = node('input', { id: id, name: name, type: 'number', step: t === 'integer' ? '1' : 'any' });
        if (s.minimum !== undefined) input.setAttribute('min', s.minimum);
        if (s.maximum !== undefined) input.setAttribute('max', s.maximum);
        if (s.default !== undefined) input.value = s.default;
      } else if (t === 'array' && items.enum) {
        input = node('select', { id: id, name: name, multiple: 'multiple' });
        items.enum.forEach(function (v) { input.appendChild(node('option', { value: JSON.stringify(v), text: String(v) })); });
        kind = 'multi';
      } else if (t === 'array' && (typeOf(items) === 'string' || typeOf(items) === 'any') && !items.properties) {
        input = node('input', { id: id, name: name, type: 'text', placeholder: 'comma-separated' });
        if (Array.isArray(s.default)) input.value = s.default.join(', ');
        kind = 'list';
      } else if (t === 'string') {
        input = node('input', { id: id, name: name, type: 'text' });
        if (s.format === 'date') input.setAttribute('placeholder', 'YYYY-MM-DD');
        if (s.format === 'date-time') input.setAttribute('placeholder', 'YYYY-MM-DDThh:mm:ssZ');
        if (s.default !== undefined) input.value = s.default;
      } else {
        input = node('textarea', { id: id, name: name, placeholder: t === 'array' ? '[ … ] as JSON' : '{ … } as JSON' });
        if (s.default !== undefined) input.value = JSON.stringify(s.default);
        kind = 'json';
      }
      if (req) input.required = true;
      var wrap = node('div', { className: 'field', 'data-field': name }, [label, input]);
      if (s.description) {
        var d = String(s.description);
        wrap.appendChild(node('p', { className: 'help', text: d.length > 220 ? d.slice(0, 219) + '…' : d }));
      }
      container.appendChild(wrap);
      fields.push({ name: name, kind: kind, type: t, input: input, required: req, label: s.title || name });
    });
    container._fields = fields;
    return fields;
  }

  // The arguments object; throws an Error naming the field on a bad value.
  function values(container) {
    var out = {};
    (container._fields || []).forEach(function (f) {
      var el = f.input, v;
      if (f.kind === 'multi') {
        v = Array.prototype.filter.call(el.options, function (o) { return o.selected; }).map(function (o) { return JSON.parse(o.value); });
        if (!v.length) v = undefined;
      } else {
        var raw = (el.value || '').trim();
        if (raw === '') v = undefined;
        else if (f.kind === 'enum') v = JSON.parse(raw);
        else if (f.type === 'boolean') v = raw === 'true';
        else if (f.type === 'integer' || f.type === 'number') {
          v = Number(raw);
          if (isNaN(v) || (f.type === 'integer' && Math.floor(v) !== v)) throw new Error(f.label + ': a ' + f.type + ' is needed.');
        } else if (f.kind === 'list') v = raw.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
        else if (f.kind === 'json') {
          try { v = JSON.parse(raw); } catch (e) { throw new Error(f.label + ': not valid JSON.'); }
        } else v = raw;
      }
      if (v === undefined) {
        if (f.required) throw new Error(f.label + ' is required.');
        return;
      }
      out[f.name] = v;
    });
    return out;
  }

  window.SchemaForm = { build: build, values: values };
})();
