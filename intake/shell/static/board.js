// The Now page keeps its board up to date without a reload: every few seconds (the board's
// data-refresh-seconds), and when the tab is shown again, it fetches the board alone
// (GET data-url, the same template block the page was rendered from) and swaps it in.
// Nothing the user is in the middle of is thrown away: while the question "take it over
// anyway?" is open, or the keyboard focus is on the board, the swap waits for the next round.
// A fetch that fails shows the board's own "not updated since" line instead of silence.
// A file of its own, so the page needs no inline script (Content-Security-Policy).
"use strict";
(function () {
  var board = document.getElementById("board");
  if (!board || !board.dataset.url) {
    return;
  }
  var seconds = Number(board.dataset.refreshSeconds);
  if (!(seconds > 0)) {
    seconds = 20;
  }
  var fetching = false;

  function busy() {
    if (document.querySelector("section.take-over")) {
      return true;
    }
    var focused = document.activeElement;
    return Boolean(focused && focused !== document.body && board.contains(focused));
  }

  function stale() {
    var notice = board.querySelector(".board-stale");
    if (notice) {
      notice.hidden = false;
    }
  }

  function refresh() {
    if (fetching || document.hidden || busy()) {
      return;
    }
    fetching = true;
    // "manual": a session that ran out answers with a redirect to the login page, which
    // must not be swapped in as the board.
    fetch(board.dataset.url, {
      credentials: "same-origin",
      redirect: "manual",
      cache: "no-store",
      headers: { Accept: "text/html" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("board answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (!busy()) {
          board.innerHTML = html;
        }
      })
      .catch(stale)
      .finally(function () {
        fetching = false;
      });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      refresh();
    }
  });
})();
