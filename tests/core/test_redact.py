"""Redaction: secret values are replaced wherever redline would write them."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from redline.core import REDACTED, Redactor

# Secrets that cannot be mistaken for the surrounding words.
secrets_ = st.from_regex(r"S3cr[A-Za-z0-9+/=._~-]{4,40}", fullmatch=True)


def test_default_headers_are_secret_in_any_case() -> None:
    redactor = Redactor()
    pairs = [
        ("authorization", "Bearer x"),
        ("COOKIE", "a=b"),
        ("Set-Cookie", "s=1"),
        ("Proxy-Authorization", "Basic y"),
        ("Accept", "text/html"),
    ]
    assert redactor.headers(pairs) == [
        ("authorization", REDACTED),
        ("COOKIE", REDACTED),
        ("Set-Cookie", REDACTED),
        ("Proxy-Authorization", REDACTED),
        ("Accept", "text/html"),
    ]


@given(secrets_)
def test_header_lines_and_dict_reprs_in_free_text_are_scrubbed(secret: str) -> None:
    text = (
        "Traceback (most recent call last):\n"
        f"  request headers: {{'Authorization': 'Bearer {secret}', 'Accept': '*/*'}}\n"
        f"Cookie: session={secret}\n"
        f"X-Api-Key:{secret}\n"
        "ValueError: boom"
    )
    out = Redactor(["x-api-key"]).text(text)
    assert secret not in out
    assert "'Accept': '*/*'" in out
    assert out.endswith("ValueError: boom")


@given(secrets_, st.text(max_size=20))
def test_json_bodies_stay_json_with_the_field_redacted(secret: str, other: str) -> None:
    body = json.dumps({"user": other, "password": secret, "n": 3})
    out = Redactor(["password"]).text(body)
    assert json.loads(out) == {"user": other, "password": REDACTED, "n": 3}


@given(secrets_)
def test_query_strings_and_form_bodies(secret: str) -> None:
    redactor = Redactor(["token", "api_key"])
    assert redactor.url(f"/search?q=shoes&token={secret}&page=2") == (
        f"/search?q=shoes&token={REDACTED}&page=2"
    )
    assert redactor.text(f"api_key={secret}&x=1") == f"api_key={REDACTED}&x=1"
    # A name that merely ends like a secret one is left alone.
    assert redactor.text("mytoken=abc") == "mytoken=abc"


@given(st.from_regex(r"S3cr[A-Za-z0-9._~%-]{4,40}", fullmatch=True))  # userinfo characters
def test_a_url_loses_its_password_but_keeps_its_user(secret: str) -> None:
    out = Redactor().url(f"https://alice:{secret}@shop.example:8443/x?y=1")
    assert out == f"https://alice:{REDACTED}@shop.example:8443/x?y=1"
    assert Redactor().url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


@given(secrets_)
def test_known_literal_values_are_scrubbed_wherever_they_appear(secret: str) -> None:
    redactor = Redactor(secrets=[secret, "ab"])
    out = redactor.text(f"failed with {secret!r} at ab")
    assert secret not in out
    assert out.endswith("at ab")  # too short to scrub without destroying the text


def test_non_secret_names_pass_through() -> None:
    text = 'content-type: application/json\n{"user": "bob"}\nq=1'
    assert Redactor(["password"]).text(text) == text
