"""The coordinator keeps the list of topics that handled contacts are marked with."""

from __future__ import annotations

from flask.testing import FlaskClient

from routing.desk import Desk

from .auth import COORDINATOR, AuthActions, csrf_token


def offered_topics(client: FlaskClient) -> str:
    return client.get("/walk-in").get_data(as_text=True)


def test_a_topic_the_coordinator_adds_is_offered_when_handling(
    desk: Desk, auth: AuthActions
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")

    response = client.post(
        "/topics", data={"name": "Wachtwoord vergeten", "csrf_token": csrf_token(client, "/topics")}
    )

    assert response.status_code == 302
    assert "Wachtwoord vergeten" in offered_topics(client)


def test_a_retired_topic_is_no_longer_offered_and_can_come_back(
    desk: Desk, auth: AuthActions
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")
    page = client.get("/topics").get_data(as_text=True)
    assert "Videoconsult" in offered_topics(client)
    topic_id = page.split("/topics/")[3].split('"')[0]  # the third topic: Videoconsult

    client.post(
        f"/topics/{topic_id}", data={"active": "0", "csrf_token": csrf_token(client, "/topics")}
    )
    assert "Videoconsult" not in offered_topics(client)

    client.post(
        "/topics", data={"name": "videoconsult", "csrf_token": csrf_token(client, "/topics")}
    )
    assert "Videoconsult" in offered_topics(client)


def test_staff_cannot_change_topics(auth: AuthActions) -> None:
    client = auth.login()

    assert client.get("/topics").status_code == 403
    token = csrf_token(client, "/")
    assert client.post("/topics", data={"name": "x", "csrf_token": token}).status_code == 403
