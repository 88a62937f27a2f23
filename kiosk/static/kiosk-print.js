// The kiosk's browser-print page: a print button, and back to the welcome screen when left alone.
(function () {
  "use strict";
  var IDLE_MS = 60000;
  var bar = document.querySelector(".kiosk-print-bar");
  if (!bar) { return; }
  var last = Date.now();
  ["pointerdown", "keydown", "touchstart"].forEach(function (name) {
    document.addEventListener(name, function () { last = Date.now(); }, { passive: true });
  });
  window.setInterval(function () {
    if (Date.now() - last > IDLE_MS) { window.location.replace(bar.getAttribute("data-start-over")); }
  }, 1000);
  bar.querySelector("[data-print]").addEventListener("click", function () { window.print(); });
  document.addEventListener("contextmenu", function (event) { event.preventDefault(); });
}());
