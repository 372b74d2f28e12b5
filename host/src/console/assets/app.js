// The clariBI console: Data Sources, Add data source, Settings, Explore, Dashboard.
// Every change goes through the console's JSON API with the session's CSRF token; text from the host or
// a vendor is only ever set as text (never as HTML).
'use strict';
(function () {
  var S = { csrf: null, banner: null, connections: [], popupTimer: null };
  var page = function () { return document.getElementById('page'); };

  // ---------------------------------------------------------------- helpers
  function h(tag, props) {
    var e = document.createElement(tag);
    props = props || {};
    Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null || v === false) return;
      if (k === 'text') e.textContent = v;
      else if (k === 'className') e.className = v;
      else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
      else if (v === true) e.setAttribute(k, '');
      else e.setAttribute(k, v);
    });
    for (var i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function append(e, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(e, x); }); return; }
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function render() { var p = clear(page()); for (var i = 0; i < arguments.length; i++) append(p, arguments[i]); }

  function api(method, path, body) {
    var opts = { method: method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
    if (method !== 'GET') {
      opts.headers['Content-Type'] = 'application/json';
      opts.headers['X-CSRF-Token'] = S.csrf || '';
      opts.body = JSON.stringify(body || {});
    }
    return fetch('/api' + path, opts).then(function (r) {
      return r.json().catch(function () { return { error: 'The console answered HTTP ' + r.status + '.' }; }).then(function (j) {
        if (!r.ok) { var e = new Error(j.error || ('HTTP ' + r.status)); e.kind = j.kind; e.status = r.status; throw e; }
        return j;
      });
    });
  }

  function alertBox(kind, text, id) { return h('div', { className: 'alert ' + kind, role: kind === 'error' ? 'alert' : 'status', id: id }, text); }
  function toast(text) {
    var t = document.getElementById('toast');
    t.textContent = text; t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 4200);
  }
  function badge(status) {
    var labels = { 'ready': 'Ready', 'needs-reconnect': 'Needs reconnect', 'insufficient-scope': 'Insufficient scope', 'pending': 'Pending', 'ok': 'OK', 'error': 'Error', 'running': 'Running' };
    return h('span', { className: 'badge ' + status, 'data-status': status }, labels[status] || status);
  }
  function spinner(text) { return h('p', { className: 'muted' }, h('span', { className: 'spinner' }), text); }
  function pretty(name) { var s = String(name).replace(/_usd$/, ' ($)').replace(/_pct$/, ' (%)').replace(/[_.]/g, ' '); return s.charAt(0).toUpperCase() + s.slice(1); }
  function fmtCell(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function fmtTime(iso) { try { return new Date(iso).toLocaleString(); } catch (e) { return iso; } }
  function slug(s) { return String(s).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, ''); }

  function modal(title, text, confirmLabel, danger) {
    return new Promise(function (resolve) {
      var root = document.getElementById('modal-root');
      var close = function (v) { clear(root); resolve(v); };
      var box = h('div', { className: 'modal-back', id: 'confirm-modal' },
        h('div', { className: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'modal-title' },
          h('h2', { id: 'modal-title' }, title),
          h('p', {}, text),
          h('div', { className: 'actions' },
            h('button', { id: 'modal-cancel', onclick: function () { close(false); } }, 'Cancel'),
            h('button', { id: 'modal-confirm', className: danger ? 'danger' : 'primary', onclick: function () { close(true); } }, confirmLabel))));
      clear(root).appendChild(box);
      document.getElementById('modal-confirm').focus();
    });
  }

  function table(columns, rows, opts) {
    opts = opts || {};
    var names = columns.map(function (c) { return typeof c === 'string' ? c : c.name; });
    var types = columns.map(function (c) { return typeof c === 'string' ? null : c.type; });
    var limit = opts.limit || 200;
    var t = h('table', { className: 'result-table' },
      h('thead', {}, h('tr', {}, names.map(function (n) { return h('th', {}, pretty(n)); }))),
      h('tbody', {}, rows.slice(0, limit).map(function (r) {
        return h('tr', {}, r.map(function (v, i) {
          var numeric = typeof v === 'number' || types[i] === 'integer' || types[i] === 'number';
          var text = fmtCell(v);
          return h('td', { className: numeric ? 'num' : null, title: text.length > 30 ? text : null }, text);
        }));
      })));
    var wrap = h('div', { className: 'table-wrap' }, t);
    if (rows.length > limit) return [wrap, h('p', { className: 'muted small' }, 'Showing ' + limit + ' of ' + rows.length + ' rows.')];
    return wrap;
  }

  // ---------------------------------------------------------------- routing
  var routes = {
    sources: sourcesPage, add: addPage, settings: settingsPage, explore: explorePage, dashboard: dashboardPage,
  };
  function route() {
    var parts = (location.hash || '#/sources').replace(/^#\//, '').split('/');
    var name = parts[0] || 'sources';
    if (name === 'sources' && parts[1] === 'add') name = 'add';
    document.querySelectorAll('[data-nav]').forEach(function (a) {
      var nav = a.getAttribute('data-nav');
      a.classList.toggle('active', nav === name || (name === 'add' && nav === 'sources'));
    });
    var fn = routes[name] || sourcesPage;
    fn(decodeURIComponent(parts.slice(1).join('/') || '')).catch(function (e) {
      render(h('h1', {}, 'Something went wrong'), alertBox('error', e.message));
    });
  }

  // ---------------------------------------------------------------- OAuth popup
  // Open the window in the click itself (so no pop-up blocker stops it), then send it to the URL.
  function openPopup() {
    var w = window.open('about:blank', 'claribi-oauth', 'popup=yes,width=560,height=760');
    if (w) {
      try { w.document.title = 'Authorize – clariBI'; w.document.body.textContent = 'Opening the authorization page…'; } catch (e) { /* ignore */ }
    }
    return w;
  }
  // Wait for a setup to leave `authorizing`: the callback route completes it; the popup closes itself.
  function waitForSetup(setup, popup) {
    return new Promise(function (resolve, reject) {
      var closedSince = null;
      var onMessage = function (ev) { if (ev.origin === location.origin && ev.data && ev.data.type === 'claribi-oauth') tick(); };
      window.addEventListener('message', onMessage);
      var done = function (f, v) { clearInterval(S.popupTimer); window.removeEventListener('message', onMessage); f(v); };
      var busy = false;
      var tick = function () {
        if (busy) return;
        busy = true;
        api('GET', '/setups/' + setup).then(function (s) {
          busy = false;
          if (s.status !== 'authorizing' && s.status !== 'completing') return done(resolve, s);
          if (popup && popup.closed && s.status === 'authorizing') {
            closedSince = closedSince || Date.now();
            if (Date.now() - closedSince > 2500) {
              api('POST', '/setups/' + setup + '/cancel').catch(function () {});
              done(reject, new Error('The authorization window was closed before it finished; nothing was stored.'));
            }
          }
        }).catch(function (e) { busy = false; done(reject, e); });
      };
      clearInterval(S.popupTimer);
      S.popupTimer = setInterval(tick, 700);
    });
  }

  // ---------------------------------------------------------------- Data Sources
  function sourcesPage() {
    render(h('div', { className: 'page-head' }, h('div', {}, h('h1', {}, 'Data Sources'))), spinner('Loading data sources…'));
    return api('GET', '/connections').then(function (r) {
      S.connections = r.connections;
      var head = h('div', { className: 'page-head' },
        h('div', {}, h('h1', {}, 'Data Sources'), h('p', { className: 'muted' }, 'Systems clariBI reads, read-only. Credentials stay sealed in the host; connectors never see them.')),
        h('button', { className: 'primary', id: 'add-source', onclick: function () { location.hash = '#/sources/add'; } }, 'Add data source'));
      var flash = S.flash ? alertBox(S.flash.kind, S.flash.text, 'flash') : null;
      S.flash = null;
      if (!r.connections.length) {
        return render(head, flash, h('div', { className: 'panel empty', id: 'no-sources' },
          h('h2', {}, 'No data sources yet'),
          h('p', {}, 'Add one to let clariBI answer questions from it: Close CRM, or any MCP server.'),
          h('button', { className: 'primary', onclick: function () { location.hash = '#/sources/add'; } }, 'Add data source')));
      }
      var errorSlot = h('div', { id: 'sources-error' });
      var rows = [];
      r.connections.forEach(function (c) {
        var actions = h('td', { className: 'actions' });
        if (c.status !== 'ready') actions.appendChild(h('button', { className: 'primary', 'data-reconnect': c.name, onclick: function (ev) { reconnect(c, ev.target, errorSlot); } }, 'Reconnect'));
        actions.appendChild(h('a', { className: 'button', href: '#/settings/' + encodeURIComponent(c.name), 'data-settings': c.name }, 'Settings'));
        rows.push(h('tr', { 'data-source': c.name },
          h('td', {}, h('strong', {}, c.name)),
          h('td', {}, c.connector),
          h('td', { className: 'account' }, c.account || '—'),
          h('td', {}, (c.granted_scopes || []).map(function (s) { return h('span', { className: 'pill' }, s); })),
          h('td', {}, badge(c.status), c.reviews ? h('a', { className: 'pill warn', href: '#/settings/' + encodeURIComponent(c.name), 'data-reviews': c.name }, c.reviews + ' to review') : null),
          actions));
        if (c.fix) rows.push(h('tr', { className: 'fix', 'data-fix': c.name }, h('td', { colspan: '6' }, c.fix)));
      });
      render(head, flash, errorSlot, h('div', { className: 'panel' },
        h('div', { className: 'table-wrap' }, h('table', { className: 'sources', id: 'sources' },
          h('thead', {}, h('tr', {}, ['Name', 'Connector', 'Account', 'Scopes', 'Status', ''].map(function (x) { return h('th', {}, x); }))),
          h('tbody', {}, rows)))));
    });
  }

  function reconnect(c, button, errorSlot) {
    clear(errorSlot);
    if (c.auth_method === 'api-key') {
      var input = h('input', { type: 'password', id: 'rekey-input', placeholder: 'New API key', autocomplete: 'off' });
      var box = h('div', { className: 'panel', id: 'rekey' }, h('h3', {}, 'New API key for ' + c.name),
        h('div', { className: 'row' }, input, h('button', { className: 'primary shrink', id: 'rekey-save', onclick: function () {
          api('POST', '/connections/' + encodeURIComponent(c.name) + '/reconnect', { api_key: input.value }).then(function () {
            input.value = '';
            S.flash = { kind: 'ok', text: 'Reconnected ' + c.name + ': the new key works.' };
            sourcesPage();
          }).catch(function (e) { clear(errorSlot).appendChild(alertBox('error', e.message, 'reconnect-error')); });
        } }, 'Save and check')));
      errorSlot.appendChild(box);
      input.focus();
      return;
    }
    var popup = openPopup();
    button.disabled = true;
    api('POST', '/connections/' + encodeURIComponent(c.name) + '/reconnect').then(function (s) {
      if (popup) popup.location.href = s.authorize_url;
      errorSlot.appendChild(alertBox('info', 'Waiting for the authorization window: sign in to ' + c.connector + ' and grant the read scope.', 'waiting'));
      return waitForSetup(s.setup, popup);
    }).then(function (s) {
      if (s.status === 'failed') throw new Error(s.error);
      S.flash = { kind: 'ok', text: 'Reconnected ' + c.name + ': ' + ((s.outcome && s.outcome.granted_scopes) || []).join(' ') + ' granted.' };
      sourcesPage();
    }).catch(function (e) {
      if (popup && !popup.closed) popup.close();
      button.disabled = false;
      clear(errorSlot).appendChild(alertBox('error', e.message, 'reconnect-error'));
    });
  }

  // ---------------------------------------------------------------- Add data source
  function steps(current) {
    var names = ['Choose a server', 'Authorize', 'Name it'];
    return h('ol', { className: 'steps' }, names.map(function (n, i) {
      return h('li', { className: i < current ? 'done' : (i === current ? 'current' : '') }, h('span', { className: 'n' }, i < current ? '✓' : String(i + 1)), n);
    }));
  }

  function addPage() {
    render(h('h1', {}, 'Add data source'), spinner('Loading connectors…'));
    return api('GET', '/connectors').then(function (r) {
      var area = h('div', { id: 'add-area' });
      var tabs = h('div', { className: 'tabs', role: 'tablist' },
        h('button', { className: 'active', role: 'tab', 'aria-selected': 'true', id: 'tab-mcp' }, 'MCP Servers'),
        h('button', { role: 'tab', disabled: true, title: 'This host connects MCP servers only', id: 'tab-files' }, 'Files & databases'));
      render(h('div', { className: 'page-head' }, h('div', {}, h('h1', {}, 'Add data source'),
        h('p', { className: 'muted' }, 'clariBI connects read-only: write tools are withheld by the host whatever the server offers.'))),
        h('div', { id: 'choose' }, steps(0), tabs), area);
      showCards(area, r.connectors);
    });
  }

  function showCards(area, connectors) {
    clear(area);
    var err = h('div', { id: 'add-error' });
    area.appendChild(err);
    var cards = h('div', { className: 'cards' });
    connectors.forEach(function (c) { cards.appendChild(connectorCard(c, area, err)); });
    area.appendChild(cards);
  }

  function connectorCard(c, area, err) {
    var isClose = c.id === 'close';
    var endpoint = h('input', { type: 'text', id: 'endpoint-' + c.id, value: c.default_endpoint || '', placeholder: 'https://example.com/mcp' });
    var keyInput = h('input', { type: 'password', id: 'api-key-' + c.id, placeholder: isClose ? 'api_…' : 'API key or token', autocomplete: 'off' });
    var keyForm = h('div', { className: 'key-form', hidden: true, id: 'key-form-' + c.id },
      h('label', { for: 'api-key-' + c.id }, isClose ? 'Close API key' : 'API key'), keyInput,
      h('p', { className: 'help' }, 'Sealed by the host; the connector only ever sees a placeholder.'),
      h('div', { className: 'actions' }, h('button', { className: 'primary', id: 'connect-key-' + c.id, onclick: function () {
        start(c, 'api-key', endpoint.value, keyInput, area, err);
      } }, 'Connect with API key')));
    var origins = h('input', { type: 'text', id: 'origins-' + c.id, value: (c.allow_origins || []).join(' '), placeholder: 'https://auth.example.com' });
    var endpointField = h('div', {}, h('label', { for: 'endpoint-' + c.id }, 'Endpoint', c.needs_endpoint ? h('span', { className: 'req' }, '*') : null), endpoint,
      h('label', { for: 'origins-' + c.id }, 'Also allow origins'), origins,
      h('p', { className: 'help' }, 'Optional, space-separated: origins the connection may reach beyond its endpoint and the OAuth URLs its metadata names (an explicit widening, like --allow-origin).'));
    var body = [
      h('div', { className: 'card-top' }, h('div', { className: 'monogram ' + c.id }, isClose ? 'C' : 'M'),
        h('div', {}, h('h3', {}, c.name), h('span', { className: 'muted small' }, isClose ? 'Hosted MCP server · OAuth or API key' : 'Any MCP server (Streamable HTTP)'))),
      h('p', {}, c.description),
      (c.scopes || []).length ? h('p', { className: 'small' }, 'Asks for ', c.scopes.map(function (s) { return h('span', { className: 'pill' }, s); }), ' — read-only.') : null,
      c.needs_endpoint ? endpointField : h('details', {}, h('summary', {}, 'Advanced: endpoint'), endpointField),
    ];
    var actions = h('div', { className: 'actions' });
    if (c.auth_methods.indexOf('oauth') >= 0) {
      actions.appendChild(h('button', { className: 'primary', id: 'authorize-' + c.id, onclick: function () { start(c, 'oauth', endpoint.value, null, area, err); } },
        isClose ? 'Authorize with Close CRM' : 'Authorize (OAuth)'));
    }
    if (c.auth_methods.indexOf('api-key') >= 0) {
      actions.appendChild(h('button', { className: 'link', id: 'use-key-' + c.id, onclick: function () { keyForm.hidden = !keyForm.hidden; if (!keyForm.hidden) keyInput.focus(); } },
        isClose ? 'Use an API key instead' : 'Use an API key'));
    }
    if (!isClose) actions.appendChild(h('button', { className: 'link', id: 'no-auth-' + c.id, onclick: function () { start(c, 'none', endpoint.value, null, area, err); } }, 'No authentication'));
    return h('div', { className: 'card', 'data-connector': c.id }, body, actions, keyForm);
  }

  function start(c, method, endpoint, keyInput, area, err) {
    clear(err);
    var popup = method === 'oauth' ? openPopup() : null;
    var body = { connector: c.id, method: method, endpoint: endpoint.trim() };
    var extra = document.getElementById('origins-' + c.id);
    if (extra && extra.value.trim()) body.allow_origins = extra.value.trim().split(/[\s,]+/);
    if (keyInput) { body.api_key = keyInput.value; keyInput.value = ''; }
    var waiting = h('div', { className: 'panel', id: 'authorizing' },
      steps(1), spinner(method === 'oauth' ? 'Waiting for the authorization window: sign in to ' + c.name + ' and grant the read scope there.' : 'Checking the credentials with ' + c.name + '…'),
      h('button', { id: 'cancel-authorize', onclick: function () { if (popup && !popup.closed) popup.close(); if (S.setup) api('POST', '/setups/' + S.setup + '/cancel').catch(function () {}); addPage(); } }, 'Cancel'));
    var cards = area.querySelector('.cards');
    var choose = document.getElementById('choose');
    if (cards) cards.hidden = true;
    if (choose) choose.hidden = true;
    area.appendChild(waiting);
    api('POST', '/setups', body).then(function (s) {
      S.setup = s.setup;
      if (s.status === 'authorizing') {
        if (popup) popup.location.href = s.authorize_url;
        else waiting.appendChild(h('p', {}, 'Your browser blocked the pop-up. ', h('a', { href: s.authorize_url, target: '_blank', rel: 'noopener', id: 'authorize-link' }, 'Open the authorization page'), '.'));
        return waitForSetup(s.setup, popup);
      }
      return s;
    }).then(function (s) {
      if (s.status === 'failed') throw new Error(s.error);
      nameStep(s, area);
    }).catch(function (e) {
      if (popup && !popup.closed) popup.close();
      waiting.remove();
      if (cards) cards.hidden = false;
      if (choose) choose.hidden = false;
      err.appendChild(alertBox('error', e.message, 'setup-error'));
    });
  }

  function nameStep(s, area) {
    clear(area);
    var name = h('input', { type: 'text', id: 'source-name', value: s.suggested_name || '', autocomplete: 'off' });
    var err = h('div', { id: 'name-error' });
    var finish = h('button', { className: 'primary', id: 'finish', type: 'submit' }, 'Finish');
    var form = h('form', { className: 'panel', id: 'name-form', onsubmit: function (ev) {
      ev.preventDefault();
      clear(err);
      finish.disabled = true;
      api('POST', '/setups/' + s.setup + '/finish', { name: name.value }).then(function (r) {
        S.flash = { kind: 'ok', text: 'Connected ' + r.connected.name + ' (' + (r.connected.account || r.connected.connector) + ').' };
        location.hash = '#/sources';
      }).catch(function (e) { finish.disabled = false; err.appendChild(alertBox('error', e.message, 'finish-error')); name.focus(); });
    } },
      steps(2),
      alertBox('ok', s.connector + ' authorized' + (s.account ? ': ' + s.account : '') + '. Scopes granted: ' + (s.granted_scopes || []).join(' ') + '.', 'authorized'),
      (s.warnings || []).map(function (w) { return alertBox('warn', w); }),
      h('h2', {}, 'Name this data source'),
      h('p', { className: 'muted small' }, 'The AI engine sees its tools as <name>__<tool>. Use a-z, 0-9, - and _.'),
      err,
      h('div', { className: 'row' }, h('div', {}, h('label', { for: 'source-name' }, 'Name'), name),
        h('div', { className: 'shrink' }, finish),
        h('div', { className: 'shrink' }, h('button', { type: 'button', id: 'cancel-name', onclick: function () {
          api('POST', '/setups/' + s.setup + '/cancel').catch(function () {}).then(function () { location.hash = '#/sources'; });
        } }, 'Cancel'))));
    area.appendChild(form);
    name.focus();
    name.select();
  }

  // ---------------------------------------------------------------- Settings
  function settingsPage(name) {
    if (!name) {
      render(h('h1', {}, 'Settings'), spinner('Loading…'));
      return api('GET', '/connections').then(function (r) {
        if (!r.connections.length) return render(h('h1', {}, 'Settings'), h('div', { className: 'panel empty' }, h('p', {}, 'No data sources to configure.')));
        render(h('div', { className: 'page-head' }, h('div', {}, h('h1', {}, 'Settings'), h('p', { className: 'muted' }, 'Choose a data source.'))),
          h('div', { className: 'cards' }, r.connections.map(function (c) {
            return h('a', { className: 'card', href: '#/settings/' + encodeURIComponent(c.name), 'data-settings': c.name },
              h('h3', {}, c.name), h('p', {}, c.connector + (c.account ? ' · ' + c.account : '')), h('div', {}, badge(c.status)));
          })));
      });
    }
    render(h('h1', {}, name), spinner('Loading settings…'));
    return api('GET', '/connections/' + encodeURIComponent(name) + '/settings').then(function (s) {
      var c = s.connection;
      var err = h('div', { id: 'settings-error' });
      var disconnect = h('button', { className: 'danger', id: 'disconnect', onclick: function () {
        modal('Disconnect ' + c.name + '?', 'clariBI revokes its tokens at ' + c.connector + ' where it can and deletes its credentials, its state and its dashboard pins. This cannot be undone.', 'Disconnect', true)
          .then(function (yes) {
            if (!yes) return;
            disconnect.disabled = true;
            return api('POST', '/connections/' + encodeURIComponent(c.name) + '/disconnect').then(function (r) {
              S.flash = r.warning ? { kind: 'warn', text: 'Disconnected ' + r.disconnected + ' and deleted its credentials; the tokens could not be revoked: ' + r.warning }
                : { kind: 'ok', text: 'Disconnected ' + r.disconnected + ': tokens revoked, credentials deleted.' };
              location.hash = '#/sources';
            });
          }).catch(function (e) { disconnect.disabled = false; err.appendChild(alertBox('error', e.message)); });
      } }, 'Disconnect');
      render(
        h('div', { className: 'page-head' }, h('div', {}, h('h1', {}, c.name), h('p', { className: 'muted' }, c.connector + (c.account ? ' · ' + c.account : ''))), badge(c.status)),
        err,
        c.fix ? alertBox('warn', c.fix) : null,
        h('div', { className: 'panel' }, h('h2', {}, 'Connection'), h('dl', { className: 'facts', id: 'facts' },
          h('dt', {}, 'Connector'), h('dd', {}, c.connector),
          h('dt', {}, 'Account'), h('dd', {}, c.account || '—'),
          h('dt', {}, 'Endpoint'), h('dd', { className: 'mono' }, c.endpoint),
          h('dt', {}, 'Authorization'), h('dd', {}, c.auth_method === 'oauth' ? 'OAuth (tokens sealed by the host)' : 'API key (sealed by the host)'),
          h('dt', {}, 'Scopes granted'), h('dd', {}, (c.granted_scopes || []).join(' ') || '—'),
          h('dt', {}, 'Scopes requested'), h('dd', {}, (s.scopes_requested || []).join(' ') || '—'),
          c.last_error ? [h('dt', {}, 'Last error'), h('dd', {}, c.last_error)] : null)),
        h('div', {},
          h('div', { className: 'panel' }, h('h2', {}, 'Grant (read-only)'),
            h('p', { className: 'muted small' }, 'Every URL this connection may reach; anything else is refused before it leaves the machine.'),
            h('ul', { className: 'lines mono', id: 'grant' }, s.grant.map(function (g) { return h('li', {}, g); }))),
          h('div', { className: 'panel' }, h('h2', {}, 'Credentials'),
            h('p', { className: 'muted small' }, 'Where the host attaches each credential. Values are never shown, and the connector holds placeholders only.'),
            h('div', { className: 'table-wrap' }, h('table', { id: 'bindings' },
              h('thead', {}, h('tr', {}, h('th', {}, 'Secret'), h('th', {}, 'Kind'), h('th', {}, 'Goes only to'))),
              h('tbody', {}, s.secrets.map(function (b) {
                return h('tr', {}, h('td', { className: 'mono nowrap' }, b.name), h('td', { className: 'nowrap' }, b.kind),
                  h('td', { className: 'mono small' }, b.goes_to.length ? b.goes_to.map(function (g) { return h('div', {}, g); }) : 'nowhere (the connector\'s own value)'));
              })))))),
        reviewsPanel(c.name),
        h('div', { className: 'panel' }, h('h2', {}, 'Policy (read-only)'),
          h('p', { className: 'muted small' }, 'Change it with claribi-host policy ' + c.name + ' --set FILE.'),
          h('pre', { className: 'block', id: 'policy' }, s.policy_toml)),
        h('div', { className: 'panel' }, h('h2', {}, 'Disconnect'),
          h('p', { className: 'muted' }, 'Revokes the tokens and deletes the credentials and state of this data source.'), disconnect));
    });
  }

  // Tool definitions that changed or appeared upstream wait here until someone approves them.
  function reviewsPanel(name) {
    var panel = h('div', { className: 'panel', id: 'reviews' }, h('h2', {}, 'Tool reviews'), spinner('Checking the tools…'));
    var path = '/connections/' + encodeURIComponent(name) + '/reviews';
    var load = function () {
      return api('GET', path).then(function (r) {
        clear(panel).appendChild(h('h2', {}, 'Tool reviews'));
        if (!r.reviews.length) {
          panel.appendChild(h('p', { className: 'muted', id: 'no-reviews' }, 'Every tool the engine sees is the definition that was approved.'));
          return;
        }
        panel.appendChild(h('p', { className: 'muted small' }, 'These tools changed or appeared upstream since the data source was approved. The engine does not see them until you approve them.'));
        var err = h('div', {});
        panel.appendChild(err);
        var approve = function (body, button) {
          button.disabled = true;
          api('POST', path + '/approve', body).then(function (a) { toast('Approved ' + a.approved.join(', ')); load(); })
            .catch(function (e) { button.disabled = false; clear(err).appendChild(alertBox('error', e.message)); });
        };
        r.reviews.forEach(function (v) {
          var button = h('button', { className: 'primary', 'data-approve': v.tool, onclick: function () { approve({ tools: [v.tool] }, button); } }, 'Approve');
          panel.appendChild(h('div', { className: 'review', 'data-review': v.tool },
            h('h3', {}, v.tool, ' ', h('span', { className: 'pill' }, v.kind === 'new' ? 'new' : 'changed')),
            h('pre', { className: 'block diff' }, v.kind === 'new' ? v.detail + '\n' + v.definition : v.detail),
            button));
        });
        var all = h('button', { id: 'approve-all', onclick: function () { approve({ all: true }, all); } }, 'Approve all');
        panel.appendChild(h('div', { className: 'actions' }, all));
      }).catch(function (e) { clear(panel).appendChild(h('h2', {}, 'Tool reviews')); panel.appendChild(alertBox('error', e.message)); });
    };
    load();
    return panel;
  }

  // ---------------------------------------------------------------- Explore
  function readyConnections() {
    return api('GET', '/connections').then(function (r) { S.connections = r.connections; return r.connections; });
  }

  function explorePage() {
    render(h('h1', {}, 'Explore'), spinner('Loading…'));
    return readyConnections().then(function (conns) {
      if (!conns.length) {
        return render(h('h1', {}, 'Explore'), h('div', { className: 'panel empty' }, h('h2', {}, 'Nothing to explore yet'), h('p', {}, 'Add a data source first.'),
          h('button', { className: 'primary', onclick: function () { location.hash = '#/sources/add'; } }, 'Add data source')));
      }
      var select = h('select', { id: 'explore-source' }, conns.map(function (c) { return h('option', { value: c.name }, c.name + ' — ' + c.connector + (c.account ? ' (' + c.account + ')' : '')); }));
      if (S.exploreSource && conns.some(function (c) { return c.name === S.exploreSource; })) select.value = S.exploreSource;
      var body = h('div', { id: 'explore-body' });
      render(h('div', { className: 'page-head' }, h('div', {}, h('h1', {}, 'Explore'), h('p', { className: 'muted' }, 'Ask the product\'s questions, or run any read tool with a form built from its schema.'))),
        h('div', { className: 'panel' }, h('label', { for: 'explore-source' }, 'Data source'), select), body);
      var show = function () {
        S.exploreSource = select.value;
        var c = conns.filter(function (x) { return x.name === select.value; })[0];
        exploreSource(c, body);
      };
      select.addEventListener('change', show);
      show();
    });
  }

  function exploreSource(c, body) {
    clear(body);
    var tabs = h('div', { className: 'tabs' });
    var area = h('div', {});
    var isClose = c.connector_id === 'close';
    var mk = function (id, label, fn) {
      var b = h('button', { id: id, onclick: function () { tabs.querySelectorAll('button').forEach(function (x) { x.classList.remove('active'); }); b.classList.add('active'); fn(c, clear(area)); } }, label);
      tabs.appendChild(b);
      return b;
    };
    var q = isClose ? mk('tab-questions', 'Ready-made questions', questions) : null;
    var t = mk('tab-tools', 'Read tools', toolsTab);
    body.appendChild(tabs);
    body.appendChild(area);
    (q || t).click();
  }

  function toolsTab(c, area) {
    area.appendChild(spinner('Listing the read tools of ' + c.name + '…'));
    return api('GET', '/connections/' + encodeURIComponent(c.name) + '/tools').then(function (r) {
      clear(area);
      var tools = r.tools.slice().sort(function (a, b) { return a.name < b.name ? -1 : 1; });
      var select = h('select', { id: 'tool' }, tools.map(function (t) { return h('option', { value: t.name }, t.name + (t.title && t.title !== t.name ? ' — ' + t.title : '')); }));
      var preferred = ['find_opportunities', 'aggregation'].filter(function (n) { return tools.some(function (t) { return t.name === n; }); })[0];
      if (preferred) select.value = preferred;
      var desc = h('p', { className: 'muted small', id: 'tool-description' });
      var formArea = h('div', { id: 'tool-form' });
      var err = h('div', { id: 'call-error' });
      var result = h('div', { id: 'call-result' });
      var run = h('button', { className: 'primary', id: 'run-tool', type: 'submit' }, 'Run');
      var form = h('form', { className: 'panel', onsubmit: function (ev) {
        ev.preventDefault();
        clear(err); clear(result);
        var args;
        try { args = window.SchemaForm.values(formArea); } catch (e) { err.appendChild(alertBox('error', e.message)); return; }
        run.disabled = true;
        result.appendChild(spinner('Calling ' + select.value + '…'));
        api('POST', '/connections/' + encodeURIComponent(c.name) + '/call', { tool: select.value, arguments: args }).then(function (res) {
          run.disabled = false;
          showResult(result, res, { connection: c.name, kind: 'tool', target: select.value, arguments: args, title: select.value + ' (' + c.name + ')' });
        }).catch(function (e) { run.disabled = false; clear(result); err.appendChild(alertBox('error', e.message, 'call-error-text')); });
      } },
        h('div', { className: 'row' }, h('div', {}, h('label', { for: 'tool' }, 'Read tool (' + tools.length + (r.withheld ? '; ' + r.withheld + ' write tools withheld' : '') + ')'), select)),
        desc, formArea, h('div', { className: 'actions' }, run));
      var pick = function () {
        var t = tools.filter(function (x) { return x.name === select.value; })[0];
        desc.textContent = (t && t.description) ? t.description.slice(0, 400) : '';
        window.SchemaForm.build((t && t.input_schema) || {}, formArea);
        clear(result); clear(err);
      };
      select.addEventListener('change', pick);
      pick();
      area.appendChild(form);
      area.appendChild(err);
      area.appendChild(result);
    }).catch(function (e) { clear(area).appendChild(alertBox('error', e.message, 'tools-error')); });
  }

  // A result: meta line, chart (with a picker), table, JSON, and Pin to dashboard.
  function showResult(el, res, pin) {
    clear(el);
    var t = res.table;
    if (!t && !res.columns) {
      el.appendChild(h('div', { className: 'panel' }, h('h2', {}, 'Result'), h('pre', { className: 'block', id: 'result-json' }, res.json || res.text || '')));
      return;
    }
    var columns = t ? t.columns : res.columns;
    var rows = t ? t.rows : res.rows;
    var tableForChart = { columns: columns, rows: rows };
    var panel = h('div', { className: 'panel', id: 'result' });
    if (res.summary) panel.appendChild(h('p', { className: 'summary', id: 'answer-summary' }, res.summary));
    var meta = [];
    if (res.pipeline) meta.push('Answers for ' + res.pipeline);
    if (t) meta.push(t.row_count + ' rows' + (t.pagination && t.pagination.has_more ? ' (more on the server: the vendor pages its results)' : ''));
    if (res.duration_ms !== undefined) meta.push(res.duration_ms + ' ms');
    panel.appendChild(h('p', { className: 'result-meta', id: 'result-meta' }, meta.join(' · ')));
    var chartBox = h('div', { className: 'chart', id: 'chart' });
    var spec = res.chart;
    panel.appendChild(chartControls(columns, spec, function (s) { spec = s; window.ClariChart.render(spec, tableForChart, chartBox); }));
    panel.appendChild(chartBox);
    panel.appendChild(h('h3', {}, 'Table'));
    append(panel, table(columns, rows));
    if (res.json) panel.appendChild(h('details', {}, h('summary', {}, 'JSON from the vendor' + (res.json_truncated ? ' (first 64 KiB)' : '')), h('pre', { className: 'block' }, res.json)));
    if (res.calls && res.calls.length) panel.appendChild(h('details', { className: 'calls' }, h('summary', {}, res.calls.length + ' calls made'), h('ol', { className: 'lines mono' }, res.calls.map(function (x) { return h('li', {}, x); }))));
    var title = h('input', { type: 'text', id: 'pin-title', value: pin.title });
    var pinned = h('span', { id: 'pin-state', className: 'muted small' });
    panel.appendChild(h('div', { className: 'pin-bar' }, title, h('button', { id: 'pin', onclick: function (ev) {
      ev.target.disabled = true;
      api('POST', '/pins', { connection: pin.connection, kind: pin.kind, target: pin.target, arguments: pin.arguments, chart: spec || null, title: title.value })
        .then(function () { pinned.textContent = 'Pinned to the dashboard.'; toast('Pinned “' + title.value + '” to the dashboard.'); })
        .catch(function (e) { ev.target.disabled = false; pinned.textContent = e.message; });
    } }, 'Pin to dashboard'), pinned));
    el.appendChild(panel);
    window.ClariChart.render(spec, tableForChart, chartBox);
  }

  function chartControls(columns, spec, onChange) {
    var names = columns.map(function (c) { return typeof c === 'string' ? c : c.name; });
    var types = columns.map(function (c) { return typeof c === 'string' ? null : c.type; });
    var enc = (spec && spec.encoding) || {};
    var cat = enc.y && enc.y.type !== 'quantitative' ? enc.y : (enc.x || {});
    var meas = enc.y && enc.y.type === 'quantitative' ? enc.y : (enc.x || {});
    var mark = h('select', { id: 'chart-mark' }, [['bar', 'Bar'], ['line', 'Line'], ['none', 'No chart']].map(function (o) { return h('option', { value: o[0] }, o[1]); }));
    mark.value = spec ? spec.mark : 'none';
    var category = h('select', { id: 'chart-category' }, names.map(function (n) { return h('option', { value: n }, pretty(n)); }));
    var measure = h('select', { id: 'chart-measure' }, names.filter(function (n, i) { return !types[i] || types[i] === 'integer' || types[i] === 'number'; }).map(function (n) { return h('option', { value: n }, pretty(n)); }));
    if (cat.field) category.value = cat.field;
    if (meas.field) measure.value = meas.field;
    var update = function () {
      if (mark.value === 'none' || !measure.value) return onChange(null);
      var i = names.indexOf(category.value), temporal = types[i] === 'date' || types[i] === 'datetime';
      var m = { field: measure.value, type: 'quantitative', title: pretty(measure.value), aggregate: 'sum' };
      var c = { field: category.value, type: temporal ? 'temporal' : 'nominal', title: pretty(category.value) };
      var s = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: (spec && spec.title) || pretty(measure.value), data: { name: 'table' }, mark: mark.value };
      if (mark.value === 'bar') { c.sort = '-x'; s.encoding = { y: c, x: m }; } else { if (!temporal) c.type = 'ordinal'; s.encoding = { x: c, y: m }; }
      onChange(s);
    };
    [mark, category, measure].forEach(function (x) { x.addEventListener('change', update); });
    return h('div', { className: 'chart-controls' },
      h('label', {}, 'Chart ', mark), h('label', {}, 'By ', category), h('label', {}, 'Measure ', measure));
  }

  // ---------------------------------------------------------------- Ready-made questions
  function questions(c, area) {
    area.appendChild(spinner('Reading the pipelines of ' + c.name + '…'));
    return Promise.all([api('GET', '/explorations'), api('GET', '/connections/' + encodeURIComponent(c.name) + '/exploration-options')]).then(function (r) {
      clear(area);
      var list = r[0].explorations, opts = r[1];
      var formArea = h('div', { id: 'question-form' });
      var result = h('div', { id: 'question-result' });
      var cards = h('div', { className: 'cards' }, list.map(function (x) {
        return h('div', { className: 'card question', 'data-question': x.id, tabindex: '0', onclick: function () {
          cards.querySelectorAll('.question').forEach(function (q) { q.classList.remove('selected'); });
          this.classList.add('selected');
          questionForm(c, x, opts, formArea, result);
        } }, h('h3', {}, '“' + x.question + '”'), h('p', { className: 'small' }, x.how));
      }));
      area.appendChild(cards);
      area.appendChild(formArea);
      area.appendChild(result);
    }).catch(function (e) { clear(area).appendChild(alertBox('error', e.message, 'questions-error')); });
  }

  function questionForm(c, x, opts, formArea, result) {
    clear(formArea); clear(result);
    var fields = {};
    var pipelineSel = null, stageSel = null;
    var stagesOf = function (pid) {
      if (pid === 'all') {
        var seen = {};
        opts.pipelines.forEach(function (p) { p.stages.forEach(function (s) { seen[s] = true; }); });
        return Object.keys(seen);
      }
      var p = opts.pipelines.filter(function (p) { return p.id === pid; })[0];
      return p ? p.stages : [];
    };
    var inputs = x.inputs.map(function (inp) {
      var id = 'q-' + inp.name, el;
      if (inp.kind === 'pipeline') {
        el = pipelineSel = h('select', { id: id }, opts.pipelines.map(function (p) { return h('option', { value: p.id }, p.name); }), h('option', { value: 'all' }, 'All pipelines'));
        var def = opts.pipelines.filter(function (p) { return p.name === inp.default; })[0];
        if (def) el.value = def.id;
      } else if (inp.kind === 'stage') {
        el = stageSel = h('select', { id: id });
      } else if (inp.kind === 'integer') {
        el = h('input', { id: id, type: 'number', step: '1', value: inp.default });
      } else if (inp.kind === 'date') {
        el = h('input', { id: id, type: 'text', placeholder: 'YYYY-MM-DD (today)', value: new Date().toISOString().slice(0, 10) });
      } else if (inp.kind === 'quotas') {
        el = h('div', { className: 'quota-grid', id: id }, opts.reps.map(function (rep) {
          return h('div', {}, h('label', { for: 'quota-' + slug(rep.name) }, rep.name), h('input', { type: 'number', min: '0', step: '1000', id: 'quota-' + slug(rep.name), 'data-rep': rep.name, placeholder: 'quota in $' }));
        }));
      }
      fields[inp.name] = el;
      return h('div', { className: inp.kind === 'quotas' ? 'wide' : '' }, h('label', { for: id }, inp.label), el, inp.help ? h('p', { className: 'help' }, inp.help) : null);
    });
    var fillStages = function () {
      if (!stageSel) return;
      var keep = stageSel.value || 'Proposal';
      clear(stageSel);
      stagesOf(pipelineSel.value).forEach(function (s) { stageSel.appendChild(h('option', { value: s }, s)); });
      if (Array.prototype.some.call(stageSel.options, function (o) { return o.value === keep; })) stageSel.value = keep;
    };
    if (pipelineSel) pipelineSel.addEventListener('change', fillStages);
    fillStages();
    var err = h('div', { id: 'question-error' });
    var run = h('button', { className: 'primary', id: 'run-question', type: 'submit' }, 'Answer');
    var collect = function () {
      var out = {};
      Object.keys(fields).forEach(function (k) {
        var el = fields[k];
        if (k === 'quotas') {
          out.quotas = {};
          el.querySelectorAll('input[data-rep]').forEach(function (i) { if (i.value !== '') out.quotas[i.getAttribute('data-rep')] = Number(i.value); });
        } else if (el.type === 'number') out[k] = el.value === '' ? null : Number(el.value);
        else out[k] = el.value;
      });
      return out;
    };
    formArea.appendChild(h('form', { className: 'panel', id: 'question-' + x.id, onsubmit: function (ev) {
      ev.preventDefault();
      clear(err); clear(result);
      var inputsNow = collect();
      run.disabled = true;
      result.appendChild(spinner('Asking ' + c.name + '…'));
      api('POST', '/explorations/' + x.id + '/run', { connection: c.name, inputs: inputsNow }).then(function (res) {
        run.disabled = false;
        var pname = pipelineSel ? pipelineSel.options[pipelineSel.selectedIndex].text : '';
        showResult(result, res, { connection: c.name, kind: 'exploration', target: x.id, arguments: inputsNow, title: x.question + (pname ? ' — ' + pname : '') });
      }).catch(function (e) { run.disabled = false; clear(result); err.appendChild(alertBox('error', e.message, 'question-error-text')); });
    } }, h('h2', {}, x.question), h('div', { className: 'row top' }, inputs.filter(function (d) { return d.className !== 'wide'; })),
      inputs.filter(function (d) { return d.className === 'wide'; }), h('div', { className: 'actions pin-bar' }, run)));
    formArea.appendChild(err);
  }

  // ---------------------------------------------------------------- Dashboard
  function dashboardPage() {
    render(h('h1', {}, 'Dashboard'), spinner('Loading pins…'));
    return api('GET', '/pins').then(function (r) {
      var head = h('div', { className: 'page-head' }, h('div', {}, h('h1', {}, 'Dashboard'),
        h('p', { className: 'muted' }, 'Pinned calls, run again each time the dashboard opens. Only the calls are kept, never their results.')),
        r.pins.length ? h('button', { id: 'refresh', onclick: function () { dashboardPage(); } }, 'Run all again') : null);
      if (!r.pins.length) {
        return render(head, h('div', { className: 'panel empty', id: 'no-pins' }, h('h2', {}, 'Nothing pinned yet'), h('p', {}, 'Run a read tool or a question in Explore and press Pin to dashboard.'),
          h('button', { className: 'primary', onclick: function () { location.hash = '#/explore'; } }, 'Explore')));
      }
      var grid = h('div', { className: 'dash', id: 'dashboard' });
      render(head, grid);
      var queue = r.pins.map(function (p) { var card = pinCard(p); grid.appendChild(card.el); return function () { return card.run(); }; });
      // Two at a time: each card fills as its calls answer.
      var next = function () { var f = queue.shift(); return f ? f().then(next, next) : null; };
      next(); next();
    });
  }

  function pinCard(p) {
    var status = h('span', {}, badge('running'));
    var meta = h('p', { className: 'meta' }, 'Data source ' + (p.connection || '(gone)') + ' · ' + (p.connector || '') + (p.account ? ' (' + p.account + ')' : ''));
    var when = h('p', { className: 'meta pin-time' }, 'Waiting to run…');
    var chart = h('div', { className: 'chart' });
    var body = h('div', {});
    var el = h('div', { className: 'card', 'data-pin': p.id },
      h('div', { className: 'card-head' }, h('h3', {}, p.title), status), meta, when, chart, body,
      h('div', { className: 'actions' }, h('button', { className: 'link', 'data-unpin': p.id, onclick: function () {
        api('POST', '/pins/' + p.id + '/delete').then(function () { el.remove(); toast('Unpinned “' + p.title + '”.'); });
      } }, 'Unpin')));
    var run = function () {
      return api('POST', '/pins/' + p.id + '/run').then(function (res) {
        clear(status).appendChild(badge(res.status === 'ok' ? 'ok' : 'error'));
        when.textContent = 'Ran ' + fmtTime(res.ran_at) + ' · ' + res.duration_ms + ' ms' + (res.pipeline ? ' · answers for ' + res.pipeline : '');
        if (res.status !== 'ok') { body.appendChild(alertBox('error', res.error)); return; }
        if (res.summary) chart.parentNode.insertBefore(h('p', { className: 'summary' }, res.summary), chart);
        var t = res.table || { columns: res.columns, rows: res.rows };
        if (res.chart) window.ClariChart.render(res.chart, t, chart, 520);
        var details = h('details', {}, h('summary', {}, 'Table (' + (t.rows || []).length + ' rows)'));
        append(details, table(t.columns || [], t.rows || [], { limit: 50 }));
        body.appendChild(details);
      }).catch(function (e) { clear(status).appendChild(badge('error')); body.appendChild(alertBox('error', e.message)); });
    };
    return { el: el, run: run };
  }

  // ---------------------------------------------------------------- start
  function boot() {
    api('GET', '/session').then(function (s) {
      S.csrf = s.csrf;
      document.getElementById('version').textContent = 'claribi-host ' + s.version;
      if (s.banner) { var b = document.getElementById('banner'); b.textContent = s.banner; b.hidden = false; }
      window.addEventListener('hashchange', route);
      route();
    }).catch(function (e) { render(h('h1', {}, 'The console is not available'), alertBox('error', e.message)); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot); else boot();
})();
