// Live View: every 2 s, fetch the page's live region (same URL with partial=1) and swap it in
// when it changed. The server renders all HTML; this only moves it. Pauses in hidden tabs.
(function () {
  "use strict";
  var INTERVAL_MS = 2000;
  var region = document.getElementById("live");
  var status = document.getElementById("poll-status");
  if (!region) {
    return;
  }
  var lastText = null;

  function pollUrl() {
    var base = region.getAttribute("data-poll") || location.pathname + location.search;
    return base + (base.indexOf("?") >= 0 ? "&" : "?") + "partial=1";
  }

  function say(text, kind) {
    if (status) {
      status.textContent = text;
      status.className = "status " + kind;
    }
  }

  function openDetails() {
    var ids = [];
    region.querySelectorAll("details[open][id]").forEach(function (el) { ids.push(el.id); });
    return ids;
  }

  function reopen(ids) {
    ids.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) {
        el.open = true;
      }
    });
  }

  function tick() {
    if (document.hidden) {
      setTimeout(tick, INTERVAL_MS);
      return;
    }
    fetch(pollUrl(), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          say("session expired: reload the page to log in again", "bad");
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (text) {
        if (text === null) {
          return;
        }
        if (text !== lastText) {
          var open = openDetails();
          region.innerHTML = text;
          reopen(open);
          lastText = text;
        }
        say("live · updated " + new Date().toLocaleTimeString(), "ok");
      })
      .catch(function () {
        say("connection lost: retrying", "bad");
      })
      .then(function () {
        setTimeout(tick, INTERVAL_MS);
      });
  }

  say("live", "ok");
  setTimeout(tick, INTERVAL_MS);
})();
