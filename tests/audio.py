"""Small recordings made in the test itself, as a coordinator's upload would be."""

from __future__ import annotations

import io
import math
import wave

from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from .auth import csrf_token

# One MPEG-1 Layer III frame: 128 kbit/s, 44.1 kHz, mono, no padding; 1152 samples.
_MP3_HEADER = bytes([0xFF, 0xFB, 0x90, 0xC4])
_MP3_FRAME = 144 * 128_000 // 44_100
_MP3_FRAME_SECONDS = 1152 / 44_100


def wav_bytes(seconds: float = 2.0, rate: int = 8000) -> bytes:
    """A tone in 16-bit mono PCM WAV, telephone quality."""
    frames = int(seconds * rate)
    samples = b"".join(
        int(8000 * math.sin(2 * math.pi * 440 * i / rate)).to_bytes(2, "little", signed=True)
        for i in range(frames)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(samples)
    return out.getvalue()


def mp3_bytes(seconds: float = 2.0) -> bytes:
    """Silent MP3 frames, as many as `seconds` takes."""
    frames = max(1, round(seconds / _MP3_FRAME_SECONDS))
    return (_MP3_HEADER + bytes(_MP3_FRAME - len(_MP3_HEADER))) * frames


def upload(
    client: FlaskClient, slot: str, language: str, data: bytes, filename: str = "opname.wav"
) -> TestResponse:
    """The coordinator's upload on the Recordings page (`client` logged in as one)."""
    # Encoded here, in memory: the test client would spool a large body to a temporary
    # file it never closes.
    boundary, body = encode_multipart(
        {
            "csrf_token": csrf_token(client, "/recordings"),
            "slot": slot,
            "language": language,
            "recording": FileStorage(io.BytesIO(data), filename=filename),
        }
    )
    return client.post(
        "/recordings", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def remove(client: FlaskClient, slot: str, language: str) -> TestResponse:
    return client.post(
        "/recordings/remove",
        data={"csrf_token": csrf_token(client, "/recordings"), "slot": slot, "language": language},
    )
