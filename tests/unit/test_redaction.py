"""Secrets never reach logs: SAS signatures, bearer tokens, assertions, account keys."""

import logging

from shared.redact import SecretScrubbingFilter, redact_url, scrub

SAS_URL = (
    "https://acct.blob.core.windows.net/uploads/job/file.mp4"
    "?sv=2025-01-05&se=2026-11-24T06%3A00%3A00Z&sr=b&sp=cw&sig=abcDEF123%2Bsecret%3D"
)


def test_redact_url_hides_the_signature_but_keeps_what_an_operator_needs():
    shown = redact_url(SAS_URL)
    assert "abcDEF123" not in shown
    assert "sig=REDACTED" in shown
    assert "se=2026-11-24T06:00:00Z" in shown and "sp=cw" in shown
    assert shown.startswith("https://acct.blob.core.windows.net/uploads/job/file.mp4?")


def test_redact_url_hides_unknown_parameters_and_userinfo():
    shown = redact_url("https://user:pw@host.test/p?token=abc&x=1")
    assert "pw" not in shown and "abc" not in shown and "user" not in shown


def test_scrub_finds_secrets_inside_free_text():
    text = (
        f"PUT {SAS_URL} failed; Authorization: Bearer eyJhbGciOi.payload.sig; "
        "assertion=eyJabc.def.ghi&client_id=x; AccountKey=Eby8vdM02x==;"
    )
    cleaned = scrub(text)
    for secret in ("abcDEF123", "eyJhbGciOi", "eyJabc", "Eby8vdM02x"):
        assert secret not in cleaned


def test_logging_filter_scrubs_third_party_messages(caplog):
    logger = logging.getLogger("third.party")
    logger.addFilter(SecretScrubbingFilter())
    with caplog.at_level(logging.INFO, logger="third.party"):
        logger.info("Request URL: %s", SAS_URL)
    assert "abcDEF123" not in caplog.text
    assert "sig=REDACTED" in caplog.text


def test_urllib3_request_lines_are_scrubbed_whatever_handler_writes_them(caplog):
    import shared  # noqa: F401 - importing the package installs the scrubbing

    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logging.getLogger("urllib3.connectionpool").debug(
            '%s://%s:%s "%s %s %s" %s %s',
            "https",
            "v.test",
            443,
            "GET",
            "/media/streams/main/mp4?deviceId=1&expires=9&signature=s3cr3tsig",
            "HTTP/1.1",
            200,
            10,
        )
    assert "s3cr3tsig" not in caplog.text and "signature=REDACTED" in caplog.text
