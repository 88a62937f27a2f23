// The placement editor: clicking the floor plan fills in the position fields (which also work
// without JavaScript), clicking a marker chooses that room or desk. Events are delegated from the
// document, so the editor keeps working after htmx swaps it.
(function () {
  "use strict";

  function editorOf(node) { return node && node.closest ? node.closest("[data-plan-editor]") : null; }

  function clamp(value) { return Math.min(100, Math.max(0, value)); }

  function movePending(editor, x, y) {
    var svg = editor.querySelector("svg[data-plan-canvas]");
    var pending = editor.querySelector("[data-plan-pending]");
    if (!svg || !pending || isNaN(x) || isNaN(y)) { return; }
    var box = svg.viewBox.baseVal;
    pending.setAttribute("transform", "translate(" + (x / 100 * box.width) + " " + (y / 100 * box.height) + ")");
    pending.setAttribute("visibility", "visible");
  }

  function say(editor, text) {
    var status = editor.querySelector("[data-plan-status]");
    if (status) { status.textContent = text; }
  }

  function markChosen(editor, id) {
    editor.querySelectorAll(".plan-marker").forEach(function (marker) {
      marker.classList.toggle("is-chosen", marker.getAttribute("data-resource-id") === id);
    });
  }

  function choose(editor, id) {
    var select = editor.querySelector("select[name='resource']");
    if (!select) { return; }
    select.value = id;
    var option = select.options[select.selectedIndex];
    markChosen(editor, id);
    if (option && option.hasAttribute("data-x")) {
      editor.querySelector("input[name='x']").value = option.getAttribute("data-x");
      editor.querySelector("input[name='y']").value = option.getAttribute("data-y");
      movePending(editor, parseFloat(option.getAttribute("data-x")), parseFloat(option.getAttribute("data-y")));
    }
    say(editor, (option ? option.textContent.trim() : "") + " chosen. Click on the plan where it is, then press Place.");
  }

  document.addEventListener("click", function (event) {
    var svg = event.target.closest ? event.target.closest("svg[data-plan-canvas]") : null;
    var editor = editorOf(svg);
    if (!editor) { return; }
    var marker = event.target.closest("[data-resource-id]");
    if (marker) {
      choose(editor, marker.getAttribute("data-resource-id"));
      return;
    }
    var matrix = svg.getScreenCTM();
    if (!matrix) { return; }
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    var local = point.matrixTransform(matrix.inverse());
    var box = svg.viewBox.baseVal;
    var x = clamp(local.x / box.width * 100);
    var y = clamp(local.y / box.height * 100);
    editor.querySelector("input[name='x']").value = x.toFixed(1);
    editor.querySelector("input[name='y']").value = y.toFixed(1);
    movePending(editor, x, y);
    say(editor, "Position set to " + x.toFixed(1) + " % across, " + y.toFixed(1) + " % down. Press Place to save it.");
  });

  document.addEventListener("change", function (event) {
    var editor = editorOf(event.target);
    if (editor && event.target.matches("select[name='resource']")) { choose(editor, event.target.value); }
  });

  document.addEventListener("input", function (event) {
    var editor = editorOf(event.target);
    if (!editor || !event.target.matches("input[name='x'], input[name='y']")) { return; }
    movePending(editor, parseFloat(editor.querySelector("input[name='x']").value),
      parseFloat(editor.querySelector("input[name='y']").value));
  });
})();
