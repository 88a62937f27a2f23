// Room calendars: show only the fields of the chosen calendar system. Without JavaScript every
// provider's fields show, and the server reads only the chosen one's.
(function () {
  function sync(form) {
    var select = form.querySelector('select[name="provider"]');
    if (!select) return;
    form.querySelectorAll(".provider-fields").forEach(function (set) {
      set.hidden = set.dataset.provider !== select.value;
    });
  }
  function wire(root) {
    var form = (root || document).querySelector("#calendar-link-form");
    if (!form || form.dataset.wired) return;
    form.dataset.wired = "1";
    form.addEventListener("change", function (event) {
      if (event.target.name === "provider") sync(form);
    });
    sync(form);
  }
  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSettle", function () { wire(document); });
})();
