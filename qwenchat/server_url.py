"""A server's base URL as the config and ``--engine`` take it, checked and made canonical.

Its own module so that the config can check ``engine.url`` without importing the remote
engine (which imports the config).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def normalize_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing ``/`` or ``/v1``;
    ``host:port`` alone means http. Raises :class:`ValueError` for anything else."""
    text = url.strip()
    if not text:
        raise ValueError("the URL is empty")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"expected an http:// or https:// URL, not {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    if parts.query or parts.fragment:
        raise ValueError(f"expected no query or fragment in {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
