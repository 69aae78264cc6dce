// Keyboard shortcuts and the live reply preview. Everything works without this file too.
(function () {
  "use strict";
  function typing(event) {
    var t = event.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  function listKeys(table) {
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-href]"));
    if (!rows.length) return;
    var index = 0;
    function select(i) {
      rows[index].classList.remove("selected");
      index = Math.max(0, Math.min(rows.length - 1, i));
      rows[index].classList.add("selected");
      rows[index].scrollIntoView({ block: "nearest" });
    }
    select(0);
    document.addEventListener("keydown", function (event) {
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "j") select(index + 1);
      else if (event.key === "k") select(index - 1);
      else if (event.key === "Enter" || event.key === "o") window.location = rows[index].dataset.href;
      else return;
      event.preventDefault();
    });
  }

  function refreshPreview(box, category, action) {
    var url = box.dataset.preview + "?category=" + encodeURIComponent(category.value) +
      "&action=" + encodeURIComponent(action.value);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) { document.getElementById("preview").textContent = data.text; })
      .catch(function () { document.getElementById("preview").textContent = box.dataset.unavailable || "…"; });
  }

  function itemKeys() {
    var box = document.getElementById("decide");
    if (!box) return;
    var category = document.getElementById("choose-category");
    var action = document.getElementById("choose-action");
    [category, action].forEach(function (el) {
      el.addEventListener("change", function () { refreshPreview(box, category, action); });
      el.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { event.preventDefault(); submit("form-choose"); }
      });
    });
    var hand = document.getElementById("hand-text");
    var handCategory = document.getElementById("hand-category");
    var handAction = document.getElementById("hand-action");
    hand.dataset.draft = hand.value;
    // The draft follows the chosen request; text the person already changed is only replaced on request.
    [handCategory, handAction].forEach(function (el) {
      el.addEventListener("change", function () {
        var url = box.dataset.preview + "?draft=1&category=" + encodeURIComponent(handCategory.value) +
          "&action=" + encodeURIComponent(handAction.value);
        fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (data) {
            if (hand.value !== hand.dataset.draft &&
                !window.confirm(hand.dataset.replaceQuestion)) return;
            hand.value = hand.dataset.draft = data.text;
          });
      });
    });
    hand.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        document.getElementById("form-hand").requestSubmit();
      }
    });
    function submit(id) {
      var form = document.getElementById(id);
      var button = form.querySelector("button[type=submit]");
      if (button && !button.disabled) form.requestSubmit();
    }
    function open(id, focus) {
      document.getElementById(id).open = true;
      document.getElementById(focus).focus();
    }
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        if (typing(event)) { event.target.blur(); return; }
        submit("form-release");
        return;
      }
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      switch (event.key) {
        case "a": submit("form-accept"); break;
        case "m": submit("form-spam"); break;
        case "c": category.focus(); break;
        case "x": action.focus(); break;
        case "d": submit("form-choose"); break;
        case "s": open("split-box", "split-category-0"); break;
        case "w": open("hand-box", "hand-text"); break;
        case "j": window.location = root() + "/triage"; break;
        default: return;
      }
      event.preventDefault();
    });
  }

  // Where the desk lives: "" at the top of its host, "/desk" behind a proxy that says X-Forwarded-Prefix.
  function root() {
    return document.body.dataset.root || "";
  }

  // A decision waiting out its undo window: a countdown, and "u" takes the latest back.
  function undoKeys() {
    Array.prototype.forEach.call(document.querySelectorAll("form.undo"), function (form) {
      var left = parseInt(form.dataset.left, 10);
      var shown = form.querySelector(".seconds");
      var timer = setInterval(function () {
        left -= 1;
        if (left <= 0) { clearInterval(timer); form.remove(); return; }
        shown.textContent = left;
      }, 1000);
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "u" || typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      var latest = document.getElementById("undo-latest");
      if (!latest) return;
      event.preventDefault();
      latest.form.requestSubmit();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    undoKeys();
    var language = document.getElementById("language");
    if (language) language.addEventListener("change", function () { language.form.requestSubmit(); });
    var table = document.querySelector("table.list[data-href], #queue, #results");
    if (table) listKeys(table);
    itemKeys();
    var search = document.getElementById("search");
    document.addEventListener("keydown", function (event) {
      if (event.key !== "/" || typing(event)) return;
      event.preventDefault();
      if (search) search.focus(); else window.location = root() + "/archive";
    });
  });
})();
