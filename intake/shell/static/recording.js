// The voicemail player says so when the recording cannot be fetched, instead of a silent 0:00.
// A file of its own, so the pages need no inline script (Content-Security-Policy).
"use strict";
document.querySelectorAll("audio[data-unavailable]").forEach(function (audio) {
  var note = document.getElementById(audio.dataset.unavailable);
  if (!note) {
    return;
  }
  function unavailable() {
    note.hidden = false;
    audio.classList.add("unavailable");
  }
  audio.addEventListener("error", unavailable);
  if (audio.error) {
    unavailable();
  }
});
