// Visitors and lobby pages: a print button, and the header's notice panel closing like a menu.
// No inline scripts anywhere (the Content-Security-Policy forbids them): behaviour hangs on
// data-* attributes.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (target && target.closest("[data-print]")) {
      event.preventDefault();
      window.print();
      return;
    }
    // Clicking elsewhere closes an open notice panel.
    document.querySelectorAll("details[data-dismissable][open]").forEach(function (panel) {
      if (!target || !panel.contains(target)) { panel.removeAttribute("open"); }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("details[data-dismissable][open]").forEach(function (panel) {
      panel.removeAttribute("open");
      var summary = panel.querySelector("summary");
      if (summary) { summary.focus(); }
    });
  });
})();
