// Foyer's only script besides htmx: focus handling for forms and confirmations without inline JS.
(function () {
  "use strict";

  // Move focus to the first field with an error, so keyboard and screen-reader users land on it.
  function focusFirstError(root) {
    var field = (root || document).querySelector("[aria-invalid='true']");
    if (field) { field.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusFirstError(document);
    // Close the user menu when clicking elsewhere.
    document.addEventListener("click", function (event) {
      document.querySelectorAll("details.usermenu[open]").forEach(function (menu) {
        if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
      });
    });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    focusFirstError(event.detail.target);
  });

  // Plain (non-htmx) forms may ask for confirmation too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();
