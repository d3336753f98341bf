"""Credentials never reach a message: one place that blanks the user:password part of URLs."""

from __future__ import annotations

import re
import urllib.parse

REDACTED = "***"
# scheme://userinfo@ anywhere in free text (an error from urllib, a line echoing the option)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")


def redact_url(url: str) -> str:
    """The URL with any user and password replaced by ***: http://u:pw@h:1/x -> http://***@h:1/x."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def redact_text(text: str) -> str:
    """Every URL credential in free text replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(URL without user:password, (user, password) or None): credentials go in a header instead."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    clean = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return clean, (urllib.parse.unquote(user), urllib.parse.unquote(password))
