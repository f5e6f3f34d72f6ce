// orcon console: the little the pages need beyond htmx. No inline script anywhere (the
// Content-Security-Policy forbids it), no third-party code, nothing stored in the browser.
"use strict";

(function () {
  // Validation as you type: the server returns every error with the field's form name;
  // show each next to its field and mark the field invalid for assistive technology.
  // Fields are flagged once touched (or all of them after a send was refused), so a
  // fresh form is not painted red before anything was typed; the summary lists them all.
  var touched = {};
  document.addEventListener("input", function (ev) { if (ev.target.name) { touched[ev.target.name] = true; } });
  document.addEventListener("change", function (ev) { if (ev.target.name) { touched[ev.target.name] = true; } });

  function wasTouched(name) {
    if (touched[name]) { return true; }
    return Object.keys(touched).some(function (k) { return k.indexOf(name + ".") === 0; });
  }

  function showFieldErrors(root) {
    var list = root.querySelector("#error-list");
    if (!list) { return; }
    var fields = {};
    try { fields = JSON.parse(list.getAttribute("data-fields") || "{}"); } catch (e) { fields = {}; }
    var all = list.getAttribute("data-show-all") === "yes";
    document.querySelectorAll(".err[data-err-for]").forEach(function (el) {
      var name = el.getAttribute("data-err-for");
      var msgs = (all || wasTouched(name)) ? fields[name] : null;
      el.textContent = msgs ? msgs.join(" ") : "";
      var input = document.getElementById(el.id.replace(/-err$/, ""));
      if (input && input.matches("input, select, textarea")) {
        if (msgs) { input.setAttribute("aria-invalid", "true"); }
        else { input.removeAttribute("aria-invalid"); }
      }
    });
  }

  // Nothing of the console is kept in the browser: htmx records the current path (with
  // its search words) in sessionStorage, so that storage is emptied after every load and
  // swap. The console itself stores nothing there.
  function forget() {
    try { window.sessionStorage.clear(); window.localStorage.clear(); } catch (e) { /* blocked storage: nothing kept */ }
  }
  document.addEventListener("DOMContentLoaded", forget);
  document.addEventListener("htmx:afterSettle", forget);
  window.addEventListener("pagehide", forget);

  document.addEventListener("htmx:afterSwap", function (ev) {
    if (ev.detail && ev.detail.target && ev.detail.target.id === "checks") {
      showFieldErrors(ev.detail.target);
    }
  });

  // Removing an added item (a person, a route...) is local: the form is re-validated.
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest(".remove-item") : null;
    if (!button) { return; }
    var item = button.closest(".item");
    var form = button.closest("form");
    if (item) { item.remove(); }
    if (form && window.htmx) { window.htmx.trigger(form, "change"); }
  });

  // Live arrivals (server-sent events carry message ids only, never content).
  function announce(text, href) {
    var live = document.getElementById("live");
    if (!live) { return; }
    live.textContent = "";
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    live.appendChild(a);
    live.classList.add("show");
  }

  function refresh(selector, url) {
    var target = document.querySelector(selector);
    if (target && window.htmx) {
      window.htmx.ajax("GET", url, { target: selector, swap: "innerHTML" });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var feed = document.body.getAttribute("data-live");
    if (!feed || !window.EventSource) { return; }
    var source = new EventSource(feed);
    function arrived(kind) {
      return function (ev) {
        var id = String(ev.data || "");
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) { return; }
        announce(kind === "alert" ? "New alert: open it" : "New message arrived: open it", "/m/" + id);
        if (location.pathname === "/inbox") { refresh("#list", location.pathname + location.search); }
        if (location.pathname === "/alerts") { refresh("#alerts-list", "/alerts"); }
      };
    }
    // Whatever arrived between rendering the page and opening the stream: catch up once.
    source.addEventListener("open", function () {
      if (location.pathname === "/inbox") { refresh("#list", location.pathname + location.search); }
      if (location.pathname === "/alerts") { refresh("#alerts-list", "/alerts"); }
    });
    source.addEventListener("message", arrived("message"));
    source.addEventListener("alert", arrived("alert"));
    source.addEventListener("reminder", arrived("alert"));
    window.addEventListener("beforeunload", function () { source.close(); });
  });
})();
