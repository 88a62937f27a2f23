// Foyer's only script besides htmx: focus handling for forms and confirmations without inline JS.
(function () {
  "use strict";

  // Move focus to the first field with an error, so keyboard and screen-reader users land on it.
  function focusFirstError(root) {
    var field = (root || document).querySelector("[aria-invalid='true']");
    if (field) { field.focus(); }
    return Boolean(field);
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusFirstError(document);
    // Close the user menu when clicking elsewhere, or with Escape (focus returns to its toggle).
    document.addEventListener("click", function (event) {
      document.querySelectorAll("details.usermenu[open]").forEach(function (menu) {
        if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
      });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") { return; }
      document.querySelectorAll("details.usermenu[open]").forEach(function (menu) {
        menu.removeAttribute("open");
        menu.querySelector("summary").focus();
      });
    });
  });

  // After htmx has settled new content (and handled any autofocus in it), put focus on the first
  // invalid field. The event fires on the new content: with an outerHTML swap the original target
  // is already detached, so search where the event happened, and the page if that is gone.
  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.target && event.target.isConnected ? event.target : document;
    if (root.nodeType === Node.ELEMENT_NODE && root.matches("[aria-invalid='true']")) {
      root.focus();
      return;
    }
    focusFirstError(root);
  });

  // Plain (non-htmx) forms may ask for confirmation too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();
