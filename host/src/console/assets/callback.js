// The OAuth popup's last page: tell the console's window, then close.
'use strict';
(function () {
  var main = document.getElementById('callback');
  var outcome = main ? main.getAttribute('data-outcome') : 'failed';
  try {
    if (window.opener && !window.opener.closed) {
      window.opener.postMessage({ type: 'claribi-oauth', outcome: outcome }, window.location.origin);
    }
  } catch (e) { /* the console's window polls anyway */ }
  setTimeout(function () { window.close(); }, 700);
})();
