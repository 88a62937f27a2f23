// The issue report form: photos chosen one by one add up (a phone camera gives one at a time),
// at most the form's limit, with previews and a remove button; large photos are shrunk in the
// browser before sending (the server re-encodes them anyway), so a report from a phone is quick.
// Without this script the plain file input still works; the server checks everything again.
(function () {
  "use strict";

  var FIT = 2048;
  var chosen = new WeakMap(); // input -> array of File

  function formOf(input) { return input.closest("[data-issue-form]"); }

  function showError(form, text) {
    var box = form.querySelector("[data-photo-error]");
    if (!box) { return; }
    box.querySelector("[data-photo-error-text]").textContent = text || "";
    box.hidden = !text;
  }

  function shrink(file) {
    // Keep small files as they are; decode, fit within FIT px and re-encode the rest as JPEG.
    if (!window.createImageBitmap || !file.type || file.type.indexOf("image/") !== 0 || file.size < 1500000) {
      return Promise.resolve(file);
    }
    return createImageBitmap(file).then(function (bitmap) {
      var scale = Math.min(1, FIT / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) {
          if (!blob) { resolve(file); return; }
          var name = (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
          resolve(new File([blob], name, { type: "image/jpeg" }));
        }, "image/jpeg", 0.85);
      });
    }).catch(function () { return file; });
  }

  // A small data: URL (the page's policy allows data: images, not blob: ones).
  function preview(file) {
    if (window.createImageBitmap) {
      return createImageBitmap(file).then(function (bitmap) {
        var scale = Math.min(1, 240 / Math.max(bitmap.width, bitmap.height));
        var canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(bitmap.width * scale));
        canvas.height = Math.max(1, Math.round(bitmap.height * scale));
        canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        return canvas.toDataURL("image/jpeg", 0.8);
      }).catch(function () { return ""; });
    }
    return new Promise(function (resolve) {
      var reader = new FileReader();
      reader.onload = function () { resolve(String(reader.result || "")); };
      reader.onerror = function () { resolve(""); };
      reader.readAsDataURL(file);
    });
  }

  function render(input) {
    var form = formOf(input);
    var files = chosen.get(input) || [];
    var max = parseInt(form.getAttribute("data-max-photos"), 10) || 3;
    var list = form.querySelector("[data-photo-previews]");
    list.textContent = "";
    files.forEach(function (file, index) {
      var item = document.createElement("li");
      item.className = "iphoto-preview";
      var img = document.createElement("img");
      img.alt = "Photo " + (index + 1);
      preview(file).then(function (url) { if (url) { img.src = url; } });
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "iphoto-remove";
      remove.setAttribute("aria-label", "Remove photo " + (index + 1));
      remove.setAttribute("data-photo-remove", String(index));
      remove.textContent = "×";
      item.appendChild(img);
      item.appendChild(remove);
      list.appendChild(item);
    });
    var label = form.querySelector("[data-photo-pick-label]");
    var pick = label && label.parentElement;
    if (label) {
      label.textContent = files.length === 0 ? "Take or add photos"
        : files.length < max ? "Add another photo (" + files.length + " of " + max + ")"
        : max + " photos added";
    }
    if (pick) { pick.setAttribute("aria-disabled", files.length >= max ? "true" : "false"); }
    input.disabled = false;
    try {
      var transfer = new DataTransfer();
      files.forEach(function (file) { transfer.items.add(file); });
      input.files = transfer.files;
    } catch (ignored) { /* old browsers: the input keeps its own selection */ }
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-photo-input")) { return; }
    var form = formOf(input);
    var max = parseInt(form.getAttribute("data-max-photos"), 10) || 3;
    var maxBytes = (parseInt(form.getAttribute("data-max-photo-mb"), 10) || 10) * 1048576;
    var before = chosen.get(input) || [];
    var added = Array.prototype.slice.call(input.files || []).filter(function (f) { return before.indexOf(f) < 0; });
    var message = "";
    if (before.length + added.length > max) {
      message = "Only " + max + " photos fit in one report: the first " + max + " are kept.";
      added = added.slice(0, Math.max(0, max - before.length));
    }
    Promise.all(added.map(shrink)).then(function (ready) {
      var fitting = ready.filter(function (file) {
        if (file.size > maxBytes) {
          message = "“" + file.name + "” is larger than " + (maxBytes / 1048576) + " MB: choose a smaller photo.";
          return false;
        }
        return true;
      });
      chosen.set(input, before.concat(fitting).slice(0, max));
      showError(form, message);
      render(input);
    });
  });

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-photo-remove]") : null;
    if (button) {
      var form = button.closest("[data-issue-form]");
      var input = form.querySelector("[data-photo-input]");
      var files = (chosen.get(input) || []).slice();
      files.splice(parseInt(button.getAttribute("data-photo-remove"), 10), 1);
      chosen.set(input, files);
      showError(form, "");
      render(input);
      return;
    }
    // A full selection: the picker says so instead of silently replacing the photos.
    var pick = event.target instanceof Element ? event.target.closest(".iphoto-pick") : null;
    if (pick && pick.getAttribute("aria-disabled") === "true") {
      event.preventDefault();
      showError(pick.closest("[data-issue-form]"), "Remove a photo first to add another.");
    }
  });
})();
