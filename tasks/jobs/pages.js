// vad report pages: reviews, filters, keyboard navigation and the event player. One script for every page
// (its sha256 is in each page's Content-Security-Policy); it reads the page's data block and the rows'
// data-* attributes, and never builds HTML from data (textContent only).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("vad-data").textContent);
  const reviews = data.reviews || {};
  const LABELS = { confirmed: "confirmed", false_alarm: "false alarm", unsure: "unsure" };
  const KEYS = { c: "confirmed", f: "false_alarm", u: "unsure" };
  const rows = Array.from(document.querySelectorAll("tr.event"));
  const player = document.getElementById("player");
  let selected = null;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function showReview(row) {
    const review = reviews[row.dataset.event];
    row.dataset.review = review ? review.verdict : "unreviewed";
    const cell = row.querySelector("td.review");
    if (!cell) return;
    cell.replaceChildren();
    const verdict = el("span", review ? LABELS[review.verdict] || review.verdict : "unreviewed", "verdict");
    cell.append(verdict);
    if (review && (review.note || review.reviewer)) {
      cell.append(el("div", (review.note ? "“" + review.note + "” " : "") + "— " + (review.reviewer || ""), "muted"));
    }
    if (!data.api) return;
    const note = el("input", undefined, "note");
    note.placeholder = "note";
    note.value = review ? review.note || "" : "";
    const buttons = el("div", undefined, "verdicts");
    for (const [value, label] of Object.entries(LABELS)) {
      const button = el("button", label);
      button.type = "button";
      button.dataset.verdict = value;
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        save(row, value, note.value);
      });
      buttons.append(button);
    }
    note.addEventListener("click", (event) => event.stopPropagation());
    cell.append(buttons, note);
  }

  function save(row, verdict, note) {
    const d = row.dataset;
    const body = {
      event_id: d.event, video_id: d.video, verdict: verdict, note: note || "",
      start_s: Number(d.start), end_s: Number(d.end), camera: d.camera || "",
    };
    return fetch(data.api, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      credentials: "same-origin",
    }).then((response) => {
      if (!response.ok) return response.text().then((text) => { throw new Error(text); });
      return response.json();
    }).then((saved) => {
      reviews[saved.event_id] = saved;
      showReview(row);
      applyFilters();
      const status = document.getElementById("status");
      if (status) status.textContent = "saved: " + LABELS[saved.verdict];
    }).catch((error) => {
      const status = document.getElementById("status");
      if (status) status.textContent = "not saved: " + error.message;
    });
  }

  function value(id) {
    const input = document.getElementById(id);
    return input ? input.value : "";
  }

  function applyFilters() {
    const camera = value("f-camera"), date = value("f-date"), review = value("f-review");
    const minimum = Number(value("f-score") || 0);
    let shown = 0;
    for (const row of rows) {
      const d = row.dataset;
      const visible = (!camera || d.camera === camera) && (!date || d.date === date) &&
        Number(d.score || 0) >= minimum && (!review || d.review === review);
      row.hidden = !visible;
      if (visible) shown += 1;
    }
    const counter = document.getElementById("shown");
    if (counter) counter.textContent = String(shown);
    if (selected && selected.hidden) select(null);
  }

  function select(row) {
    if (selected) selected.classList.remove("selected");
    selected = row;
    if (row) {
      row.classList.add("selected");
      row.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function open(row) {
    if (row.dataset.href) window.location.href = row.dataset.href;
    else if (player) play(row, 0);
  }

  function play(row, offset) {
    select(row);
    const clip = row.dataset.clip;
    if (!player || !clip) return;
    const start = Math.max(0, offset || 0);
    const go = () => {
      player.currentTime = Math.min(start, player.duration || start);
      const playing = player.play();
      if (playing) playing.catch(() => {});
    };
    if (player.dataset.clip !== clip) {
      player.dataset.clip = clip;
      player.src = clip;
      if (row.dataset.poster) player.poster = row.dataset.poster;
      player.addEventListener("loadedmetadata", go, { once: true });
      player.load();
    } else {
      go();
    }
  }

  function eventAt(seconds) {
    // the event whose clip covers this moment, else the nearest event
    let best = null, distance = Infinity;
    for (const row of rows) {
      const a = Number(row.dataset.clipStart), b = Number(row.dataset.clipEnd);
      const d = seconds < a ? a - seconds : seconds > b ? seconds - b : 0;
      if (row.dataset.clip && d < distance) { best = row; distance = d; }
    }
    return best;
  }

  for (const row of rows) {
    showReview(row);
    row.tabIndex = 0;
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button, input")) return;
      open(row);
    });
  }
  for (const id of ["f-camera", "f-date", "f-score", "f-review"]) {
    const input = document.getElementById(id);
    if (input) for (const type of ["input", "change"]) input.addEventListener(type, applyFilters);
  }
  applyFilters();

  const timeline = document.getElementById("timeline");
  if (timeline && player) {
    timeline.addEventListener("click", (event) => {
      const box = timeline.getBoundingClientRect();
      const x0 = Number(timeline.dataset.x0), x1 = Number(timeline.dataset.x1);
      const fraction = ((event.clientX - box.left) / box.width - x0) / (x1 - x0);
      const seconds = Math.max(0, Math.min(1, fraction)) * Number(timeline.dataset.duration);
      const row = eventAt(seconds);
      if (row) play(row, seconds - Number(row.dataset.clipStart));
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("input, select, textarea, a, button, video")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const visible = rows.filter((row) => !row.hidden);
    const at = visible.indexOf(selected);
    if (event.key === "j" || event.key === "ArrowDown") {
      select(visible[Math.min(at + 1, visible.length - 1)] || null);
    } else if (event.key === "k" || event.key === "ArrowUp") {
      select(visible[Math.max(at - 1, 0)] || null);
    } else if ((event.key === "Enter" || event.key === "o") && selected) {
      open(selected);
    } else if (KEYS[event.key] && selected && data.api) {
      save(selected, KEYS[event.key], (selected.querySelector("input.note") || {}).value);
    } else {
      return;
    }
    event.preventDefault();
  });

  const wanted = new URLSearchParams(window.location.hash.slice(1)).get("event");
  const first = rows.find((row) => row.dataset.event === wanted) || (wanted ? null : rows.find((r) => r.dataset.clip));
  if (first && player) {
    player.dataset.clip = "";
    if (wanted) play(first, Number(first.dataset.start) - Number(first.dataset.clipStart));
    else { player.dataset.clip = first.dataset.clip; player.src = first.dataset.clip; select(first); }
  }
})();
