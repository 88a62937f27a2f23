// Foyer's only script besides htmx: focus handling for forms and confirmations without inline JS.
(function () {
  "use strict";

  // Move focus to the first field with an error, so keyboard and screen-reader users land on it.
  function focusFirstError(root) {
    var field = (root || document).querySelector("[aria-invalid='true']");
    if (field) { field.focus(); }
    return Boolean(field);
  }

  // On a phone the main navigation scrolls sideways: keep the current area in view, and fade
  // the edge(s) where more items are hidden so it is clear there is more to scroll to.
  function markNavEdges(nav) {
    nav.classList.toggle("more-before", nav.scrollLeft > 1);
    nav.classList.toggle("more-after", nav.scrollLeft + nav.clientWidth < nav.scrollWidth - 1);
  }

  function fitNav() {
    var nav = document.querySelector(".mainnav");
    if (!nav) { return; }
    var current = nav.querySelector("[aria-current='page']");
    if (current && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
    markNavEdges(nav);
    nav.addEventListener("scroll", function () { markNavEdges(nav); }, { passive: true });
    window.addEventListener("resize", function () { markNavEdges(nav); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusFirstError(document);
    fitNav();
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
