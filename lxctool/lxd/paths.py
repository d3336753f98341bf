"""LXD API paths: every segment percent-encoded, so no name can add a segment or a query."""

from __future__ import annotations

import urllib.parse


def path(*segments: str) -> str:
    """An LXD API path from its segments, each percent-encoded whole: path("instances", n, "state").

    Nothing a user types can add a segment, a query (`x?project=other`) or a fragment: '/', '?',
    '#', '%' and spaces in a segment become %2F, %3F, %23, %25 and %20, so LXD sees one name
    (and answers 404) instead of another object in another project.
    """
    return "/1.0/" + "/".join(urllib.parse.quote(str(seg), safe="") for seg in segments)


def name_of_url(url: str) -> str:
    """The last segment of an LXD URL (a used_by entry, an operation resource), decoded."""
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def project_of_url(url: str) -> str:
    """The project an LXD URL names in its query (default when none)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return (query.get("project") or ["default"])[0]
