"""The coordinator keeps the list of topics that handled contacts are marked with."""

from __future__ import annotations

from flask import Flask

from .test_dashboard_auth import add_user, csrf, log_in


def coordinator(app: Flask):  # type: ignore[no-untyped-def]
    add_user(app, "coordinator@example.org", role="coordinator")
    client = app.test_client()
    log_in(client, "coordinator@example.org")
    return client


def offered_topics(client) -> str:  # type: ignore[no-untyped-def]
    return client.get("/walk-in").get_data(as_text=True)


def test_a_topic_the_coordinator_adds_is_offered_when_handling(app: Flask, desk) -> None:  # type: ignore[no-untyped-def]
    client = coordinator(app)

    response = client.post(
        "/topics", data={"name": "Wachtwoord vergeten", "csrf_token": csrf(client, "/topics")}
    )

    assert response.status_code == 302
    assert "Wachtwoord vergeten" in offered_topics(client)


def test_a_retired_topic_is_no_longer_offered_and_can_come_back(app: Flask, desk) -> None:  # type: ignore[no-untyped-def]
    client = coordinator(app)
    page = client.get("/topics").get_data(as_text=True)
    assert "Videoconsult" in offered_topics(client)
    topic_id = page.split("/topics/")[3].split('"')[0]  # the third topic: Videoconsult

    client.post(f"/topics/{topic_id}", data={"active": "0", "csrf_token": csrf(client, "/topics")})
    assert "Videoconsult" not in offered_topics(client)

    client.post("/topics", data={"name": "videoconsult", "csrf_token": csrf(client, "/topics")})
    assert "Videoconsult" in offered_topics(client)


def test_staff_cannot_change_topics(app: Flask) -> None:
    add_user(app)
    client = app.test_client()
    log_in(client)

    assert client.get("/topics").status_code == 403
    token = csrf(client, "/")
    assert client.post("/topics", data={"name": "x", "csrf_token": token}).status_code == 403
