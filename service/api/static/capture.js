// carpose guided capture: walk round the car, check a preview frame about once a second, keep the shots that
// show the view wanted next. Plain JS, no build step. Every verdict comes from the service (POST /pose with
// target_view, POST /coverage for the summary); this page only shows it.
(function () {
  "use strict";

  const VIEWS = ["front", "front_left", "left", "back_left", "back", "back_right", "right", "front_right"];
  const KEY_STORAGE = "carpose-api-key"; // the upload page's key, if the operator set API keys
  const CHECK_EVERY_MS = 1000;
  const CHECK_LONG_SIDE = 640; // live frames are downscaled: the model works at 512-853 px anyway
  const ORBIT = 78;

  const $ = (id) => document.getElementById(id);
  const maxUpload = Number(document.querySelector('meta[name="carpose-max-upload-bytes"]').content) || 0;

  const required = parseRequired(new URLSearchParams(location.search).get("required"));
  const kept = new Map(); // view -> {blob, pose}
  let lastAzimuth = null;
  let previousAzimuth = null;
  let target = required[0];
  let stream = null;
  let inFlight = false; // never more than one request at a time
  let timer = null;
  let coverage = null;

  function parseRequired(text) {
    const asked = (text || "").split(",").map((v) => v.trim()).filter((v) => VIEWS.includes(v));
    return asked.length ? VIEWS.filter((v) => asked.includes(v)) : VIEWS.slice();
  }

  function label(view) {
    return view.replace("_", " ");
  }

  function headers() {
    let key = "";
    try {
      key = sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (err) {
      key = "";
    }
    return key ? { "X-API-Key": key } : {};
  }

  // --- the pictogram: the car seen from above, nose up; azimuth grows counter-clockwise (toward the car's left)
  function point(azimuth) {
    const rad = (azimuth * Math.PI) / 180;
    return [-Math.sin(rad) * ORBIT, -Math.cos(rad) * ORBIT];
  }

  function drawPictogram() {
    const here = $("here-dot");
    const arc = $("walk-arc");
    const dot = $("target-dot");
    $("next-view").textContent = target ? label(target) : "all done";
    $("pictogram").setAttribute("aria-label", target ? "Car seen from above; stand at its " + label(target) : "Done");
    // SVG elements ignore the `hidden` attribute: visibility does it.
    dot.setAttribute("visibility", target ? "visible" : "hidden");
    if (!target) {
      here.setAttribute("visibility", "hidden");
      arc.setAttribute("d", "");
      return;
    }
    const [tx, ty] = point(VIEWS.indexOf(target) * 45);
    dot.setAttribute("cx", tx.toFixed(1));
    dot.setAttribute("cy", ty.toFixed(1));
    if (lastAzimuth === null) {
      here.setAttribute("visibility", "hidden");
      arc.setAttribute("d", "");
      return;
    }
    const [hx, hy] = point(lastAzimuth);
    here.setAttribute("visibility", "visible");
    here.setAttribute("cx", hx.toFixed(1));
    here.setAttribute("cy", hy.toFixed(1));
    const walk = walkDeg(lastAzimuth, target);
    // walk > 0 is clockwise seen from above, which is clockwise on this top-down drawing: SVG sweep flag 1.
    const sweep = walk > 0 ? 1 : 0;
    const end = `${tx.toFixed(1)} ${ty.toFixed(1)}`;
    arc.setAttribute("d", Math.abs(walk) < 1 ? "" : `M ${hx.toFixed(1)} ${hy.toFixed(1)} A ${ORBIT} ${ORBIT} 0 0 ${sweep} ${end}`);
  }

  function walkDeg(azimuth, view) {
    const w = (((azimuth - VIEWS.indexOf(view) * 45 + 180) % 360) + 360) % 360 - 180;
    return w === -180 ? 180 : w;
  }

  // --- the checklist
  function drawChecklist() {
    const list = $("checklist");
    list.textContent = "";
    for (const view of required) {
      const item = document.createElement("li");
      const done = kept.has(view);
      item.className = done ? "done" : view === target ? "current" : "";
      item.dataset.view = view;
      item.textContent = label(view) + (done ? ": done" : view === target ? ": next" : ": to do");
      list.appendChild(item);
    }
    $("progress").textContent = `${kept.size} of ${required.length}`;
  }

  // The rule of POST /coverage's next_view (service/guidance.py): the missing view closest to the last yaw, a tie
  // going the way the seller walks. Kept here because the page needs it the moment a shot is kept, to aim the next
  // live check, and /coverage is asked once, for the finished set: asking it after every shot would send and check
  // every kept photo again. Two differences: the yaws here are the ones seen, live frames included (where the seller
  // stands now), where /coverage only has the set's photos; and the way walked is read toward the last yaw's view
  // centre, from the last yaw seen before the seller moved (lastSeen), not from the photo before.
  function chooseTarget() {
    const missing = required.filter((v) => !kept.has(v));
    if (!missing.length) return null;
    if (lastAzimuth === null) return missing[0];
    const heading = previousAzimuth === null || walkDeg(previousAzimuth, nearestView(lastAzimuth)) >= 0 ? 1 : -1;
    let best = null;
    let bestCost = null;
    for (const view of missing) {
      const walk = walkDeg(lastAzimuth, view);
      const cost = [Math.round(Math.abs(walk) * 1e6), walk * heading >= 0 ? 0 : 1];
      if (bestCost === null || cost[0] < bestCost[0] || (cost[0] === bestCost[0] && cost[1] < bestCost[1])) {
        best = view;
        bestCost = cost;
      }
    }
    return best;
  }

  function nearestView(azimuth) {
    return VIEWS[Math.round((((azimuth % 360) + 360) % 360) / 45) % 8];
  }

  // --- showing an answer
  function showGuidance(pose, keptView) {
    const guidance = pose && pose.guidance;
    const fixes = $("fixes");
    fixes.textContent = "";
    if (keptView) {
      $("guidance").textContent = `Kept: ${label(keptView)}.` + (target ? ` Next: ${label(target)}.` : " All views done.");
      $("guidance").dataset.codes = "kept";
      return;
    }
    if (!guidance) {
      $("guidance").textContent = "No answer for this photo. Try again.";
      $("guidance").dataset.codes = "";
      return;
    }
    const codes = guidance.fixes.map((f) => f.code);
    $("guidance").dataset.codes = codes.join(" ");
    $("guidance").textContent = guidance.ready
      ? `On target: ${label(guidance.target_view)}. Hold still.`
      : guidance.fixes.length
        ? guidance.fixes[0].message
        : `Almost: ${label(guidance.target_view)}.`;
    for (const fix of guidance.fixes.slice(1)) {
      const item = document.createElement("li");
      item.textContent = fix.message;
      item.dataset.code = fix.code;
      fixes.appendChild(item);
    }
  }

  async function check(blob, name) {
    const data = new FormData();
    data.append("image", blob, name);
    const response = await fetch("/pose?target_view=" + encodeURIComponent(target), {
      method: "POST",
      body: data,
      headers: headers(),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error ? body.error.message : "HTTP " + response.status;
      throw new Error(message);
    }
    return body;
  }

  // --- live checks: a downscaled frame about once a second, never two in flight; the video keeps playing
  function grab(longSide) {
    const video = $("preview");
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) return Promise.resolve(null);
    const scale = longSide ? Math.min(1, longSide / Math.max(w, h)) : 1;
    const canvas = $("frame");
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", longSide ? 0.8 : 0.92));
  }

  async function liveCheck() {
    if (inFlight || !stream || !target) return;
    inFlight = true;
    try {
      const started = performance.now();
      const blob = await grab(CHECK_LONG_SIDE);
      if (!blob) return;
      const pose = await check(blob, "frame.jpg");
      // The live check's round trip (encode + request + answer), read by benchmarks/capture.py.
      performance.measure("carpose-check", { start: started, end: performance.now() });
      if (!stream) return;
      if (pose.azimuth_deg !== null) lastSeen(pose.azimuth_deg);
      showGuidance(pose, null);
      drawPictogram();
      if (pose.guidance && pose.guidance.ready && $("auto-shoot").checked) {
        inFlight = false;
        await shoot();
      }
    } catch (err) {
      $("guidance").textContent = "Check failed: " + err.message;
    } finally {
      inFlight = false;
    }
  }

  function lastSeen(azimuth) {
    if (lastAzimuth !== null && Math.abs(walkDeg(lastAzimuth, nearestView(azimuth))) > 1) previousAzimuth = lastAzimuth;
    lastAzimuth = azimuth;
  }

  // --- keeping a shot: full resolution, through the same check
  async function keep(blob, name) {
    if (maxUpload && blob.size > maxUpload) {
      $("guidance").textContent = "This photo is too large for the service.";
      return;
    }
    if (!target) return;
    inFlight = true;
    $("shoot").setAttribute("aria-busy", "true");
    try {
      const pose = await check(blob, name);
      const usable = pose.view && pose.quality && pose.quality.ok && required.includes(pose.view);
      if (pose.azimuth_deg !== null) lastSeen(pose.azimuth_deg);
      if (usable && (pose.view === target || !kept.has(pose.view))) {
        kept.set(pose.view, { blob, pose });
        target = chooseTarget();
        showGuidance(pose, pose.view);
        drawChecklist();
        drawPictogram();
        if (!target) await finish();
      } else {
        showGuidance(pose, null);
        drawPictogram();
      }
    } catch (err) {
      $("guidance").textContent = "Check failed: " + err.message;
    } finally {
      inFlight = false;
      $("shoot").removeAttribute("aria-busy");
    }
  }

  async function shoot() {
    if (inFlight) return;
    const blob = await grab(0);
    if (blob) await keep(blob, "shot.jpg");
  }

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      cameraRefused("This browser gives no live camera here: use the camera app button.");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" }, width: { ideal: 1920 }, height: { ideal: 1080 } },
        audio: false,
      });
    } catch (err) {
      cameraRefused("The camera was refused: use the camera app button.");
      return;
    }
    $("preview").srcObject = stream;
    $("camera-note").hidden = true;
    $("shoot").disabled = false;
    $("start").textContent = "Stop camera";
    $("guidance").textContent = `Point the camera at the car's ${label(target)}.`;
    timer = setInterval(liveCheck, CHECK_EVERY_MS);
  }

  function stopCamera() {
    clearInterval(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    $("preview").srcObject = null;
    $("camera-note").hidden = false;
    $("camera-note").textContent = "Camera is off.";
    $("shoot").disabled = true;
    $("start").textContent = "Start camera";
  }

  function cameraRefused(message) {
    $("camera-note").hidden = false;
    $("camera-note").textContent = message;
    $("guidance").textContent = message;
    $("file-input").focus();
  }

  // --- the finished set: POST /coverage with the kept shots, then a zip of the photos and the answer
  async function finish() {
    stopCamera();
    const data = new FormData();
    for (const [view, shot] of kept) data.append("images", shot.blob, view + ".jpg");
    const response = await fetch("/coverage?required=" + encodeURIComponent(required.join(",")), {
      method: "POST",
      body: data,
      headers: headers(),
    });
    coverage = await response.json().catch(() => null);
    const text = !response.ok || !coverage
      ? "The summary could not be made: " + ((coverage && coverage.error && coverage.error.message) || response.status)
      : coverage.complete
        ? `Complete: all ${coverage.required.length} views are covered by a usable photo.`
        : `Missing: ${coverage.missing.map(label).join(", ")}.`;
    $("summary-text").textContent = text;
    $("summary").hidden = false;
    $("summary").focus();
  }

  async function download() {
    const files = [];
    for (const [view, shot] of kept) files.push({ name: view + ".jpg", data: new Uint8Array(await shot.blob.arrayBuffer()) });
    const report = JSON.stringify({ required, coverage }, null, 2);
    files.push({ name: "coverage.json", data: new TextEncoder().encode(report) });
    const url = URL.createObjectURL(new Blob([zip(files)], { type: "application/zip" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = "carpose-photos.zip";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // A stored (uncompressed) zip: JPEGs do not compress further, and no library is needed.
  const CRC_TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return table;
  })();

  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  function zip(files) {
    const parts = [];
    const central = [];
    let offset = 0;
    for (const file of files) {
      const name = new TextEncoder().encode(file.name);
      const crc = crc32(file.data);
      const local = new DataView(new ArrayBuffer(30));
      local.setUint32(0, 0x04034b50, true);
      local.setUint16(4, 20, true);
      local.setUint32(14, crc, true);
      local.setUint32(18, file.data.length, true);
      local.setUint32(22, file.data.length, true);
      local.setUint16(26, name.length, true);
      parts.push(new Uint8Array(local.buffer), name, file.data);
      const entry = new DataView(new ArrayBuffer(46));
      entry.setUint32(0, 0x02014b50, true);
      entry.setUint16(4, 20, true);
      entry.setUint16(6, 20, true);
      entry.setUint32(16, crc, true);
      entry.setUint32(20, file.data.length, true);
      entry.setUint32(24, file.data.length, true);
      entry.setUint16(28, name.length, true);
      entry.setUint32(42, offset, true);
      central.push(new Uint8Array(entry.buffer), name);
      offset += 30 + name.length + file.data.length;
    }
    const size = central.reduce((n, p) => n + p.length, 0);
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, files.length, true);
    end.setUint16(10, files.length, true);
    end.setUint32(12, size, true);
    end.setUint32(16, offset, true);
    return new Blob([...parts, ...central, new Uint8Array(end.buffer)]);
  }

  // --- wiring
  $("start").addEventListener("click", () => (stream ? stopCamera() : startCamera()));
  $("shoot").addEventListener("click", shoot);
  $("file-input").addEventListener("change", async (event) => {
    const file = event.target.files && event.target.files[0];
    if (file) await keep(file, file.name || "photo.jpg");
    event.target.value = "";
  });
  $("download").addEventListener("click", download);
  drawChecklist();
  drawPictogram();
})();
