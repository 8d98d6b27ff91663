"""Standard Webhooks signing (reference vector), verification and the SSRF rule."""

from __future__ import annotations

import time

import pytest

from driftline.errors import InvalidMission
from driftline.webhooks import (
    InvalidSignature,
    check_callback_url,
    generate_secret,
    sign,
    verify,
)

# The example of the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_verify_accepts_fresh_and_rejects_tampered_or_stale() -> None:
    secret = generate_secret()
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg_1", now, b"{}"),
    }
    verify(secret, headers, b"{}")
    with pytest.raises(InvalidSignature):
        verify(secret, headers, b'{"x": 1}')
    old = now - 3600
    stale = {
        **headers,
        "webhook-timestamp": str(old),
        "webhook-signature": sign(secret, "msg_1", old, b"{}"),
    }
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(secret, stale, b"{}")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/x",
        "http://10.0.0.5/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "ftp://example.org/x",
    ],
)
def test_internal_or_odd_callbacks_are_refused(url: str) -> None:
    with pytest.raises(InvalidMission) as info:
        check_callback_url(url, allow_private=False, allowlist=[])
    assert info.value.reason == "callback_url_refused"


def test_allow_list_by_host_or_cidr() -> None:
    check_callback_url("http://127.0.0.1:9/x", allow_private=False, allowlist=["127.0.0.0/8"])
    check_callback_url("http://localhost:9/x", allow_private=False, allowlist=["localhost"])
    check_callback_url("http://10.1.2.3/x", allow_private=True, allowlist=[])
