/* Driftline console: file a mission, follow it, read its search areas on the map.
 *
 * Plain JavaScript over the REST API (no build step). The API key lives in
 * sessionStorage and travels only in the Authorization header, never in a URL: artifacts
 * are fetched with it and handed to the browser as blobs. Status comes from the SSE
 * stream, read with fetch (EventSource cannot send a header) and resumed with
 * Last-Event-ID. The basemap is GSHHG land from /console/land plus a graticule, so the
 * page needs no internet; raster tiles are added only when the server is configured
 * with a tile URL.
 */
(function () {
  "use strict";

  const KEY_STORAGE = "driftline.apiKey";
  const LEVEL_COLOURS = { 50: "#d7191c", 90: "#fd8d3c", 95: "#e6c700" };
  const FINAL = new Set(["completed", "failed", "cancelled"]);
  const $ = (selector) => document.querySelector(selector);
  // The API's root as seen from the page (/console/ -> /), so a proxy prefix still works.
  const ROOT = new URL("../", document.baseURI).pathname;
  const url = (path) => ROOT + path.replace(/^\//, "");

  const state = {
    key: sessionStorage.getItem(KEY_STORAGE),
    config: null,
    objectTypes: [],
    draft: { key: null, body: null },
    missionId: null,
    follow: null, // AbortController of the current mission's stream and loads
  };

  // -- Positions: degrees and decimal minutes ------------------------------------------

  /** Latitude and longitude from "60°07.2'N 004°18.0'E", "60 07.2 N 4 18 E" or "60.12, 4.3". */
  function parsePosition(text) {
    const clean = text.trim().toUpperCase().replace(/[°º'′"″,;]/g, " ").replace(/\s+/g, " ").trim();
    if (!clean) throw new Error("enter a position, or click the map");
    const decimal = clean.match(/^(-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)$/);
    let lat, lon;
    if (decimal) {
      lat = Number(decimal[1]);
      lon = Number(decimal[2]);
    } else {
      const part = /(\d+(?:\.\d+)?)(?: (\d+(?:\.\d+)?))?(?: (\d+(?:\.\d+)?))? ?([NSEW])/g;
      const found = [...clean.matchAll(part)];
      const covered = found.map((m) => m[0]).join(" ");
      if (found.length !== 2 || covered.replace(/ /g, "") !== clean.replace(/ /g, "")) {
        throw new Error("write it as 60°07.2'N 004°18.0'E or as decimal degrees 60.12, 4.3");
      }
      for (const m of found) {
        const value = angle(m);
        if ("NS".includes(m[4])) lat = m[4] === "S" ? -value : value;
        else lon = m[4] === "W" ? -value : value;
      }
      if (lat === undefined || lon === undefined) {
        throw new Error("give one latitude (N or S) and one longitude (E or W)");
      }
    }
    if (!(Math.abs(lat) <= 90)) throw new Error("latitude must be within 90° of the equator");
    if (!(Math.abs(lon) <= 180)) throw new Error("longitude must be within 180° of Greenwich");
    return { lat, lon };
  }

  function angle(match) {
    const degrees = Number(match[1]);
    const minutes = match[2] === undefined ? 0 : Number(match[2]);
    const seconds = match[3] === undefined ? 0 : Number(match[3]);
    if (match[2] !== undefined && !Number.isInteger(degrees)) {
      throw new Error("with minutes, degrees must be whole");
    }
    if (minutes >= 60 || seconds >= 60) throw new Error("minutes and seconds must be below 60");
    return degrees + minutes / 60 + seconds / 3600;
  }

  function ddm(value, positive, negative, width) {
    const hemisphere = value < 0 ? negative : positive;
    let degrees = Math.floor(Math.abs(value));
    let minutes = (Math.abs(value) - degrees) * 60;
    if (Number(minutes.toFixed(2)) >= 60) {
      degrees += 1;
      minutes = 0;
    }
    const m = minutes.toFixed(2).padStart(5, "0");
    return `${String(degrees).padStart(width, "0")}°${m}'${hemisphere}`;
  }

  function formatPosition(lat, lon) {
    return `${ddm(lat, "N", "S", 2)} ${ddm(lon, "E", "W", 3)}`;
  }

  // -- Talking to the API ----------------------------------------------------------------

  class ApiError extends Error {
    constructor(response, problem) {
      super((problem && problem.detail) || `${response.status} ${response.statusText}`);
      this.status = response.status;
      this.problem = problem || {};
    }
  }

  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    if (state.key) headers.set("Authorization", `Bearer ${state.key}`);
    const response = await fetch(url(path), { ...options, headers });
    if (response.status === 401 && path.startsWith("/v1/") && state.key) {
      const problem = await readProblem(response);
      signOut(`Your API key was refused (${problem.detail || "unauthorised"}). Sign in again.`);
      throw new ApiError(response, problem);
    }
    return response;
  }

  async function readProblem(response) {
    try {
      return await response.json();
    } catch (_) {
      return {};
    }
  }

  async function apiJson(path, options) {
    const response = await api(path, options);
    if (!response.ok) throw new ApiError(response, await readProblem(response));
    return response.json();
  }

  // -- Sign in ---------------------------------------------------------------------------

  function signOut(message) {
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    stopFollowing();
    clearMissionLayers();
    $("#nav").hidden = true;
    $("#sign-in-error").textContent = message || "";
    show("sign-in");
    $("#api-key").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const key = $("#api-key").value.trim();
    const error = $("#sign-in-error");
    error.textContent = "";
    if (!key) {
      error.textContent = "Enter your API key.";
      return;
    }
    const button = $("#sign-in-button");
    button.disabled = true;
    try {
      const response = await fetch(url("/v1/missions?limit=1"), {
        headers: { Authorization: `Bearer ${key}` },
      });
      if (response.status === 401) {
        const problem = await readProblem(response);
        error.textContent = `This API key was refused: ${problem.detail || "unauthorised"}.`;
        $("#api-key").setAttribute("aria-invalid", "true");
        return;
      }
      if (!response.ok) {
        const problem = await readProblem(response);
        error.textContent = problem.detail || `The API answered ${response.status}.`;
        return;
      }
      state.key = key;
      sessionStorage.setItem(KEY_STORAGE, key);
      $("#api-key").value = "";
      $("#api-key").removeAttribute("aria-invalid");
      $("#nav").hidden = false;
      route();
    } catch (_) {
      error.textContent = "The API cannot be reached.";
    } finally {
      button.disabled = false;
    }
  }

  // -- Panels and routes -------------------------------------------------------------------

  function show(panel) {
    for (const id of ["sign-in", "mission-form", "missions", "mission"]) {
      $(`#${id}`).hidden = id !== panel;
    }
    for (const [link, current] of [["#nav-new", "mission-form"], ["#nav-missions", "missions"]]) {
      if (panel === current) $(link).setAttribute("aria-current", "page");
      else $(link).removeAttribute("aria-current");
    }
  }

  function route() {
    if (!state.key) {
      signOut($("#sign-in-error").textContent);
      return;
    }
    $("#nav").hidden = false;
    const hash = location.hash || "#/new";
    const mission = hash.match(/^#\/missions\/([0-9a-fA-F-]{36})$/);
    if (mission) {
      openMission(mission[1]);
      return;
    }
    stopFollowing();
    clearMissionLayers();
    if (hash === "#/missions") {
      show("missions");
      loadMissions();
    } else {
      show("mission-form");
      draftMarkers();
    }
  }

  // -- Object types ------------------------------------------------------------------------

  async function loadObjectTypes() {
    state.objectTypes = await apiJson("/v1/object-types");
    filterObjectTypes();
  }

  function filterObjectTypes() {
    const words = $("#f-object-search").value.toLowerCase().split(/\s+/).filter(Boolean);
    const select = $("#f-object-type");
    const chosen = select.value;
    select.replaceChildren();
    for (const type of state.objectTypes) {
      const haystack = `${type.key} ${type.description}`.toLowerCase();
      if (!words.every((w) => haystack.includes(w))) continue;
      const option = document.createElement("option");
      option.value = type.key;
      option.textContent = `${type.description} (${type.key})`;
      option.selected = type.key === chosen;
      select.append(option);
    }
    describeObjectType();
  }

  function describeObjectType() {
    const type = state.objectTypes.find((t) => t.key === $("#f-object-type").value);
    $("#f-object-description").textContent = type
      ? `${type.key}, category ${type.id}: ${type.description}`
      : `${$("#f-object-type").options.length} categories match; choose one.`;
  }

  // -- The mission form ----------------------------------------------------------------------

  function utc(value) {
    return value ? `${value.length === 16 ? `${value}:00` : value}Z` : null;
  }

  function number(id) {
    const text = $(id).value.trim();
    return text === "" ? null : Number(text);
  }

  function clearErrors() {
    $("#form-error").textContent = "";
    for (const p of document.querySelectorAll("#mission-form .field-error")) p.textContent = "";
    for (const el of document.querySelectorAll("#mission-form [aria-invalid]")) {
      el.removeAttribute("aria-invalid");
    }
  }

  function fieldError(field, message) {
    const slots = [...document.querySelectorAll("#mission-form .field-error[data-field]")];
    let best = null;
    for (const slot of slots) {
      const name = slot.dataset.field;
      if ((field === name || field.startsWith(`${name}.`)) && (!best || name.length > best.dataset.field.length)) {
        best = slot;
      }
    }
    if (!best) return false;
    best.textContent = best.textContent ? `${best.textContent} ${message}` : message;
    // The field is the nearest input before the message (or inside a label before it).
    let target = best.previousElementSibling;
    while (target && !target.matches("input, select") && !target.querySelector("input, select")) {
      target = target.previousElementSibling;
    }
    if (target && !target.matches("input, select")) target = target.querySelector("input, select");
    if (target) target.setAttribute("aria-invalid", "true");
    return true;
  }

  /** Editing a field clears the error shown next to it. */
  function clearFieldError(event) {
    const input = event.target;
    if (!input.matches || !input.matches("input, select")) return;
    input.removeAttribute("aria-invalid");
    let next = (input.closest("label") || input).nextElementSibling;
    while (next && !next.classList.contains("field-error") && !next.matches("input, select")) {
      next = next.nextElementSibling;
    }
    if (next && next.classList.contains("field-error")) next.textContent = "";
  }

  function missionBody() {
    const problems = [];
    let lkp = null;
    let end = null;
    try {
      lkp = parsePosition($("#f-lkp").value);
    } catch (e) {
      problems.push(["last_known_position", e.message]);
    }
    if ($("#f-end").value.trim()) {
      try {
        end = parsePosition($("#f-end").value);
      } catch (e) {
        problems.push(["end_position", e.message]);
      }
    }
    const body = {
      name: $("#f-name").value.trim(),
      object_type: $("#f-object-type").value || null,
      last_known_position: lkp && {
        lat: lkp.lat,
        lon: lkp.lon,
        time: utc($("#f-time").value),
        radius_m: number("#f-radius"),
      },
      end_position: end && {
        lat: end.lat,
        lon: end.lon,
        time: utc($("#f-end-time").value) || utc($("#f-time").value),
        radius_m: number("#f-end-radius"),
      },
      duration_hours: number("#f-duration"),
      particles: number("#f-particles"),
      external_ref: $("#f-external-ref").value.trim() || null,
      options: { backward: $("#f-backward").checked },
    };
    if (!body.object_type) problems.push(["object_type", "choose an object type (search, then pick one)"]);
    return { body, problems };
  }

  /** The Idempotency-Key of this draft: the same body keeps its key, so a double click
   *  or a retry after a lost answer files one mission. */
  function idempotencyKey(bodyText) {
    if (state.draft.body !== bodyText || !state.draft.key) {
      state.draft = { key: crypto.randomUUID(), body: bodyText };
    }
    return state.draft.key;
  }

  async function submitMission(event) {
    event.preventDefault();
    const button = $("#submit-mission");
    if (button.disabled) return;
    clearErrors();
    const { body, problems } = missionBody();
    if (problems.length) {
      for (const [field, message] of problems) fieldError(field, message);
      $("#form-error").textContent = "Please correct the marked fields.";
      return;
    }
    const text = JSON.stringify(body);
    button.disabled = true;
    try {
      const response = await api("/v1/missions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": idempotencyKey(text) },
        body: text,
      });
      const answer = await readProblem(response);
      if (response.status === 202) {
        state.draft = { key: null, body: null };
        location.hash = `#/missions/${answer.id}`;
        return;
      }
      if (response.status === 422 && Array.isArray(answer.errors)) {
        const unplaced = answer.errors.filter((e) => !fieldError(e.field, e.message));
        $("#form-error").textContent = [answer.detail, ...unplaced.map((e) => `${e.field}: ${e.message}`)].join(" ");
      } else {
        $("#form-error").textContent = answer.detail || `The API answered ${response.status}.`;
      }
    } catch (e) {
      if (!(e instanceof ApiError)) $("#form-error").textContent = "The API cannot be reached; try again.";
    } finally {
      button.disabled = false;
    }
  }

  function defaultTime() {
    const now = new Date();
    now.setUTCSeconds(0, 0);
    return now.toISOString().slice(0, 16);
  }

  // -- Mission list ------------------------------------------------------------------------

  function age(iso) {
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 90) return `${Math.round(seconds)} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} d ago`;
  }

  function statusBadge(status) {
    const badge = document.createElement("span");
    badge.className = `status status-${status}`;
    badge.textContent = status.replace("_", " ");
    return badge;
  }

  async function loadMissions() {
    const tbody = $("#mission-table tbody");
    try {
      const page = await apiJson("/v1/missions?limit=100");
      tbody.replaceChildren();
      for (const mission of page.items) {
        const row = document.createElement("tr");
        row.dataset.missionId = mission.id;
        const status = document.createElement("td");
        status.append(statusBadge(mission.status));
        const name = document.createElement("td");
        const open = document.createElement("button");
        open.type = "button";
        open.textContent = mission.name;
        open.addEventListener("click", () => (location.hash = `#/missions/${mission.id}`));
        name.append(open);
        if (mission.external_ref) name.append(document.createElement("br"), mission.external_ref);
        const object = document.createElement("td");
        object.textContent = String(mission.request.object_type);
        const when = document.createElement("td");
        when.textContent = age(mission.created_at);
        when.title = mission.created_at;
        row.append(status, name, object, when);
        tbody.append(row);
      }
      $("#missions-empty").hidden = page.items.length > 0;
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) $("#missions-empty").hidden = false;
    }
  }

  // -- One mission --------------------------------------------------------------------------

  function stopFollowing() {
    if (state.follow) state.follow.abort();
    state.follow = null;
  }

  async function openMission(id) {
    stopFollowing();
    clearMissionLayers();
    const follow = new AbortController();
    state.follow = follow;
    state.missionId = id;
    delete document.body.dataset.statusStreams;
    show("mission");
    for (const el of ["#mission-failure", "#mission-notice", "#results", "#cancel-mission"]) $(el).hidden = true;
    $("#mission-events").replaceChildren();
    $("#mission-name").textContent = "Loading…";
    $("#mission-status").textContent = "";
    let mission;
    try {
      mission = await apiJson(`/v1/missions/${id}`, { signal: follow.signal });
    } catch (e) {
      if (follow.signal.aborted) return;
      $("#mission-name").textContent = "Mission";
      const notice = $("#mission-notice");
      notice.hidden = false;
      notice.textContent =
        e.status === 404
          ? "No such mission for this API key (it does not exist, or belongs to another tenant)."
          : `This mission cannot be shown: ${e.message}`;
      return;
    }
    renderMission(mission);
    drawRequest(mission.request);
    followStatus(id, follow.signal);
  }

  function renderMission(mission) {
    $("#mission-name").textContent = mission.name;
    const status = $("#mission-status");
    status.className = `status status-${mission.status}`;
    status.textContent = mission.status.replace("_", " ");
    status.dataset.status = mission.status;
    $("#mission-ref").textContent = mission.external_ref ? `${mission.external_ref} ·` : "";
    $("#mission-object").textContent = `${mission.request.object_type}, ${mission.request.duration_hours} h, ${mission.request.particles} particles`;
    $("#mission-progress").value = mission.progress;
    $("#mission-stage").textContent = `Stage: ${mission.stage}${mission.detail ? ` — ${mission.detail}` : ""}`;
    $("#cancel-mission").hidden = FINAL.has(mission.status);
    const failure = $("#mission-failure");
    failure.hidden = !mission.failure;
    if (mission.failure) {
      failure.textContent = `Failed at ${mission.failure.stage}: ${mission.failure.detail}`;
    }
    if (mission.status === "cancelled") {
      $("#mission-notice").hidden = false;
      $("#mission-notice").textContent = "This mission was cancelled; it has no results.";
    }
  }

  function addStatusEvent(change) {
    const item = document.createElement("li");
    const time = new Date(change.at).toISOString().slice(11, 19);
    item.textContent = `${time} ${change.status.replace("_", " ")}${change.detail ? ` — ${change.detail}` : ""}`;
    item.dataset.status = change.status;
    $("#mission-events").append(item);
    $("#mission-progress").value = change.progress;
    const status = $("#mission-status");
    status.className = `status status-${change.status}`;
    status.textContent = change.status.replace("_", " ");
    status.dataset.status = change.status;
    $("#mission-stage").textContent = `Stage: ${change.stage}${change.detail ? ` — ${change.detail}` : ""}`;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** One SSE event block: its id, type and data (comment lines ignored). */
  function parseEvent(block) {
    const event = { id: null, type: "message", data: "" };
    let fields = 0;
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "id") event.id = value;
      else if (name === "event") event.type = value;
      else if (name === "data") event.data = event.data ? `${event.data}\n${value}` : value;
      else continue;
      fields += 1;
    }
    return fields ? event : null;
  }

  /** Status changes over SSE until a final one; reconnects with Last-Event-ID. */
  async function followStatus(id, signal) {
    let lastId = null;
    let final = null;
    let connections = 0;
    while (!signal.aborted && !final) {
      let ended = false;
      try {
        const headers = lastId ? { "Last-Event-ID": lastId } : {};
        const response = await api(`/v1/missions/${id}/events`, { headers, signal });
        connections += 1;
        document.body.dataset.statusStreams = String(connections);
        if (!response.ok) {
          const problem = await readProblem(response);
          $("#mission-stage").textContent = `Waiting for the status stream: ${problem.detail || response.status}`;
          await sleep(response.status === 429 ? 5000 : 2000, signal);
          continue;
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        while (!final) {
          const { value, done } = await reader.read();
          if (done) {
            ended = true;
            break;
          }
          buffer += value.replace(/\r\n/g, "\n");
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const event = parseEvent(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (!event) continue;
            if (event.id) lastId = event.id;
            if (event.type !== "status") continue;
            const change = JSON.parse(event.data);
            addStatusEvent(change);
            if (FINAL.has(change.status)) final = change.status;
          }
        }
        if (final) reader.cancel().catch(() => {});
      } catch (e) {
        if (signal.aborted) return;
        console.warn("status stream interrupted, reconnecting:", e);
      }
      // A stream that ended without a final status (idle timeout, proxy, network) is
      // resumed after the last event seen; at once when it ended cleanly.
      if (!final) await sleep(ended ? 100 : 1000, signal);
    }
    if (signal.aborted || !final) return;
    try {
      const mission = await apiJson(`/v1/missions/${id}`, { signal });
      renderMission(mission);
      if (mission.status === "completed") await showResults(id, signal);
    } catch (_) {
      /* a newer view replaced this one, or the key was refused (handled in api) */
    }
  }

  async function cancelMission() {
    if (!state.missionId) return;
    try {
      renderMission(await apiJson(`/v1/missions/${state.missionId}`, { method: "DELETE" }));
    } catch (e) {
      $("#mission-notice").hidden = false;
      $("#mission-notice").textContent = `Not cancelled: ${e.message}`;
    }
  }

  // -- Results -------------------------------------------------------------------------------

  async function artifactJson(id, name, signal) {
    return apiJson(`/v1/missions/${id}/artifacts/${name}`, { signal });
  }

  async function showResults(id, signal) {
    const results = await apiJson(`/v1/missions/${id}/results`, { signal });
    const has = (name) => results.artifacts.some((a) => a.name === name);
    const [areas, datum, stranded, layers] = await Promise.all([
      has("products/containment.geojson") ? artifactJson(id, "products/containment.geojson", signal) : null,
      has("products/datum_track.geojson") ? artifactJson(id, "products/datum_track.geojson", signal) : null,
      has("products/stranded.geojson") ? artifactJson(id, "products/stranded.geojson", signal) : null,
      apiJson(`/v1/missions/${id}/layers`, { signal }).catch(() => null),
    ]);
    if (signal.aborted) return;
    $("#results").hidden = false;
    renderDownloads(id, results.artifacts);
    drawAreas(areas);
    drawDatum(datum);
    drawStranded(stranded);
    drawParticleLayers(layers, results.summary);
    fitToMission();
    performance.mark("driftline:mission-drawn");
    document.body.dataset.missionDrawn = id;
  }

  function renderDownloads(id, artifacts) {
    const list = $("#downloads");
    list.replaceChildren();
    for (const artifact of artifacts) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.artifact = artifact.name;
      button.textContent = `${artifact.name} (${sizeOf(artifact.bytes)})`;
      button.addEventListener("click", () => download(id, artifact, button));
      item.append(button);
      list.append(item);
    }
  }

  function sizeOf(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1048576) return `${(bytes / 1024).toFixed(1)} kB`;
    return `${(bytes / 1048576).toFixed(1)} MB`;
  }

  /** Fetched with the key, then saved from a blob: the key never appears in a URL. */
  async function download(id, artifact, button) {
    button.disabled = true;
    try {
      const response = await api(`/v1/missions/${id}/artifacts/${artifact.name}`);
      if (!response.ok) throw new ApiError(response, await readProblem(response));
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = artifact.name.split("/").pop();
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      $("#mission-notice").hidden = false;
      $("#mission-notice").textContent = `Download failed: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // -- The map ---------------------------------------------------------------------------------

  let map;
  const layers = {};
  let landRequest = null;
  let areaTimes = [];
  let areaFeatures = [];
  let particleData = null;

  function setupMap() {
    map = L.map("map", {
      center: [60.0, 4.0],
      zoom: 6,
      minZoom: 2,
      maxZoom: 16,
      worldCopyJump: false,
      maxBounds: [[-85, -180], [85, 180]],
      maxBoundsViscosity: 0.8,
      attributionControl: true,
    });
    map.attributionControl.setPrefix("Leaflet");
    map.createPane("land").style.zIndex = 250;
    map.createPane("graticule").style.zIndex = 260;
    map.createPane("density").style.zIndex = 300;
    const config = state.config || {};
    if (config.tile_url) {
      L.tileLayer(config.tile_url, { attribution: config.tile_attribution || "", maxZoom: 18 }).addTo(map);
    }
    const landStyle = config.tile_url
      ? { color: "#7a6a3a", weight: 1, fill: false }
      : { color: "#9c8f6a", weight: 0.8, fillColor: "#e9e1c8", fillOpacity: 1 };
    layers.land = L.geoJSON(null, {
      pane: "land",
      renderer: L.canvas({ pane: "land", padding: 0.3 }),
      style: landStyle,
      interactive: false,
      attribution: "Coastline: GSHHG",
    }).addTo(map);
    layers.graticule = L.layerGroup([], { pane: "graticule" }).addTo(map);
    layers.draft = L.layerGroup().addTo(map);
    layers.request = L.layerGroup().addTo(map);
    layers.density = L.layerGroup().addTo(map);
    layers.particles = L.layerGroup().addTo(map);
    layers.areas = L.featureGroup().addTo(map);
    layers.datum = L.layerGroup().addTo(map);
    layers.stranded = L.layerGroup().addTo(map);
    layers.particleRenderer = L.canvas({ padding: 0.3 });
    L.control.scale({ metric: true, imperial: false, maxWidth: 160 }).addTo(map);
    L.control
      .layers(null, {
        Land: layers.land,
        Graticule: layers.graticule,
        "Probability density": layers.density,
        Particles: layers.particles,
        "Search areas": layers.areas,
        "Datum track": layers.datum,
        Stranded: layers.stranded,
        "Last known position": layers.request,
      }, { collapsed: true })
      .addTo(map);
    cursorControl().addTo(map);
    legendControl().addTo(map);
    map.on("moveend", () => {
      loadLand();
      drawGraticule();
    });
    map.on("click", onMapClick);
    loadLand();
    drawGraticule();
  }

  function cursorControl() {
    const control = L.control({ position: "bottomright" });
    control.onAdd = () => {
      const box = L.DomUtil.create("div", "cursor-position");
      box.id = "cursor-position";
      box.textContent = "—";
      map.on("mousemove", (e) => (box.textContent = formatPosition(e.latlng.lat, L.Util.wrapNum(e.latlng.lng, [-180, 180], true))));
      return box;
    };
    return control;
  }

  function legendControl() {
    const control = L.control({ position: "bottomleft" });
    control.onAdd = () => {
      const box = L.DomUtil.create("div", "legend");
      box.innerHTML = Object.entries(LEVEL_COLOURS)
        .map(([level, colour]) => `<span><i style="border-color:${colour}"></i>${level} %</span>`)
        .join(" ");
      return box;
    };
    return control;
  }

  async function loadLand() {
    if (landRequest) landRequest.abort();
    const request = new AbortController();
    landRequest = request;
    const b = map.getBounds();
    const bbox = [
      Math.max(-180, b.getWest()),
      Math.max(-90, b.getSouth()),
      Math.min(180, b.getEast()),
      Math.min(90, b.getNorth()),
    ].map((v) => v.toFixed(4)).join(",");
    try {
      const response = await fetch(`land?bbox=${bbox}&zoom=${map.getZoom()}`, { signal: request.signal });
      if (!response.ok) return;
      const land = await response.json();
      if (request.signal.aborted) return;
      layers.land.clearLayers();
      layers.land.addData(land);
      document.body.dataset.landZoom = String(map.getZoom());
    } catch (_) {
      /* superseded by a newer view */
    }
  }

  function graticuleStep(zoom) {
    const steps = [30, 30, 20, 10, 5, 5, 2, 1, 0.5, 0.25, 1 / 6, 1 / 12, 1 / 30, 1 / 60, 1 / 120, 1 / 240, 1 / 240];
    return steps[Math.min(Math.max(zoom, 0), steps.length - 1)];
  }

  function graticuleLabel(value, positive, negative, width) {
    const text = ddm(value, positive, negative, width);
    return text.replace(/\.00'/, "'").replace(/°00'/, "°");
  }

  function drawGraticule() {
    const group = layers.graticule;
    group.clearLayers();
    const step = graticuleStep(map.getZoom());
    const b = map.getBounds();
    const west = Math.max(-180, Math.floor(b.getWest() / step) * step);
    const east = Math.min(180, Math.ceil(b.getEast() / step) * step);
    const south = Math.max(-85, Math.floor(b.getSouth() / step) * step);
    const north = Math.min(85, Math.ceil(b.getNorth() / step) * step);
    const style = { color: "#6f8fa6", weight: 0.6, opacity: 0.7, interactive: false, pane: "graticule" };
    const labelAt = (lat, lon, text) =>
      L.marker([lat, lon], {
        pane: "graticule",
        interactive: false,
        keyboard: false,
        icon: L.divIcon({ className: "graticule-label", html: text, iconSize: null, iconAnchor: [-2, -2] }),
      });
    for (let i = 0; west + i * step <= east + 1e-9 && i < 400; i++) {
      const lon = west + i * step;
      group.addLayer(L.polyline([[south, lon], [north, lon]], style));
      group.addLayer(labelAt(b.getNorth(), lon, graticuleLabel(lon, "E", "W", 3)));
    }
    for (let i = 0; south + i * step <= north + 1e-9 && i < 400; i++) {
      const lat = south + i * step;
      group.addLayer(L.polyline([[lat, west], [lat, east]], style));
      group.addLayer(labelAt(lat, b.getWest(), graticuleLabel(lat, "N", "S", 2)));
    }
  }

  function onMapClick(event) {
    if ($("#mission-form").hidden) return;
    const { lat } = event.latlng;
    const lon = L.Util.wrapNum(event.latlng.lng, [-180, 180], true);
    const target = document.querySelector('input[name="click-target"]:checked').value;
    if (target === "end") {
      $("#end-details").open = true;
      $("#f-end").value = formatPosition(lat, lon);
    } else {
      $("#f-lkp").value = formatPosition(lat, lon);
    }
    draftMarkers();
  }

  function draftMarkers() {
    layers.draft.clearLayers();
    const place = (inputId, radiusId, colour, label) => {
      try {
        const p = parsePosition($(inputId).value);
        const radius = Number($(radiusId).value) || 0;
        L.circle([p.lat, p.lon], { radius, color: colour, weight: 1, className: "draft-radius" }).addTo(layers.draft);
        L.circleMarker([p.lat, p.lon], { radius: 5, color: colour, fillOpacity: 1, className: "draft-position" })
          .bindTooltip(`${label}: ${formatPosition(p.lat, p.lon)}`)
          .addTo(layers.draft);
        return p;
      } catch (_) {
        return null;
      }
    };
    const lkp = place("#f-lkp", "#f-radius", "#0b5fa5", "Last known position");
    const end = place("#f-end", "#f-end-radius", "#6a3d9a", "End position");
    if (lkp && end) L.polyline([[lkp.lat, lkp.lon], [end.lat, end.lon]], { color: "#6a3d9a", dashArray: "4 4" }).addTo(layers.draft);
  }

  function clearMissionLayers() {
    if (!map) return;
    for (const name of ["request", "density", "particles", "areas", "datum", "stranded"]) layers[name].clearLayers();
    particleData = null;
    areaTimes = [];
    areaFeatures = [];
    delete document.body.dataset.missionDrawn;
  }

  function drawRequest(request) {
    layers.draft.clearLayers();
    const lkp = request.last_known_position;
    const at = [lkp.lat, lkp.lon];
    L.circle(at, { radius: lkp.radius_m || 0, color: "#0b5fa5", weight: 1.5, fillOpacity: 0.05, className: "lkp-radius" })
      .addTo(layers.request);
    L.circleMarker(at, { radius: 6, color: "#0b5fa5", fillColor: "#fff", fillOpacity: 1, weight: 3, className: "lkp" })
      .bindTooltip(`Last known position ${formatPosition(lkp.lat, lkp.lon)}<br>${lkp.time}`)
      .addTo(layers.request);
    if (request.end_position) {
      const end = request.end_position;
      L.polyline([at, [end.lat, end.lon]], { color: "#0b5fa5", dashArray: "4 4" }).addTo(layers.request);
      L.circle([end.lat, end.lon], { radius: end.radius_m || 0, color: "#0b5fa5", weight: 1 }).addTo(layers.request);
    }
    map.setView(at, Math.max(map.getZoom(), 9));
  }

  function drawAreas(collection) {
    const features = (collection && collection.features) || [];
    areaFeatures = features;
    areaTimes = [...new Set(features.map((f) => f.properties.time))].sort();
    const slider = $("#area-time");
    slider.max = String(Math.max(0, areaTimes.length - 1));
    slider.value = slider.max;
    slider.disabled = areaTimes.length < 2;
    showAreasAt(areaTimes.length - 1);
  }

  function showAreasAt(index) {
    layers.areas.clearLayers();
    const time = areaTimes[index];
    $("#area-time-label").textContent = time ? time.replace("T", " ").replace(":00Z", " UTC") : "none";
    const rows = $("#area-table tbody");
    rows.replaceChildren();
    const shown = areaFeatures
      .filter((f) => f.properties.time === time)
      .sort((a, b) => b.properties.level - a.properties.level);
    for (const feature of shown) {
      const level = feature.properties.level;
      const colour = LEVEL_COLOURS[level] || "#555";
      L.geoJSON(feature, {
        style: { color: colour, weight: 2, fillColor: colour, fillOpacity: 0.12, className: `containment containment-${level}` },
      })
        .bindTooltip(`${level} % containment, ${feature.properties.area_km2} km²`)
        .addTo(layers.areas);
      const row = document.createElement("tr");
      row.dataset.level = String(level);
      row.innerHTML = `<td>${level} %</td><td>${feature.properties.area_km2}</td>`;
      rows.append(row);
    }
    document.body.dataset.areaTime = time || "";
  }

  function drawDatum(collection) {
    for (const feature of (collection && collection.features) || []) {
      const [lon, lat] = feature.geometry.type === "Point" ? feature.geometry.coordinates : [null, null];
      if (feature.geometry.type === "LineString") {
        L.polyline(feature.geometry.coordinates.map(([x, y]) => [y, x]), { color: "#222", weight: 2, className: "datum-track" })
          .addTo(layers.datum);
      } else if (lat !== null) {
        L.circleMarker([lat, lon], { radius: 3, color: "#222", fillOpacity: 1, className: "datum" })
          .bindTooltip(`Datum ${feature.properties.time}<br>${formatPosition(lat, lon)}`)
          .addTo(layers.datum);
      }
    }
  }

  function drawStranded(collection) {
    for (const feature of (collection && collection.features) || []) {
      const [lon, lat] = feature.geometry.coordinates;
      L.circleMarker([lat, lon], { radius: 3, color: "#8b0000", fillColor: "#8b0000", fillOpacity: 1, className: "stranded", renderer: layers.particleRenderer })
        .bindTooltip("Stranded")
        .addTo(layers.stranded);
    }
  }

  function drawParticleLayers(data, summary) {
    particleData = data;
    const slider = $("#particle-time");
    if (!data || !data.times.length) {
      slider.disabled = true;
      $("#particle-summary").textContent = `${summary.particles_active} afloat, ${summary.particles_stranded} stranded (no particle layer).`;
      return;
    }
    slider.max = String(data.times.length - 1);
    slider.value = slider.max;
    slider.disabled = data.times.length < 2;
    showParticlesAt(data.times.length - 1);
  }

  function showParticlesAt(index) {
    if (!particleData) return;
    layers.particles.clearLayers();
    layers.density.clearLayers();
    const time = particleData.times[index];
    const points = particleData.particles[index] || [];
    for (const [lon, lat] of points) {
      L.circleMarker([lat, lon], { radius: 1.5, weight: 0, fillColor: "#1f3b73", fillOpacity: 0.7, renderer: layers.particleRenderer, interactive: false })
        .addTo(layers.particles);
    }
    const density = particleData.density;
    if (density) {
      const cells = density.frames[index] || [];
      const canvas = document.createElement("canvas");
      canvas.width = density.cols;
      canvas.height = density.rows;
      const context = canvas.getContext("2d");
      const peak = cells.reduce((m, c) => Math.max(m, c[2]), 0) || 1;
      for (const [row, col, p] of cells) {
        const t = p / peak;
        context.fillStyle = `rgba(255, ${Math.round(220 * (1 - t))}, 0, ${(0.15 + 0.65 * t).toFixed(3)})`;
        context.fillRect(col, density.rows - 1 - row, 1, 1);
      }
      L.imageOverlay(canvas.toDataURL(), [[density.south, density.west], [density.north, density.east]], {
        pane: "density",
        className: "density",
        interactive: false,
      }).addTo(layers.density);
    }
    $("#particle-time-label").textContent = time.replace("T", " ").replace(/:00Z$/, " UTC");
    $("#particle-summary").textContent =
      `${points.length} of ${particleData.particles_shown} shown particles afloat (${particleData.particles_total} simulated).`;
    document.body.dataset.particleTime = time;
  }

  function fitToMission() {
    const bounds = L.latLngBounds([]);
    for (const group of [layers.areas, layers.request]) {
      group.eachLayer((layer) => {
        if (layer.getBounds) bounds.extend(layer.getBounds());
        else if (layer.getLatLng) bounds.extend(layer.getLatLng());
      });
    }
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 13 });
  }

  // -- Start ---------------------------------------------------------------------------------

  async function start() {
    try {
      state.config = await (await fetch("config.json")).json();
    } catch (_) {
      state.config = {};
    }
    setupMap();
    $("#sign-in").addEventListener("submit", signIn);
    $("#sign-out").addEventListener("click", () => signOut("Signed out."));
    $("#mission-form").addEventListener("submit", submitMission);
    $("#mission-form").addEventListener("input", clearFieldError);
    $("#f-object-search").addEventListener("input", filterObjectTypes);
    $("#f-object-type").addEventListener("change", describeObjectType);
    for (const id of ["#f-lkp", "#f-end", "#f-radius", "#f-end-radius"]) $(id).addEventListener("change", draftMarkers);
    $("#f-time").value = defaultTime();
    $("#refresh-missions").addEventListener("click", loadMissions);
    $("#cancel-mission").addEventListener("click", cancelMission);
    $("#area-time").addEventListener("input", (e) => showAreasAt(Number(e.target.value)));
    $("#particle-time").addEventListener("input", (e) => showParticlesAt(Number(e.target.value)));
    window.addEventListener("hashchange", route);
    loadObjectTypes().catch(() => {
      $("#f-object-description").textContent = "The object types could not be loaded; reload the page.";
    });
    route();
  }

  window.DriftlineConsole = { parsePosition, formatPosition };
  document.addEventListener("DOMContentLoaded", start);
})();
