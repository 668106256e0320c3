// The glscl search page: plain JS, no build step, nothing loaded from outside this server.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const form = document.getElementById("search-form");
const input = document.getElementById("q");
const statusLine = document.getElementById("status");
const grid = document.getElementById("results");
const template = document.getElementById("card-template");
const player = document.getElementById("player");
const video = document.getElementById("video");
let playing = null; // {card, hit} of the video element's current source

// Media and thumbnails are <img>/<video> URLs, which cannot send a header: the token rides in the query.
function withToken(url) {
  if (!TOKEN) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

function clock(seconds) {
  const s = Math.max(seconds, 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), rest = (s % 60).toFixed(1).padStart(4, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function baseName(path) {
  return path.split(/[\\/]/).pop() || path;
}

async function search(query) {
  statusLine.textContent = "searching…";
  const headers = TOKEN ? {Authorization: "Bearer " + TOKEN} : {};
  let document_;
  try {
    const response = await fetch("/api/search?k=24&q=" + encodeURIComponent(query), {headers});
    document_ = await response.json();
    if (!response.ok) throw new Error(document_.error || response.statusText);
  } catch (error) {
    statusLine.textContent = "error: " + error.message;
    grid.replaceChildren();
    return;
  }
  render(document_);
  history.replaceState(null, "", "?" + new URLSearchParams({...(TOKEN ? {token: TOKEN} : {}), q: query}));
}

function render(result) {
  const n = result.results.length;
  const mode = result.mode === "zero-shot" ? " · zero-shot mode (sim1 only)" : "";
  statusLine.textContent = n ? `${n} video${n > 1 ? "s" : ""} for “${result.query}” · generation ${result.generation}${mode}`
                             : `no videos found for “${result.query}”` + mode;
  if (result.truncated) statusLine.textContent += " · the query was truncated";
  grid.replaceChildren(...result.results.map(makeCard));
}

function makeCard(hit) {
  const card = template.content.firstElementChild.cloneNode(true);
  const thumb = card.querySelector(".thumb");
  thumb.src = withToken(`/thumb/${encodeURIComponent(hit.video_id)}?t=${hit.best_frame_s}`);
  thumb.alt = `frame at ${clock(hit.best_frame_s)} of ${baseName(hit.path)}`;
  card.querySelector(".score").textContent = hit.score.toFixed(4);
  card.querySelector(".times").textContent = `${clock(hit.segment.start_s)}–${clock(hit.segment.end_s)}`;
  const name = card.querySelector(".name");
  name.textContent = baseName(hit.path);
  name.title = hit.path;
  if (hit.offline) {
    const badge = document.createElement("span");
    badge.className = "offline";
    badge.textContent = "offline";
    name.append(badge);
  }
  const list = card.querySelector(".paths");
  if (hit.paths.length > 1) {
    for (const path of hit.paths) {
      const item = document.createElement("li");
      item.textContent = path.split(/[\\/]/).slice(-2).join("/"); // folder and name; the whole path on hover
      item.title = path;
      list.append(item);
    }
  }
  card.title = hit.paths.join("\n");
  card.dataset.start = hit.segment.start_s;
  card.addEventListener("click", () => play(card, hit));
  card.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); play(card, hit); }
  });
  return card;
}

function play(card, hit) {
  for (const other of grid.querySelectorAll(".card.selected")) other.classList.remove("selected");
  card.classList.add("selected");
  playing = {card, hit};
  player.hidden = false;
  document.getElementById("player-title").textContent =
    `${baseName(hit.path)} · ${clock(hit.segment.start_s)}–${clock(hit.segment.end_s)}`;
  document.getElementById("player-path").textContent = hit.paths.join("\n");
  document.getElementById("player-error").hidden = true;
  video.hidden = false;
  video.dataset.start = hit.segment.start_s;
  // The #t fragment starts playback at the segment where the browser honours it; currentTime makes sure.
  video.src = withToken(`/media/${encodeURIComponent(hit.video_id)}`) + `#t=${hit.segment.start_s}`;
  video.addEventListener("loadedmetadata", () => {
    if (video.currentTime < hit.segment.start_s) video.currentTime = hit.segment.start_s;
    video.play().catch(() => {}); // autoplay may be refused; the controls remain
  }, {once: true});
  player.scrollIntoView({block: "nearest"});
}

// A codec the browser cannot play: keep the thumbnail, say where the file is.
video.addEventListener("error", () => {
  if (!playing) return;
  const {card, hit} = playing;
  video.hidden = true;
  const message = `This browser cannot play this file; it is at ${hit.paths.join(", ")}`;
  const errorLine = document.getElementById("player-error");
  errorLine.textContent = message;
  errorLine.hidden = false;
  const note = card.querySelector(".unplayable");
  note.textContent = "cannot play here: " + hit.path;
  note.hidden = false;
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = input.value.trim();
  if (query) search(query);
});

// Arrow keys move between cards: left/right by one, up/down by a row of the grid.
document.addEventListener("keydown", (event) => {
  if (!event.key.startsWith("Arrow")) return;
  const cards = [...grid.querySelectorAll(".card")];
  if (!cards.length) return;
  const at = cards.indexOf(document.activeElement);
  if (at < 0) {
    if (event.key === "ArrowDown" && document.activeElement === input) { event.preventDefault(); cards[0].focus(); }
    return;
  }
  const perRow = Math.max(1, cards.filter((c) => c.offsetTop === cards[0].offsetTop).length);
  const step = {ArrowLeft: -1, ArrowRight: 1, ArrowUp: -perRow, ArrowDown: perRow}[event.key];
  const next = at + step;
  event.preventDefault();
  if (next < 0 && event.key === "ArrowUp") input.focus();
  else cards[Math.min(Math.max(next, 0), cards.length - 1)].focus();
});

const initial = new URLSearchParams(location.search).get("q");
if (initial) { input.value = initial; search(initial); }
