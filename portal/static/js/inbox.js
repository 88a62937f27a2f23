// The inbox: "select every row" and a count of the selected rows (without it the checkboxes still
// work one by one; the select-all box stays hidden), and the "Filters" disclosure: its count of
// active filters follows the fields, and on wide screens of browsers without ::details-content
// it opens (CSS shows the fields there otherwise). No inline scripts (CSP).
(function () {
  "use strict";

  function boxes(form) {
    return Array.prototype.slice.call(form.querySelectorAll('input[name="selected"]'));
  }

  function refresh(form) {
    if (!form) { return; }
    var all = boxes(form);
    var picked = all.filter(function (box) { return box.checked; });
    var master = form.querySelector("[data-inbox-all]");
    if (master) {
      master.hidden = all.length === 0;
      master.checked = all.length > 0 && picked.length === all.length;
      master.indeterminate = picked.length > 0 && picked.length < all.length;
    }
    var note = form.querySelector("[data-inbox-selected]");
    if (note) {
      note.hidden = picked.length === 0;
      note.textContent = picked.length ? "· " + picked.length + " selected" : "";
    }
    form.classList.add("js-selectable");
    form.classList.toggle("has-selection", picked.length > 0);
    all.forEach(function (box) {
      var row = box.closest("tr");
      if (row) { row.classList.toggle("is-selected", box.checked); }
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement)) { return; }
    var form = target.closest("#inbox-bulk");
    if (!form) { return; }
    if (target.hasAttribute("data-inbox-all")) {
      boxes(form).forEach(function (box) { box.checked = target.checked; });
    }
    refresh(form);
  });

  var WIDE = "(min-width: 721px)";

  // Fields that differ from their default, as the server counts them (the sort is no filter).
  function countFilters(form) {
    var count = 0;
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.hasAttribute("data-not-a-filter") || field.type === "submit") { return; }
      var fallback = field.getAttribute("data-default") || "";
      if (field.value.trim() !== fallback) { count += 1; }
    });
    var pill = form.querySelector("[data-inbox-filter-count]");
    var number = form.querySelector("[data-inbox-filter-number]");
    if (pill && number) {
      pill.hidden = count === 0;
      number.textContent = String(count);
    }
  }

  function filtersForm(target) {
    return target && target.closest ? target.closest("#inbox-filters") : null;
  }

  document.addEventListener("input", function (event) {
    var form = filtersForm(event.target);
    if (form) { countFilters(form); }
  });
  document.addEventListener("change", function (event) {
    var form = filtersForm(event.target);
    if (form) { countFilters(form); }
  });

  function openOnWideScreens() {
    var panel = document.querySelector("[data-inbox-filters]");
    if (!panel || !window.matchMedia) { return; }
    var supported = window.CSS && CSS.supports && CSS.supports("selector(::details-content)");
    if (!supported && window.matchMedia(WIDE).matches) { panel.open = true; }
  }

  function init() { refresh(document.getElementById("inbox-bulk")); }
  document.addEventListener("DOMContentLoaded", openOnWideScreens);
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
})();
