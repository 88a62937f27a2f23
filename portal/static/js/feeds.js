// Calendar feeds: one click copies a feed address. Delegated from the document, so it also works
// on an address swapped in by htmx; no inline scripts (the Content-Security-Policy forbids them).
(function () {
  "use strict";

  function say(button, text) {
    var status = document.querySelector("[data-copy-status]");
    if (status) { status.textContent = text; }
    var label = button.textContent;
    button.textContent = text.indexOf("Copied") === 0 ? "Copied ✓" : label;
    window.setTimeout(function () { button.textContent = label; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var button = target && target.closest("[data-copy]");
    if (!button) { return; }
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) { return; }
    event.preventDefault();
    input.focus();
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(
        function () { say(button, "Copied to the clipboard."); },
        function () { say(button, "Press Ctrl+C (⌘C on a Mac) to copy the selected address."); }
      );
    } else {
      // Plain http (the demo on another host): the selection lets the keyboard copy it.
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      say(button, copied ? "Copied to the clipboard." : "Press Ctrl+C (⌘C on a Mac) to copy the selected address.");
    }
  });

  // Clicking into an address selects all of it, ready to copy by hand.
  document.addEventListener("focusin", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (target && target.matches("[data-feed-url]")) { target.select(); }
  });
})();
