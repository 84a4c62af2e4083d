// A recording's page: #t=SECONDS (a search result, a time in the transcript) plays from there;
// the sentence being said is highlighted; audio's captions are shown under the player.
(() => {
  const player = document.getElementById("player");
  if (!player) return;
  const rows = Array.from(document.querySelectorAll("#transcript tr[data-start]"));
  const wanted = () => {
    const found = /(?:^#|&)t=([0-9]+(?:\.[0-9]+)?)/.exec(location.hash);
    return found ? parseFloat(found[1]) : null;
  };
  // A server that answers no byte ranges (python -m http.server) makes the media unseekable: it is
  // then fetched whole once, and played from memory, where any moment can be reached.
  let whole = null;
  const seekable = (t) => Array.from({ length: player.seekable.length }, (_, i) => i)
    .some((i) => player.seekable.start(i) <= t && t <= player.seekable.end(i));
  const seek = (play) => {
    const t = wanted();
    if (t === null) return;
    const go = () => {
      if (t > 0 && !seekable(t) && !whole && !player.currentSrc.startsWith("blob:")) {
        whole = fetch(player.currentSrc).then((r) => r.blob()).then((blob) => {
          player.src = URL.createObjectURL(blob);
          player.addEventListener("loadedmetadata", go, { once: true });
        }).catch(() => {});
        return;
      }
      player.currentTime = t;
      if (play) player.play().catch(() => {});
    };
    if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, { once: true });
  };
  window.addEventListener("hashchange", () => seek(true));
  seek(false);
  let current = null;
  const follow = () => {
    const t = player.currentTime;
    const row = rows.find((r) => t >= parseFloat(r.dataset.start) && t < parseFloat(r.dataset.end) + 0.5) || null;
    if (row !== current) {
      if (current) current.classList.remove("current");
      if (row) { row.classList.add("current"); row.scrollIntoView({ block: "nearest" }); }
      current = row;
    }
  };
  player.addEventListener("timeupdate", follow);
  player.addEventListener("seeked", follow);
  // Browsers draw no text tracks for <audio>: its French and English cues are shown under it.
  const captions = document.getElementById("captions");
  if (captions) {
    captions.hidden = false;
    Array.from(player.textTracks).forEach((track) => {
      track.mode = "hidden";
      const line = document.getElementById("caption-" + track.language);
      track.addEventListener("cuechange", () => {
        line.textContent = Array.from(track.activeCues || []).map((cue) => cue.text.replace(/<[^>]+>/g, "")).join("\n");
      });
    });
  }
  // An English reader (a result of the English search) gets the English track shown on video.
  if (/[&#]lang=en\b/.test(location.hash)) {
    Array.from(player.textTracks).forEach((t) => { if (player.tagName === "VIDEO") t.mode = t.language === "en" ? "showing" : "disabled"; });
  }
})();
