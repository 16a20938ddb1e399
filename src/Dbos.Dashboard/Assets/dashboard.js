// DBOS dashboard: live refresh of the workflow list, and the widths of the step timeline (set here because the page's
// content security policy allows no inline style). No dependencies, no external requests.
(function () {
  'use strict';

  function drawTimelines(root) {
    var bars = root.querySelectorAll('.bar[data-left]');
    for (var i = 0; i < bars.length; i++) {
      bars[i].style.left = bars[i].getAttribute('data-left') + '%';
      bars[i].style.width = bars[i].getAttribute('data-width') + '%';
    }
  }

  function startLive() {
    var live = document.getElementById('live');
    var results = document.getElementById('results');
    var stamp = document.getElementById('refreshed');
    if (!live || !results) {
      return;
    }
    var interval = parseInt(results.getAttribute('data-refresh-ms'), 10) || 3000;
    var timer = null;

    function refresh() {
      var url = new URL(window.location.href);
      url.searchParams.set('fragment', '1');
      fetch(url.toString(), { credentials: 'same-origin' })
        .then(function (response) {
          if (!response.ok) {
            throw new Error('HTTP ' + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          results.innerHTML = html; // Rendered and HTML-encoded by the server.
          if (stamp) {
            stamp.textContent = 'Updated ' + new Date().toLocaleTimeString();
          }
        })
        .catch(function () {
          if (stamp) {
            stamp.textContent = 'Refresh failed; retrying';
          }
        });
    }

    function set(on) {
      if (timer) {
        clearInterval(timer);
        timer = null;
      }
      if (on) {
        timer = setInterval(refresh, interval);
        refresh();
      } else if (stamp) {
        stamp.textContent = '';
      }
      try {
        window.localStorage.setItem('dbos-dashboard-live', on ? '1' : '0');
      } catch (e) {
        // Storage may be unavailable (private mode); the toggle still works for this page.
      }
    }

    live.addEventListener('change', function () { set(live.checked); });
    var stored = null;
    try {
      stored = window.localStorage.getItem('dbos-dashboard-live');
    } catch (e) {
      stored = null;
    }
    if (stored === '1') {
      live.checked = true;
      set(true);
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    drawTimelines(document);
    startLive();
  });
})();
