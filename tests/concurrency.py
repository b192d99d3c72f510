"""Requests sent at the same moment: each on its own thread (and so its own database
connection), released together by a barrier. For the tests that prove the database, not a
read followed by a write, decides between two requests."""

from __future__ import annotations

import threading
from typing import Any

from flask.testing import FlaskClient


def at_once(
    posts: list[tuple[FlaskClient, str, dict[str, str] | None]],
) -> list[Any]:
    """POST each (client, path, form) at once (GET where the form is None); the responses,
    or what each raised."""
    barrier = threading.Barrier(len(posts))
    answers: list[Any] = [None] * len(posts)

    def run(i: int) -> None:
        client, path, data = posts[i]
        barrier.wait(10)
        try:
            answers[i] = client.get(path) if data is None else client.post(path, data=data)
        except BaseException as exc:  # what the test is looking for
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers
