// relay dashboard: live lists, expandable deliveries, relative times.
//
// Everything works without this file (rows link to their delivery page, filters
// have buttons); it adds what a static page cannot do. Lists refresh by fetching
// the page itself with `X-Relay-Refresh: 1` and swapping each `[data-live]`
// region by id, so the server renders a list one way only. Served under a CSP
// without 'unsafe-inline': no inline handlers, no eval, DOM nodes only.
(function () {
  "use strict";

  var STORAGE_ON = "relay.live";
  var STORAGE_EVERY = "relay.refreshSeconds"; // tests shorten it; operators rarely need to

  // A framed portal may have no storage (a browser blocking another site's frames' storage)
  function stored(key) {
    try { return localStorage.getItem(key); } catch (err) { return null; }
  }
  function store(key, value) {
    try { localStorage.setItem(key, value); } catch (err) { /* the setting lasts this page */ }
  }

  var every = Math.max(1, Number(stored(STORAGE_EVERY)) || 5) * 1000;
  var live = stored(STORAGE_ON) !== "off";
  var timer = null;
  var inFlight = false;
  var expired = false;
  var lastUpdate = Date.now();

  // -- relative times, kept current between refreshes ---------------------------------

  function span(seconds) {
    if (seconds < 60) return Math.floor(seconds) + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m";
    if (seconds < 86400) {
      var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
      return h < 10 && m ? h + "h " + m + "m" : h + "h";
    }
    return Math.floor(seconds / 86400) + "d";
  }

  function relative(iso, due) {
    var delta = (Date.parse(iso) - Date.now()) / 1000;
    if (isNaN(delta)) return null;
    if (due && delta <= 0) return "due now";
    if (Math.abs(delta) < 1) return "now";
    if (Math.abs(delta) >= 30 * 86400) return null; // the server's date stays
    return delta > 0 ? "in " + span(delta) : span(-delta) + " ago";
  }

  function tickTimes(root) {
    root.querySelectorAll("time[data-rel]").forEach(function (el) {
      var text = relative(el.getAttribute("datetime"), el.hasAttribute("data-due"));
      if (text !== null && el.textContent !== text) el.textContent = text;
    });
  }

  // -- expanding a delivery loads its attempts from the delivery page -----------------

  function fetchPage(url) {
    return fetch(url, {
      headers: { "X-Relay-Refresh": "1" },
      credentials: "same-origin",
      cache: "no-store",
      redirect: "manual"
    }).then(function (res) {
      if (res.status === 401 || res.type === "opaqueredirect") {
        sessionExpired();
        throw new Error("session expired");
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.text();
    }).then(function (html) {
      return new DOMParser().parseFromString(html, "text/html");
    });
  }

  // nested <details> (request headers, earlier attempts) stay open across refreshes
  function openKeys(root) {
    var keys = {};
    root.querySelectorAll("details[data-key][open]").forEach(function (d) {
      keys[d.dataset.key] = true;
    });
    return keys;
  }

  function reopen(root, keys) {
    root.querySelectorAll("details[data-key]").forEach(function (d) {
      if (keys[d.dataset.key]) d.open = true;
    });
  }

  function loadAttempts(details) {
    var target = details.querySelector("[data-attempts-target]");
    if (!target || !details.dataset.src) return;
    fetchPage(details.dataset.src).then(function (doc) {
      var attempts = doc.querySelector("[data-attempts]");
      if (!attempts) throw new Error("no attempts in the page");
      var node = document.importNode(attempts, true);
      reopen(node, openKeys(target));
      target.replaceChildren(node);
      tickTimes(node);
      details.dataset.loaded = "1";
    }).catch(function (err) {
      if (!details.dataset.loaded) {
        var p = document.createElement("p");
        p.className = "muted";
        p.textContent = "Could not load the attempts (" + err.message + "). ";
        var a = document.createElement("a");
        a.href = details.dataset.src;
        a.textContent = "Open the delivery";
        p.appendChild(a);
        target.replaceChildren(p);
      }
    });
  }

  function bindRows(root) {
    root.querySelectorAll("details[data-delivery]").forEach(function (details) {
      details.addEventListener("toggle", function () {
        if (details.open) loadAttempts(details);
      });
    });
  }

  // -- live regions -------------------------------------------------------------------

  function swap(old, fresh) {
    var open = {};
    old.querySelectorAll("details[data-delivery][open]").forEach(function (d) {
      open[d.id] = d;
    });
    var node = document.importNode(fresh, true);
    reopen(node, openKeys(old));
    node.querySelectorAll("details[data-delivery]").forEach(function (d) {
      var before = open[d.id];
      if (!before) return;
      // keep what was loaded until the fresh attempts arrive (`toggle` fires on open)
      var slot = before.querySelector("[data-attempts-target]");
      var target = d.querySelector("[data-attempts-target]");
      if (slot && target) target.replaceWith(slot);
      d.dataset.loaded = before.dataset.loaded || "";
      if (before.classList.contains("highlight")) d.classList.add("highlight");
      d.open = true;
    });
    bindRows(node);
    tickTimes(node);
    old.replaceWith(node);
  }

  function busy() {
    // do not pull the page from under someone typing in or selecting from a list
    var active = document.activeElement;
    if (active && active.closest("[data-live]") && active.matches("input, select, textarea")) {
      return true;
    }
    var selection = window.getSelection();
    var anchor = selection && !selection.isCollapsed && selection.anchorNode;
    var element = anchor && (anchor.nodeType === 1 ? anchor : anchor.parentElement);
    return !!(element && element.closest("[data-live]"));
  }

  function refresh() {
    if (inFlight || expired || document.hidden) return;
    var regions = document.querySelectorAll("[data-live][id]");
    if (!regions.length || busy()) return;
    inFlight = true;
    fetchPage(location.href).then(function (doc) {
      regions.forEach(function (old) {
        var fresh = doc.getElementById(old.id);
        if (fresh && fresh.hasAttribute("data-live")) {
          swap(old, fresh);
        }
      });
      lastUpdate = Date.now();
      setToggle();
      var toggle = document.querySelector("[data-live-toggle]");
      if (toggle) {
        toggle.classList.remove("pulse");
        void toggle.offsetWidth;
        toggle.classList.add("pulse");
      }
    }).catch(function () {
      setToggle(true);
    }).then(function () {
      inFlight = false;
    });
  }

  function schedule() {
    if (timer) clearInterval(timer);
    timer = live && !expired ? setInterval(refresh, every) : null;
  }

  function setToggle(failed) {
    var toggle = document.querySelector("[data-live-toggle]");
    if (!toggle) return;
    var label = toggle.querySelector("[data-live-label]");
    toggle.setAttribute("aria-pressed", live && !expired ? "true" : "false");
    toggle.classList.toggle("stale", !!failed);
    var text;
    if (expired) text = "Signed out";
    else if (!live) text = "Paused";
    else if (failed) text = "Reconnecting…";
    else text = "Live";
    label.textContent = text;
    toggle.title = expired ? "The session ended: reload the page to sign in again"
      : live ? "Lists refresh every " + every / 1000 + " s; click to pause"
        : "Auto-refresh is paused; click to resume";
  }

  function sessionExpired() {
    expired = true;
    schedule();
    setToggle();
  }

  // -- small conveniences -------------------------------------------------------------

  function openFromHash() {
    if (!location.hash) return;
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.matches("details[data-delivery]")) {
      target.open = true;
      target.classList.add("highlight");
      target.scrollIntoView({ block: "center" });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector("[data-live-toggle]");
    if (toggle && document.querySelector("[data-live][id]")) {
      toggle.hidden = false;
      toggle.addEventListener("click", function () {
        if (expired) { location.reload(); return; }
        live = !live;
        store(STORAGE_ON, live ? "on" : "off");
        setToggle();
        schedule();
        if (live) refresh();
      });
      setToggle();
    }

    document.querySelectorAll("[data-flash]").forEach(function (flash) {
      var close = flash.querySelector("[data-dismiss]");
      if (!close) return;
      close.hidden = false;
      close.addEventListener("click", function () { flash.remove(); });
    });

    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    });

    // a button shows it is working (a test event waits for the endpoint's answer)
    document.querySelectorAll("form[method='post']").forEach(function (form) {
      form.addEventListener("submit", function () {
        var button = form.querySelector("button[type='submit']");
        if (!button) return;
        button.setAttribute("aria-busy", "true");
        if (form.dataset.busy) button.textContent = form.dataset.busy;
        setTimeout(function () { button.disabled = true; }, 0);
      });
    });

    // a secret shown once: copy it without selecting by hand (the field stays selectable)
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var field = document.getElementById(button.dataset.copy);
      if (!field) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        field.select();
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () {
            if (document.execCommand("copy")) done();
          });
        } else if (document.execCommand("copy")) {
          done();
        }
      });
    });

    bindRows(document);
    openFromHash();
    tickTimes(document);
    setInterval(function () { tickTimes(document); }, 10000);
    schedule();
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && live && Date.now() - lastUpdate > every) refresh();
    });
  });
})();
