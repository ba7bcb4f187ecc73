// carpose upload page. Plain JS, no build step, no external resources.
// Every piece of text that comes from the API or from the user (file names) is inserted with textContent
// or as an attribute value, never parsed as HTML markup.
"use strict";

(function () {
  const DEFAULT_MAX_UPLOAD_BYTES = 10_000_000;
  const DETECTRON = { name: "detectron2", enabled: true, route: "/pose", label: "Detectron2 (this server's model)" };
  // What to call each backend: the server says so in GET /backends (its registry); the local model is always there.
  const BACKEND_LABELS = { [DETECTRON.name]: DETECTRON.label };

  const VIEW_WORDS = {
    front: "Front",
    front_left: "Front and left side",
    left: "Left side",
    back_left: "Back and left side",
    back: "Back",
    back_right: "Back and right side",
    right: "Right side",
    front_right: "Front and right side",
  };
  const COARSE_WORDS = { front: "Front", back: "Back", side: "Side" };

  const REASON_WORDS = {
    no_car: "No car was found in this photo.",
    car_too_small: "The car is too small in the photo to judge its pose. Try a closer or cropped photo.",
    too_few_parts: "Too few car parts were recognised to tell which side faces the camera.",
    view_ambiguous: "The car parts found point to different views, so the view is ambiguous.",
    low_confidence: "The view is not certain enough for the requested confidence; the angle is a best guess.",
  };

  const STAGE_WORDS = {
    decode: "Decode",
    inference: "Inference",
    postprocess: "Post-processing",
    render: "Drawing",
    total: "Server total",
  };

  // Why a photo of a set does not count (POST /coverage `problems`).
  const PROBLEM_WORDS = {
    error: "could not be read",
    no_car: "no car found",
    no_view: "the view is not certain enough",
    cut_off: "the car is cut off",
    close_up: "a close-up, not the whole car",
    other_car: "another car is prominent",
    too_small: "the car is too small",
    blurred: "blurred",
    badly_exposed: "too dark or too bright",
  };
  const KEY_STORAGE = "carpose-api-key";
  // POSE_QUALITY_MIN_SHARPNESS's default: four times it is crisp (docs/quality.md: originals' p5 is 547).
  const SHARP_REFERENCE = 150;
  // Below this confidence an answer is marked "not sure": the server's POST /coverage floor
  // (POSE_COVERAGE_MIN_CONFIDENCE, docs/decisions.md), filled into the page.
  const SURE_CONFIDENCE = (() => {
    const meta = document.querySelector('meta[name="carpose-sure-confidence"]');
    const value = meta ? parseFloat(meta.getAttribute("content")) : NaN;
    return Number.isFinite(value) ? value : 1; // unfilled (opened as /static/index.html): nothing is marked sure
  })();

  const $ = (id) => document.getElementById(id);
  const form = $("upload");
  const fileInput = $("file");
  const cameraInput = $("camera");
  const dropzone = $("dropzone");
  const backendSelect = $("backend");
  const sendButton = $("send");
  const statusBox = $("status");
  const result = $("result");

  const maxUploadBytes = (() => {
    const meta = document.querySelector('meta[name="carpose-max-upload-bytes"]');
    const value = meta ? parseInt(meta.getAttribute("content"), 10) : NaN;
    return Number.isFinite(value) && value > 0 ? value : DEFAULT_MAX_UPLOAD_BYTES;
  })();

  const keyForm = $("key-form");
  const setForm = $("set-form");
  const setFiles = $("set-files");
  const setDropzone = $("set-dropzone");
  const setResult = $("set-result");

  let chosenFile = null;
  let chosenSet = [];
  let sentSet = []; // the files of the last set sent, for its thumbnails
  let previewUrl = null;
  let busy = false;

  // ---------- small helpers ----------

  function formatBytes(bytes) {
    if (bytes >= 1_000_000) return (bytes / 1_000_000).toFixed(1).replace(/\.0$/, "") + " MB";
    if (bytes >= 1000) return Math.round(bytes / 1000) + " kB";
    return bytes + " bytes";
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function num(value, digits) {
    return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : null;
  }

  /** Whole degrees in [0, 360): 359.8 is yaw 0, never "360". */
  function yawDegrees(azimuth) {
    return ((Math.round(azimuth) % 360) + 360) % 360;
  }

  function words(label) {
    return String(label).replace(/_/g, " ");
  }

  /** Show a message in the aria-live status region. state: busy | ok | warn | error. */
  function setStatus(state, message, detail, code) {
    statusBox.replaceChildren();
    if (code) statusBox.dataset.code = code;
    else delete statusBox.dataset.code;
    if (!message) {
      statusBox.removeAttribute("data-state");
      return;
    }
    statusBox.setAttribute("data-state", state);
    statusBox.append(el("p", message));
    if (detail) statusBox.append(el("p", detail, "detail"));
  }

  function setBusy(value) {
    busy = value;
    sendButton.setAttribute("aria-busy", value ? "true" : "false");
    sendButton.textContent = value ? "Working…" : "Find the pose";
  }

  // ---------- API key (only when the server asks for one) ----------

  function apiKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (err) {
      return "";
    }
  }

  function authHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    const key = apiKey();
    if (key) headers["X-API-Key"] = key;
    return headers;
  }

  function askForKey(message) {
    keyForm.hidden = false;
    $("key-status").textContent = message;
    document.body.dataset.keyRequested = "true";
    $("api-key").focus();
  }

  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) {
      $("key-status").textContent = "Enter the key first.";
      return;
    }
    try {
      sessionStorage.setItem(KEY_STORAGE, key);
    } catch (err) {
      // Storage refused (private mode): the key is lost on reload, nothing else changes.
    }
    $("api-key").value = "";
    keyForm.hidden = true;
    setStatus("ok", "Key saved for this tab. Send your photo.");
    loadBackends();
  });

  // ---------- backends ----------

  function isSameOriginPath(route) {
    // Only ever send photos to this server: a path like "/pose/rekognition", never "//host" or "http://".
    return typeof route === "string" && /^\/[A-Za-z0-9/_\-.]*$/.test(route) && !route.startsWith("//");
  }

  function fillBackends(backends) {
    const previous = backendSelect.value;
    backendSelect.replaceChildren();
    const usable = backends.filter((b) => b && b.enabled === true && isSameOriginPath(b.route));
    if (!usable.some((b) => b.name === DETECTRON.name)) usable.unshift(DETECTRON);
    for (const backend of usable) {
      if (typeof backend.label === "string" && backend.label) BACKEND_LABELS[backend.name] = backend.label;
      const option = el("option", BACKEND_LABELS[backend.name] || words(backend.name));
      option.value = String(backend.name);
      option.dataset.route = backend.route;
      if (typeof backend.hint === "string" && backend.hint) option.dataset.hint = backend.hint;
      backendSelect.append(option);
    }
    if (usable.some((b) => b.name === previous)) backendSelect.value = previous;
    showBackendHint();
  }

  function showBackendHint() {
    // The server's note on the chosen backend (still loading, partial pose only, ...), as text.
    const option = backendSelect.selectedOptions[0];
    const hint = $("backend-hint");
    hint.textContent = option && option.dataset.hint ? option.dataset.hint : "";
    hint.hidden = !hint.textContent;
  }

  backendSelect.addEventListener("change", showBackendHint);

  async function loadBackends() {
    try {
      const response = await fetch("/backends", { headers: authHeaders({ Accept: "application/json" }) });
      if (response.status === 401) {
        askForKey(apiKey() ? "The saved key was refused. Enter a valid key." : "Enter your API key to use this page.");
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const body = await response.json();
      fillBackends(Array.isArray(body.backends) ? body.backends : []);
    } catch (err) {
      // An older server without GET /backends: Detectron2 is always there.
      fillBackends([DETECTRON]);
    }
    document.body.dataset.backendsLoaded = "true";
  }

  // ---------- choosing a file ----------

  function chooseFile(file) {
    chosenFile = file || null;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    const chosen = $("chosen");
    if (!chosenFile) {
      chosen.hidden = true;
      return;
    }
    $("chosen-name").textContent = chosenFile.name || "photo";
    $("chosen-size").textContent = "(" + formatBytes(chosenFile.size) + ")";
    const preview = $("preview");
    preview.onerror = () => {
      preview.hidden = true;
    };
    if (chosenFile.type && chosenFile.type.startsWith("image/")) {
      previewUrl = URL.createObjectURL(chosenFile);
      preview.src = previewUrl;
      preview.hidden = false;
    } else {
      preview.removeAttribute("src");
      preview.hidden = true;
    }
    chosen.hidden = false;
    if (chosenFile.size > maxUploadBytes) {
      setStatus("error", tooLargeMessage(chosenFile.size), "", "client_too_large");
    } else {
      setStatus("ok", "Ready to send " + (chosenFile.name || "the photo") + ".");
    }
  }

  function tooLargeMessage(size) {
    return (
      "This file is too large (" + formatBytes(size) + "). The limit is " + formatBytes(maxUploadBytes) +
      ": choose a smaller photo or reduce its resolution."
    );
  }

  fileInput.addEventListener("change", () => {
    if (fileInput.files && fileInput.files[0]) {
      cameraInput.value = "";
      chooseFile(fileInput.files[0]);
    }
  });
  cameraInput.addEventListener("change", () => {
    if (cameraInput.files && cameraInput.files[0]) {
      fileInput.value = "";
      chooseFile(cameraInput.files[0]);
    }
  });

  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add("dragover");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      if (type === "dragleave" && dropzone.contains(event.relatedTarget)) return;
      dropzone.classList.remove("dragover");
    });
  }
  dropzone.addEventListener("drop", (event) => {
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) {
      fileInput.value = "";
      cameraInput.value = "";
      chooseFile(files[0]);
    }
  });
  // A photo dropped next to the drop zone must not make the browser navigate away to it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  // ---------- errors ----------

  function errorMessage(status, code, message, backendName) {
    const backend = BACKEND_LABELS[backendName] || words(backendName);
    switch (code) {
      case "unsupported_media_type":
        return "This file is not a photo the service can read. Please choose a JPEG, PNG, WebP, HEIC or AVIF image.";
      case "upload_too_large":
        return "This file is too large for the service (limit " + formatBytes(maxUploadBytes) + ").";
      case "image_too_large":
        return "This image has too many pixels. Reduce its resolution and try again.";
      case "invalid_image":
        return "This image could not be decoded: it may be damaged or incomplete.";
      case "validation_error":
        return "No photo was received. Choose a photo and try again.";
      case "model_loading":
        return "The model is still loading. Try again in a few seconds.";
      case "overloaded":
        return "The service is busy right now. Try again in a few seconds.";
      case "model_unavailable":
        return "The model on this server is unavailable.";
      case "unauthorized":
        return "This server needs a valid API key: enter it in the form above, then send again.";
      case "too_many_images":
        return "Too many photos in one set: " + message;
      case "backend_disabled":
        return "The " + backend + " backend is not enabled on this server.";
      default:
        break;
    }
    if (code && code.startsWith("upstream_")) return "The " + backend + " backend is not reachable right now.";
    if (status === 413) return "This file is too large for the service.";
    if (status === 415) return "This file is not a photo the service can read.";
    if (status === 404) return "The " + backend + " backend is not available on this server.";
    if (status === 502 || status === 503 || status === 504) {
      return "The " + backend + " backend is unavailable right now (HTTP " + status + ").";
    }
    return "The request failed (HTTP " + status + ").";
  }

  // ---------- the parts layer over the annotated image ----------
  // The server draws the image without the parts and without its caption (render_parts=false); the parts are
  // drawn here, from the answer's `parts`, on an SVG layer whose viewBox is the photo's pixels (the boxes' unit),
  // so "Show parts" hides and shows them without sending the photo again. Tags keep one size on screen, and are
  // placed again when the image's size on screen changes: the same placement as render.py's place_labels, in
  // screen-sized units. The caption is written above the image (captionText), out of the tags' way.

  const SVG_NS = "http://www.w3.org/2000/svg";
  const PART_FONT_PX = 13; // the names' size on screen, whatever the photo's size
  const PART_TAG_PAD_PX = 4;
  const PART_NAME_MAX = 32; // characters: the model's labels are shorter; anything longer is cut
  const annotatedFrame = $("annotated-frame");
  const partsLayer = $("parts-layer");
  const partsToggle = $("parts-toggle");
  const showPartsBox = $("show-parts");
  let shownParts = null; // { width, height, parts: [{ name, box }] } of the result on the page
  let measureContext = null;

  function textWidthPx(text) {
    if (measureContext === null) measureContext = document.createElement("canvas").getContext("2d");
    if (!measureContext) return text.length * PART_FONT_PX * 0.62;
    measureContext.font = "600 " + PART_FONT_PX + "px system-ui, sans-serif";
    return measureContext.measureText(text).width;
  }

  /** Tag rectangles [x0, y0, x1, y1] that do not overlap: each starts just above its anchor (a box's top-left
   *  corner), kept inside the image, and moves down a tag height at a time past the tags already placed. */
  function placeLabels(anchors, sizes, width, height) {
    const overlaps = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
    const placed = [];
    anchors.forEach(([ax, ay], i) => {
      const [w, h] = sizes[i];
      const x0 = Math.min(Math.max(0, ax), Math.max(0, width - w));
      let y0 = Math.min(Math.max(0, ay - h), Math.max(0, height - h));
      let rect = [x0, y0, x0 + w, y0 + h];
      for (let tries = 4 * placed.length + 1; tries > 0 && placed.some((other) => overlaps(rect, other)); tries--) {
        y0 = y0 + 2 * h + 1 <= height ? y0 + h + 1 : 0;
        rect = [x0, y0, x0 + w, y0 + h];
      }
      placed.push(rect);
    });
    return placed;
  }

  function svg(tag, attributes, className) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    if (className) node.setAttribute("class", className);
    return node;
  }

  function drawParts() {
    const screenWidth = annotatedFrame.clientWidth;
    if (!shownParts || !(screenWidth > 0)) return; // drawn once the image is on screen (ResizeObserver)
    const { width, height, parts } = shownParts;
    const unit = width / screenWidth; // photo pixels per CSS pixel
    partsLayer.setAttribute("viewBox", "0 0 " + width + " " + height);
    const boxes = parts.map(({ box: [x0, y0, x1, y1] }) =>
      svg("rect", { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) }, "part-box"));
    const sizes = parts.map(({ name }) => [
      (textWidthPx(name) + 2 * PART_TAG_PAD_PX) * unit,
      (PART_FONT_PX + 2 * PART_TAG_PAD_PX) * unit,
    ]);
    const rects = placeLabels(parts.map(({ box }) => [box[0], box[1]]), sizes, width, height);
    // Tags after every box, so no box line crosses a name.
    const tags = parts.map(({ name }, i) => {
      const [x0, y0, x1, y1] = rects[i];
      const group = svg("g", {}, "part-label");
      group.append(svg("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, "part-tag"));
      const text = svg("text", {
        x: x0 + PART_TAG_PAD_PX * unit,
        y: (y0 + y1) / 2,
        "font-size": PART_FONT_PX * unit,
        "dominant-baseline": "central",
      }, "part-name");
      text.textContent = name;
      group.append(text);
      return group;
    });
    partsLayer.replaceChildren(...boxes, ...tags);
  }

  function showPartsLayer() {
    const on = shownParts !== null && showPartsBox.checked;
    if (on) partsLayer.removeAttribute("hidden");
    else partsLayer.setAttribute("hidden", "");
    document.body.dataset.partsShown = on ? "true" : "false";
  }

  /** The answer's parts, checked: a box of four finite numbers and a label, in an image of a known size. */
  function setParts(body) {
    const image = body && body.image && typeof body.image === "object" ? body.image : {};
    const width = Number(image.width);
    const height = Number(image.height);
    const parts = (body && Array.isArray(body.parts) ? body.parts : [])
      .filter((p) => p && Array.isArray(p.box) && p.box.length === 4 && p.box.every((v) => Number.isFinite(v)))
      .map((p) => {
        const name = words(p.label ?? "part");
        return { name: name.length > PART_NAME_MAX ? name.slice(0, PART_NAME_MAX - 1) + "…" : name, box: p.box };
      });
    const usable = width > 0 && height > 0 && Number.isFinite(width) && Number.isFinite(height) && parts.length > 0;
    shownParts = usable ? { width, height, parts } : null;
    partsLayer.replaceChildren();
    partsToggle.hidden = !usable;
    drawParts();
    showPartsLayer();
  }

  /** render.py's caption() from the answer's fields: the words the server leaves out of the image. The answer's
   *  yaw has one decimal; a .5 rounds up here, as on the page's Yaw line (Python rounds it to even). */
  function captionText(body) {
    const view = body.view || body.coarse_view;
    if (!view) return "no pose: " + body.reason;
    const parts = ["view " + view];
    if (typeof body.azimuth_deg === "number" && Number.isFinite(body.azimuth_deg)) {
      parts.push("yaw " + yawDegrees(body.azimuth_deg) + " deg");
    }
    if (typeof body.tilt_deg === "number" && Number.isFinite(body.tilt_deg)) {
      parts.push("wheel line " + (body.tilt_deg < 0 ? "" : "+") + body.tilt_deg.toFixed(1) + " deg");
    }
    return parts.join(", ");
  }

  showPartsBox.addEventListener("change", showPartsLayer);
  if (typeof ResizeObserver === "function") new ResizeObserver(drawParts).observe(annotatedFrame);
  else window.addEventListener("resize", drawParts);

  // ---------- showing a result ----------

  function viewWords(body) {
    if (body.view && VIEW_WORDS[body.view]) return VIEW_WORDS[body.view];
    if (body.view) return words(body.view);
    if (body.coarse_view) return (COARSE_WORDS[body.coarse_view] || words(body.coarse_view)) + " (roughly)";
    return "not determined";
  }

  function reasonWords(reason) {
    if (!reason) return "";
    return REASON_WORDS[reason] || "The pose could not be fully determined (" + words(reason) + ").";
  }

  function facingWords(azimuth) {
    // Which way the car's nose points, seen from above with the camera at the bottom.
    const dirs = [
      "toward the camera",
      "toward the camera and the image's left",
      "to the image's left",
      "away from the camera, to the left",
      "away from the camera",
      "away from the camera, to the right",
      "to the image's right",
      "toward the camera and the image's right",
    ];
    return dirs[Math.round((((azimuth % 360) + 360) % 360) / 45) % 8];
  }

  function showDial(azimuth) {
    const car = $("dial-car");
    const caption = $("dial-caption");
    const desc = $("dial-desc");
    if (typeof azimuth === "number" && Number.isFinite(azimuth)) {
      // The car is drawn nose-down (toward the camera, yaw 0); SVG rotation is clockwise on screen, which
      // turns the nose to the image's left at yaw 90 (left side facing the camera), away at 180 and to the
      // image's right at 270.
      car.setAttribute("transform", "rotate(" + azimuth.toFixed(1) + ")");
      car.classList.remove("unknown");
      const text =
        "Seen from above: the camera is at the bottom, looking up. Yaw " + yawDegrees(azimuth) +
        "°: the car's nose (orange arrow) points " + facingWords(azimuth) +
        ". 0° = front faces the camera, 90° = the car's left side, 180° = back, 270° = right side.";
      caption.textContent = text;
      desc.textContent = text;
    } else {
      car.setAttribute("transform", "rotate(0)");
      car.classList.add("unknown");
      const text = "No yaw: the car's orientation could not be determined from this photo.";
      caption.textContent = text;
      desc.textContent = text;
    }
  }

  function fillParts(parts) {
    const tbody = $("parts").tBodies[0];
    tbody.replaceChildren();
    const sorted = (Array.isArray(parts) ? parts : []).slice().sort((a, b) => (b.score || 0) - (a.score || 0));
    for (const part of sorted) {
      const row = el("tr");
      row.append(el("td", words(part.label)));
      row.append(el("td", num(part.score, 2) ?? "–", "num"));
      tbody.append(row);
    }
    if (!sorted.length) {
      const row = el("tr");
      const cell = el("td", "No parts found.", "empty");
      cell.colSpan = 2;
      row.append(cell);
      tbody.append(row);
    }
  }

  function fillTimings(timings, roundTripMs) {
    const tbody = $("timings").tBodies[0];
    tbody.replaceChildren();
    const entries = timings && typeof timings === "object" ? Object.entries(timings) : [];
    const order = ["decode", "inference", "postprocess", "render", "total"];
    entries.sort((a, b) => {
      const ia = order.indexOf(a[0]);
      const ib = order.indexOf(b[0]);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    });
    for (const [stage, ms] of entries) {
      const row = el("tr");
      row.append(el("td", STAGE_WORDS[stage] || words(stage)));
      row.append(el("td", num(ms, 1) ?? "–", "num"));
      tbody.append(row);
    }
    const row = el("tr", undefined, "total");
    row.id = "round-trip";
    row.append(el("td", "Round trip (measured in this page)"));
    row.append(el("td", roundTripMs.toFixed(0), "num"));
    tbody.append(row);
  }

  // One line per verdict of the response's `quality` object: what was measured and whether it passes.
  function qualityItems(q) {
    const pct = (v) => (num(v * 100, 0) ?? "–") + " %";
    const sides = Array.isArray(q.cut_sides) ? q.cut_sides.map(String).join(", ") : "";
    return [
      ["in_frame", q.in_frame, q.in_frame ? "The whole car is in the photo." : "The car is cut off at the " + sides + " edge."],
      ["large_enough", q.large_enough, "The car fills " + pct(q.car_fraction) + " of the photo" +
        (q.large_enough ? "." : ": step closer.")],
      ["sharp", q.sharp, sharpnessWords(q)],
      ["exposure_ok", q.exposure_ok, "Brightness " + pct(q.brightness) + ", " + pct(q.clipped_fraction) +
        " black or white" + (q.exposure_ok ? "." : ": " + (EXPOSURE_WORDS[q.exposure] || "badly exposed") + ".")],
      ["whole_car", q.whole_car !== false, q.whole_car !== false ? "The whole car is shown, not a close-up." :
        "A close-up of part of the car: step back so the whole car is in the photo."],
      ["other_cars", !(q.other_cars > 0), q.other_cars > 0 ? "Another car is prominent in the photo (" +
        String(q.other_cars) + "): a buyer could take it for this one." : "No other car competes for attention."],
    ];
  }

  const EXPOSURE_WORDS = { too_dark: "too dark", too_bright: "too bright (overexposed)" };

  // Sharpness in words: the number (variance of the Laplacian) means nothing to a seller.
  function sharpnessWords(q) {
    if (!q.sharp) return "Blurred: hold the camera still and focus on the car.";
    return q.sharpness >= 4 * SHARP_REFERENCE ? "Sharp." : "Sharp enough (a little soft).";
  }

  function showQuality(q) {
    const box = $("quality-box");
    const list = $("quality");
    list.replaceChildren();
    if (!q || typeof q !== "object") {
      box.hidden = true;
      return;
    }
    const verdict = $("quality-verdict");
    verdict.textContent = q.ok ? "usable" : "retake this photo";
    verdict.dataset.ok = q.ok ? "true" : "false";
    for (const [key, ok, text] of qualityItems(q)) {
      const item = el("li", (ok ? "✓ " : "✗ ") + text);
      item.dataset.check = key;
      item.dataset.ok = ok ? "true" : "false";
      list.append(item);
    }
    box.hidden = false;
  }

  // The measured camera roll (roll_deg: + = the scene turned counter-clockwise, the phone clockwise). A photo is
  // called crooked only when the API's own verdict (quality.level, POSE_QUALITY_MAX_ROLL_DEG) says so: a level
  // photo reads "level" whatever small number the roll head gives, never a slope to worry about (issue 21).
  function showRoll(rollDeg, quality) {
    const roll = $("roll");
    const value = num(rollDeg, 1);
    if (value === null) {
      roll.textContent = "not measured";
      roll.dataset.level = "";
      return;
    }
    const level = !quality || quality.level !== false;
    roll.dataset.level = level ? "true" : "false";
    const phone = rollDeg > 0 ? "clockwise" : "counter-clockwise";
    roll.textContent = level
      ? "level (" + (rollDeg > 0 ? "+" : "") + value + "°)"
      : "turned " + num(Math.abs(rollDeg), 0) + "° " + phone + ": hold the phone level";
  }

  function showResult(body, roundTripMs, backendName) {
    const view = $("view");
    view.textContent = viewWords(body);
    view.dataset.view = body.view || "";

    const reason = $("reason");
    reason.textContent = reasonWords(body.reason);
    reason.dataset.reason = body.reason || "";
    reason.hidden = !body.reason;
    showQuality(body.quality);

    const rendered = $("rendered");
    const renderedCaption = $("rendered-caption");
    if (typeof body.rendered_image === "string" && body.rendered_image.startsWith("data:image/")) {
      rendered.src = body.rendered_image;
      renderedCaption.textContent = captionText(body);
      annotatedFrame.hidden = false;
    } else {
      rendered.removeAttribute("src");
      renderedCaption.textContent = "";
      annotatedFrame.hidden = true;
    }
    renderedCaption.hidden = annotatedFrame.hidden;

    showDial(body.azimuth_deg);
    const azimuth = body.azimuth_deg;
    $("azimuth").textContent =
      typeof azimuth === "number" && Number.isFinite(azimuth) ? yawDegrees(azimuth) + "°" : "not determined";
    const tilt = num(body.tilt_deg, 1);
    if (tilt === null) {
      $("tilt").textContent = "not measured (needs two wheels on the same side of the car)";
    } else {
      // The slope of the line through two wheels in the image: perspective alone makes it tens of degrees on a
      // level photo, so it is not presented as a crooked photo (issue 21).
      const t = body.tilt_deg;
      $("tilt").textContent = (t > 0 ? "+" : "") + tilt + "° wheel-line slope in the image (perspective, not camera roll)";
    }
    showRoll(body.roll_deg, body.quality);
    const confidence = num(body.confidence * 100, 0);
    const unsure = body.view && body.confidence < SURE_CONFIDENCE;
    $("confidence").textContent = (confidence === null ? "–" : confidence + " %") + (unsure ? " · not sure: retake or check" : "");
    $("confidence").dataset.unsure = unsure ? "true" : "false";
    view.dataset.unsure = unsure ? "true" : "false";
    if (unsure) view.textContent = viewWords(body) + " (not sure: retake or check)";
    $("cars").textContent = String(body.cars_detected ?? "–");
    $("wheels").textContent = String(Array.isArray(body.wheels) ? body.wheels.length : "–");
    const model = body.model && body.model.name ? " · " + body.model.name + " " + (body.model.version || "") : "";
    $("backend-used").textContent = (BACKEND_LABELS[body.backend] || words(body.backend || backendName)) + model;

    fillParts(body.parts);
    fillTimings(body.timings_ms, roundTripMs);

    result.hidden = false;
    setParts(annotatedFrame.hidden ? null : body); // after the result shows: the tags are sized for the screen
    if (body.view) {
      setStatus("ok", "Done: " + viewWords(body).toLowerCase() + " (" + roundTripMs.toFixed(0) + " ms).");
    } else {
      setStatus("warn", reasonWords(body.reason) || "The view could not be determined.");
    }
  }

  // ---------- sending ----------

  async function send() {
    if (busy) return;
    if (!chosenFile) {
      setStatus("error", "Choose a photo first.");
      fileInput.focus();
      return;
    }
    if (chosenFile.size > maxUploadBytes) {
      setStatus("error", tooLargeMessage(chosenFile.size), "", "client_too_large");
      return;
    }
    const option = backendSelect.selectedOptions[0];
    const backendName = option ? option.value : DETECTRON.name;
    const route = option && isSameOriginPath(option.dataset.route) ? option.dataset.route : DETECTRON.route;

    const data = new FormData();
    data.append("image", chosenFile, chosenFile.name || "photo.jpg");
    setBusy(true);
    result.hidden = true;
    setStatus("busy", "Sending the photo to " + (BACKEND_LABELS[backendName] || words(backendName)) + "…");
    const started = performance.now();
    let response;
    try {
      // The parts are left out of the image: the page draws them on its own layer (see drawParts).
      const query = "?render=true&render_parts=false";
      response = await fetch(route + query, { method: "POST", body: data, headers: authHeaders() });
    } catch (err) {
      setBusy(false);
      setStatus("error", "Could not reach the service. Check your connection and try again.", "", "network");
      return;
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    const roundTripMs = performance.now() - started;
    setBusy(false);

    if (response.status === 401) askForKey("The server needs an API key for this.");
    if (!response.ok || !body || typeof body !== "object" || body.error) {
      const error = body && body.error && typeof body.error === "object" ? body.error : {};
      const code = typeof error.code === "string" ? error.code : "";
      const message = typeof error.message === "string" ? error.message : "";
      setStatus(
        "error",
        errorMessage(response.status, code, message, backendName),
        message ? "Service says: " + message + (code ? " (" + code + ")" : "") : "",
        code || "http_" + response.status,
      );
      return;
    }
    showResult(body, roundTripMs, backendName);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });

  // ---------- a listing's photo set (POST /coverage) ----------

  function setSetStatus(state, message, detail, code) {
    const box = $("set-status");
    box.replaceChildren();
    if (code) box.dataset.code = code;
    else delete box.dataset.code;
    box.setAttribute("data-state", state);
    box.append(el("p", message));
    if (detail) box.append(el("p", detail, "detail"));
  }

  function chooseSet(files) {
    chosenSet = Array.from(files || []);
    const total = chosenSet.reduce((sum, f) => sum + f.size, 0);
    $("set-chosen").textContent = chosenSet.length
      ? chosenSet.length + " photo" + (chosenSet.length === 1 ? "" : "s") + " (" + formatBytes(total) + ")"
      : "";
  }

  setFiles.addEventListener("change", () => chooseSet(setFiles.files));
  for (const type of ["dragenter", "dragover"]) {
    setDropzone.addEventListener(type, (event) => {
      event.preventDefault();
      setDropzone.classList.add("dragover");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    setDropzone.addEventListener(type, (event) => {
      event.preventDefault();
      if (type === "dragleave" && setDropzone.contains(event.relatedTarget)) return;
      setDropzone.classList.remove("dragover");
    });
  }
  setDropzone.addEventListener("drop", (event) => {
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) {
      setFiles.value = "";
      chooseSet(files);
    }
  });

  // The required views: one checkbox per view, all by default; `?required=front,back` in the page's URL
  // preselects them (the same parameter as POST /coverage).
  function fillRequiredPicker() {
    const box = $("required-views");
    const asked = new URLSearchParams(window.location.search).get("required");
    const wanted = new Set((asked || "").split(",").map((v) => v.trim()).filter((v) => v in VIEW_WORDS));
    for (const view of Object.keys(VIEW_WORDS)) {
      const input = document.createElement("input");
      input.type = "checkbox";
      input.name = "required";
      input.value = view;
      input.checked = wanted.size === 0 || wanted.has(view);
      const label = el("label");
      label.append(input, document.createTextNode(" " + VIEW_WORDS[view]));
      box.append(label);
    }
  }

  function requiredViews() {
    return Array.from(document.querySelectorAll("#required-views input:checked")).map((i) => i.value);
  }

  fillRequiredPicker();

  function photoLine(photo) {
    const name = typeof photo.filename === "string" && photo.filename ? photo.filename : "photo " + (photo.index + 1);
    const pose = photo.pose && typeof photo.pose === "object" ? photo.pose : null;
    const view = pose && pose.view ? VIEW_WORDS[pose.view] || words(pose.view) : "no view";
    if (photo.usable) return name + ": " + view.toLowerCase() + ", usable.";
    const problems = Array.isArray(photo.problems) ? photo.problems : [];
    const why = problems.map((p) => PROBLEM_WORDS[p] || words(p));
    if (photo.error && typeof photo.error.message === "string") why.push(photo.error.message);
    return name + ": " + (pose && pose.view ? view.toLowerCase() + ", " : "") + "unusable: " + why.join("; ") + ".";
  }

  function showSet(body) {
    const checklist = $("checklist");
    checklist.replaceChildren();
    const covered = body.covered && typeof body.covered === "object" ? body.covered : {};
    const required = Array.isArray(body.required) ? body.required : [];
    for (const view of required) {
      const indices = Array.isArray(covered[view]) ? covered[view] : [];
      const text = (VIEW_WORDS[view] || words(view)) + ": " +
        (indices.length ? "photo " + indices.map((i) => i + 1).join(", ") : "missing");
      const item = el("li", (indices.length ? "✓ " : "✗ ") + text);
      item.dataset.view = view;
      item.dataset.state = indices.length ? "covered" : "missing";
      checklist.append(item);
    }
    const list = $("set-photos");
    list.replaceChildren();
    for (const photo of Array.isArray(body.photos) ? body.photos : []) {
      const item = el("li");
      item.dataset.usable = photo.usable ? "true" : "false";
      const file = Number.isInteger(photo.index) ? sentSet[photo.index] : undefined;
      if (file && !photo.error) {
        const thumb = document.createElement("img");
        thumb.className = "thumb";
        thumb.alt = "";
        thumb.src = URL.createObjectURL(file);
        thumb.addEventListener("load", () => URL.revokeObjectURL(thumb.src), { once: true });
        item.append(thumb);
      }
      const text = el("span", photoLine(photo), "photo-line");
      item.append(text);
      const pose = photo.pose && typeof photo.pose === "object" ? photo.pose : null;
      if (pose && typeof pose.confidence === "number") {
        const unsure = pose.confidence < SURE_CONFIDENCE;
        const conf = el("span", "confidence " + Math.round(pose.confidence * 100) + " %" +
          (unsure ? " · not sure: retake or check" : ""), "photo-confidence");
        conf.dataset.unsure = unsure ? "true" : "false";
        item.append(conf);
      }
      list.append(item);
    }
    const missing = Array.isArray(body.missing) ? body.missing : [];
    const verdict = $("set-verdict");
    verdict.dataset.complete = body.complete ? "true" : "false";
    verdict.textContent = body.complete
      ? "Complete: every required view has a usable photo."
      : "Missing " + missing.length + " view" + (missing.length === 1 ? "" : "s") + ": " +
        missing.map((v) => (VIEW_WORDS[v] || words(v)).toLowerCase()).join(", ") + ".";
    setResult.hidden = false;
  }

  async function sendSet() {
    if (busy) return;
    if (!chosenSet.length) {
      setSetStatus("error", "Choose the photos first.");
      return;
    }
    const data = new FormData();
    for (const file of chosenSet) data.append("images", file, file.name || "photo.jpg");
    const required = requiredViews();
    if (!required.length) {
      setSetStatus("error", "Tick at least one required view.");
      return;
    }
    sentSet = chosenSet.slice();
    busy = true;
    setResult.hidden = true;
    setSetStatus("busy", "Checking " + chosenSet.length + " photos…");
    let response;
    let body = null;
    try {
      const query = "?required=" + encodeURIComponent(required.join(","));
      response = await fetch("/coverage" + query, { method: "POST", body: data, headers: authHeaders() });
      body = await response.json();
    } catch (err) {
      busy = false;
      setSetStatus("error", "Could not reach the service. Check your connection and try again.", "", "network");
      return;
    }
    busy = false;
    if (response.status === 401) askForKey("The server needs an API key for this.");
    if (!response.ok || !body || typeof body !== "object" || body.error) {
      const error = body && body.error && typeof body.error === "object" ? body.error : {};
      const code = typeof error.code === "string" ? error.code : "";
      const message = typeof error.message === "string" ? error.message : "";
      setSetStatus("error", errorMessage(response.status, code, message, DETECTRON.name),
        message ? "Service says: " + message : "", code || "http_" + response.status);
      return;
    }
    setSetStatus(body.complete ? "ok" : "warn", body.complete ? "The set is complete." : "The set is not complete yet.");
    showSet(body);
  }

  setForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sendSet();
  });

  function showMode(mode) {
    const set = mode === "set";
    form.hidden = set;
    setForm.hidden = !set;
    if (set) result.hidden = true;
    else setResult.hidden = true;
    document.body.dataset.mode = set ? "set" : "single";
  }

  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => showMode(radio.value));
  }

  $("max-size").textContent = formatBytes(maxUploadBytes);
  loadBackends();
})();
