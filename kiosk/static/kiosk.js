// The lobby kiosk's behaviour: idle reset, QR scanning, the signature pad and the badge photo.
// Configured only through data- attributes (the Content-Security-Policy allows no inline script);
// every screen is swapped into #stage by htmx, so each part (re)starts on htmx:load.
(function () {
  "use strict";

  var body = document.body;
  var startOverUrl = body.getAttribute("data-start-over") || "/kiosk/start-over";
  var streams = [];

  function startOver() {
    stopCameras();
    // A full page load: nothing the last visitor typed survives in the page or its history.
    window.location.replace(startOverUrl);
  }

  // ---------------------------------------------------------------------------------------------
  // Idle: a screen with data-idle="60" starts over after that many seconds without a touch,
  // warning for the last 15. A screen with data-return-after="20" counts down and starts over.

  var WARN_SECONDS = 15;
  var lastActivity = Date.now();
  var overlay = document.getElementById("idle-overlay");

  function currentScreen() {
    return document.querySelector("#stage > .screen");
  }

  function format(template, seconds) {
    return (template || "").replace("{s}", String(seconds));
  }

  function hideOverlay() {
    if (overlay && !overlay.hidden) { overlay.hidden = true; }
  }

  function showOverlay(secondsLeft) {
    if (!overlay) { return; }
    overlay.querySelector(".idle-title").textContent = body.getAttribute("data-idle-title");
    overlay.querySelector(".idle-text").textContent = body.getAttribute("data-idle-text");
    overlay.querySelector(".idle-countdown").textContent =
      format(body.getAttribute("data-idle-countdown"), secondsLeft);
    overlay.hidden = false;
  }

  function tick() {
    var screen = currentScreen();
    if (!screen) { return; }
    var returnAfter = parseInt(screen.getAttribute("data-return-after") || "0", 10);
    var idle = parseInt(screen.getAttribute("data-idle") || "0", 10);
    var elapsed = Math.floor((Date.now() - lastActivity) / 1000);
    if (returnAfter > 0) {
      var left = Math.max(returnAfter - Math.floor((Date.now() - screenShownAt) / 1000), 0);
      var countdown = screen.querySelector("[data-countdown]");
      if (countdown) {
        countdown.textContent = format(countdown.getAttribute("data-countdown-text"), left);
      }
      if (left <= 0) { startOver(); }
      return;
    }
    if (idle > 0) {
      var remaining = idle - elapsed;
      if (remaining <= 0) { startOver(); return; }
      if (remaining <= WARN_SECONDS) { showOverlay(remaining); } else { hideOverlay(); }
    } else {
      hideOverlay();
    }
  }

  var screenShownAt = Date.now();

  function activity() {
    lastActivity = Date.now();
    hideOverlay();
  }

  ["pointerdown", "keydown", "input", "touchstart", "wheel"].forEach(function (name) {
    document.addEventListener(name, activity, { passive: true, capture: true });
  });
  if (overlay) { overlay.addEventListener("click", activity); }

  // ---------------------------------------------------------------------------------------------
  // Cameras

  function stopCameras() {
    streams.forEach(function (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
    });
    streams = [];
  }

  function openCamera(video) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return Promise.reject(new Error("no camera API"));
    }
    return navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false
    }).then(function (stream) {
      if (!video.isConnected) {  // the screen changed while the camera was starting
        stream.getTracks().forEach(function (track) { track.stop(); });
        throw new Error("gone");
      }
      streams.push(stream);
      video.srcObject = stream;
      return video.play().then(function () { return stream; });
    });
  }

  function cameraFailed(root) {
    root.classList.add("camera-off");
    var note = root.querySelector("[data-camera-note]");
    if (note) { note.hidden = false; }
  }

  // QR codes: decode video frames in the browser with jsQR; no image leaves the tablet.
  var INVITATION = /^[\s-]*([0-9A-Za-z][\s-]*){8}$/;
  var CHECKOUT = /^FOYER-OUT:\d{1,12}\.[0-9a-f]{20}$/;

  function startScanner(root) {
    var video = root.querySelector("video");
    var form = document.querySelector(root.getAttribute("data-form"));
    var input = document.querySelector(root.getAttribute("data-input"));
    var expect = root.getAttribute("data-expect");
    if (!video || !form || !input || typeof window.jsQR !== "function") {
      cameraFailed(root);
      return;
    }
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var done = false;
    openCamera(video).then(function () {
      root.classList.add("camera-on");
      function scan() {
        if (done || !video.isConnected) { return; }
        if (video.readyState >= 2 && video.videoWidth) {
          var scale = Math.min(1, 640 / video.videoWidth);
          canvas.width = Math.round(video.videoWidth * scale);
          canvas.height = Math.round(video.videoHeight * scale);
          context.drawImage(video, 0, 0, canvas.width, canvas.height);
          var image = context.getImageData(0, 0, canvas.width, canvas.height);
          var found = window.jsQR(image.data, image.width, image.height, {
            inversionAttempts: "attemptBoth"
          });
          var text = found && found.data ? found.data.trim() : "";
          if (text && (expect === "checkout" ? CHECKOUT.test(text) : INVITATION.test(text))) {
            done = true;
            root.classList.add("scanned");
            input.value = text;
            stopCameras();
            form.requestSubmit();
            return;
          }
        }
        window.setTimeout(scan, 180);
      }
      scan();
    }).catch(function () { if (root.isConnected) { cameraFailed(root); } });
  }

  // The badge photo: a still from the camera, scaled down, as a JPEG data URL in a hidden field.
  function startPhoto(root) {
    var video = root.querySelector("video");
    var still = root.querySelector(".photo-still");
    var input = document.querySelector(root.getAttribute("data-input"));
    var form = root.closest("form");
    var take = form.querySelector("[data-photo-take]");
    var retake = form.querySelector("[data-photo-retake]");
    var submit = form.querySelector("[data-photo-submit]");

    function showStill(dataUrl) {
      still.src = dataUrl;
      still.hidden = false;
      video.hidden = true;
      take.hidden = true;
      retake.hidden = false;
      submit.hidden = false;
    }

    if (input.value) {
      showStill(input.value);
      return;
    }
    submit.hidden = true;
    take.hidden = false;
    function goOnWithout() {
      cameraFailed(root);
      take.hidden = true;
      submit.hidden = false;
    }
    // A camera that never answers (a permission prompt nobody sees) must not block the visitor.
    var patience = window.setTimeout(function () {
      if (root.isConnected && !root.classList.contains("camera-on")) { goOnWithout(); }
    }, 8000);
    openCamera(video).then(function () {
      window.clearTimeout(patience);
      if (!root.classList.contains("camera-off")) {
        root.classList.add("camera-on");
      }
    }).catch(function () {
      window.clearTimeout(patience);
      goOnWithout();
    });
    take.addEventListener("click", function () {
      if (!video.videoWidth) { return; }
      var side = Math.min(video.videoWidth, video.videoHeight);
      var canvas = document.createElement("canvas");
      canvas.width = canvas.height = Math.min(side, 640);
      canvas.getContext("2d").drawImage(
        video,
        (video.videoWidth - side) / 2, (video.videoHeight - side) / 2, side, side,
        0, 0, canvas.width, canvas.height
      );
      input.value = canvas.toDataURL("image/jpeg", 0.85);
      showStill(input.value);
    });
    retake.addEventListener("click", function () {
      input.value = "";
      still.hidden = true;
      video.hidden = false;
      retake.hidden = true;
      submit.hidden = true;
      take.hidden = false;
      if (!video.srcObject || !video.srcObject.active) {
        openCamera(video).catch(function () {
          cameraFailed(root);
          take.hidden = true;
          submit.hidden = false;
        });
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Signature: signature_pad on a canvas sized to its box, kept as a PNG data URL in a hidden field.

  function startSignature(root) {
    var canvas = root.querySelector("canvas");
    var input = document.querySelector(root.getAttribute("data-input"));
    if (!canvas || !input || typeof window.SignaturePad !== "function") { return; }
    var pad = new window.SignaturePad(canvas, {
      minWidth: 1.2,
      maxWidth: 3.2,
      penColor: "#10201d",
      backgroundColor: "rgba(0,0,0,0)"
    });

    function fit() {
      // One canvas pixel per CSS pixel, even on a high-density tablet: a signature needs no more,
      // and a 4x smaller image keeps the check-in's server time (decode, check, re-encode) low.
      var ratio = 1;
      var data = pad.isEmpty() ? null : pad.toData();
      canvas.width = canvas.offsetWidth * ratio;
      canvas.height = canvas.offsetHeight * ratio;
      canvas.getContext("2d").scale(ratio, ratio);
      pad.clear();
      if (data) { pad.fromData(data); }
    }

    fit();
    if (input.value) {
      pad.fromDataURL(input.value, {
        width: canvas.offsetWidth,
        height: canvas.offsetHeight
      }).catch(function () { input.value = ""; });
      root.classList.add("has-ink");
    }
    pad.addEventListener("endStroke", function () {
      input.value = pad.isEmpty() ? "" : pad.toDataURL("image/png");
      root.classList.toggle("has-ink", !pad.isEmpty());
      var field = root.closest(".field.has-error");
      if (field) {
        field.classList.remove("has-error");
        var error = field.querySelector(".field-error");
        if (error) { error.hidden = true; }
      }
    });
    var clear = root.querySelector("[data-signature-clear]");
    if (clear) {
      clear.addEventListener("click", function () {
        pad.clear();
        input.value = "";
        root.classList.remove("has-ink");
      });
    }
    window.addEventListener("resize", function () { if (canvas.isConnected) { fit(); } });
  }

  // The typed name as the whole signature: hide the drawing box while the box is ticked.
  function startTypedSignature(box) {
    var signing = box.closest("[data-signing]");
    if (!signing) { return; }
    box.addEventListener("change", function () {
      signing.classList.toggle("is-typed", box.checked);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Codes are shown as people read them: upper case, a dash after four characters.

  function formatCode(input) {
    input.addEventListener("input", function () {
      var raw = input.value.toUpperCase().replace(/[^0-9A-Z]/g, "");
      if (raw.length > 8) { return; }  // something else was pasted: leave it as it is
      var pretty = raw.length > 4 ? raw.slice(0, 4) + "-" + raw.slice(4) : raw;
      if (pretty !== input.value) { input.value = pretty; }
    });
  }

  // Typing into a field marked wrong takes the mark away: the message was about the old text.
  document.addEventListener("input", function (event) {
    var field = event.target.closest && event.target.closest(".field.has-error");
    if (!field || !event.target.matches("input[aria-invalid='true']")) { return; }
    event.target.removeAttribute("aria-invalid");
    field.classList.remove("has-error");
    var error = field.querySelector(".field-error");
    if (error) { error.hidden = true; }
  });

  // Once a host is chosen, the other names step aside (a new search brings them back).
  document.addEventListener("change", function (event) {
    var options = event.target.closest && event.target.closest(".host-options");
    if (!options || event.target.name !== "host_id") { return; }
    options.classList.add("has-choice");
    var field = options.closest(".field");
    if (field && field.classList.contains("has-error")) {
      field.classList.remove("has-error");
      var search = field.querySelector("input[aria-invalid='true']");
      if (search) { search.removeAttribute("aria-invalid"); }
      var error = field.querySelector(".field-error");
      if (error) { error.hidden = true; }
    }
  });

  // ---------------------------------------------------------------------------------------------

  function start(root) {
    var scope = root && root.querySelectorAll ? root : document;
    scope.querySelectorAll("[data-qr-scanner]").forEach(startScanner);
    scope.querySelectorAll("[data-photo]").forEach(startPhoto);
    scope.querySelectorAll("[data-signature]").forEach(startSignature);
    scope.querySelectorAll("[data-typed-signature]").forEach(startTypedSignature);
    scope.querySelectorAll("[data-code-format]").forEach(formatCode);
  }

  // After a refusal, the first field to fix gets the focus (and the tablet's keyboard).
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!event.detail.target || event.detail.target.id !== "stage") { return; }
    var invalid = document.querySelector("#stage input[aria-invalid='true']");
    if (invalid) { invalid.focus(); }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "stage") { stopCameras(); }
  });
  // htmx:load fires for the page's own content once htmx starts, then for every swapped element.
  document.addEventListener("htmx:load", function (event) {
    var element = event.detail.elt;
    if (element === document.body) { return; }
    if (element.parentElement && element.parentElement.id === "stage") {
      screenShownAt = Date.now();
      lastActivity = Date.now();
      hideOverlay();
    }
    start(element);
  });
  document.addEventListener("DOMContentLoaded", function () {
    start(document);
    window.setInterval(tick, 500);
  });
  // A network failure mid-flow: say so on the page rather than leaving a dead button.
  document.addEventListener("htmx:sendError", function () {
    var screen = currentScreen();
    if (screen && !screen.querySelector(".offline")) {
      var note = document.createElement("p");
      note.className = "banner banner-error offline";
      note.setAttribute("role", "alert");
      note.textContent = body.getAttribute("data-offline") || "No connection. Please try again.";
      screen.querySelector(".screen-body").prepend(note);
    }
  });
  // No long-press menus or pinch zoom tricks to wander out of the kiosk.
  document.addEventListener("contextmenu", function (event) { event.preventDefault(); });
  window.addEventListener("pagehide", stopCameras);
}());
