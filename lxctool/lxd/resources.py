"""LXD's images, networks, profiles, storage pools and projects: plain REST calls.

Mixed into lxd.Lxd (still the one door to LXD); split out to keep lxd.py about transport,
instances and exec.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Protocol

from lxctool.lxd.paths import name_of_url, path


class _Api(Protocol):
    """What the mixin needs from Lxd."""

    def call(self, method: str, path: str, **kw: Any) -> Any: ...

    def get(self, path: str, **params: Any) -> Any: ...

    def get_or_none(self, path: str, **params: Any) -> Any: ...
    def image_alias(self, alias: str) -> dict[str, Any] | None: ...

    def profile(self, name: str) -> dict[str, Any] | None: ...


class ResourcesMixin:
    """Images, networks, profiles, storage and projects of one LXD daemon."""

    # -- images ------------------------------------------------------------
    def image_alias(self: _Api, alias: str) -> dict[str, Any] | None:
        """The alias record (name, target fingerprint) or None."""
        return self.get_or_none(path("images", "aliases", alias))

    def images(self: _Api) -> list[dict[str, Any]]:
        """All images with their properties and aliases."""
        return self.get(path("images"), recursion=1) or []

    def image(self: _Api, fingerprint: str) -> dict[str, Any] | None:
        """One image by fingerprint, or None."""
        return self.get_or_none(path("images", fingerprint))

    def import_image(self: _Api, tarball: str, properties: dict[str, str] | None = None) -> str:
        """Upload a unified image tarball; return its fingerprint."""
        hdrs = {"Content-Type": "application/octet-stream", "X-LXD-public": "false"}
        if properties:
            hdrs["X-LXD-properties"] = urllib.parse.urlencode(properties)
        hdrs["Content-Length"] = str(os.path.getsize(tarball))
        with open(tarball, "rb") as fh:
            meta = self.call("POST", path("images"), data=fh, headers=hdrs)
        return meta["fingerprint"]

    def set_alias(self: _Api, alias: str, fingerprint: str, description: str = "") -> None:
        """Point alias at fingerprint (creating it, or moving it)."""
        if self.image_alias(alias) is None:
            self.call("POST", path("images", "aliases"),
                      body={"name": alias, "target": fingerprint, "description": description})
        else:
            self.call("PUT", path("images", "aliases", alias),
                      body={"target": fingerprint, "description": description})

    def delete_image(self: _Api, fingerprint: str) -> None:
        """Delete an image."""
        self.call("DELETE", path("images", fingerprint))

    def delete_alias(self: _Api, alias: str) -> None:
        """Delete an image alias (the image stays)."""
        self.call("DELETE", path("images", "aliases", alias))

    # -- networks, profiles, storage ----------------------------------------
    def network(self: _Api, name: str) -> dict[str, Any] | None:
        """A network's record, or None."""
        return self.get_or_none(path("networks", name))

    def networks(self: _Api) -> list[dict[str, Any]]:
        """All networks, with config."""
        return self.get(path("networks"), recursion=1) or []

    def network_leases(self: _Api, name: str) -> list[dict[str, Any]]:
        """DHCP leases and static reservations LXD knows on a managed network."""
        return self.get(path("networks", name, "leases")) or []

    def create_network(self: _Api, name: str, config: dict[str, str], description: str = "") -> None:
        """Create a managed bridge."""
        self.call("POST", path("networks"),
                  body={"name": name, "type": "bridge", "config": config, "description": description})

    def patch_network(self: _Api, name: str, config: dict[str, str]) -> None:
        """Change a network's config keys."""
        self.call("PATCH", path("networks", name), body={"config": config})

    def delete_network(self: _Api, name: str) -> None:
        """Delete a network."""
        self.call("DELETE", path("networks", name))

    def profile(self: _Api, name: str) -> dict[str, Any] | None:
        """A profile's record, or None."""
        return self.get_or_none(path("profiles", name))

    def profiles(self: _Api) -> list[dict[str, Any]]:
        """All profiles."""
        return self.get(path("profiles"), recursion=1) or []

    def put_profile(self: _Api, name: str, config: dict[str, str], devices: dict[str, Any],
                    description: str = "") -> None:
        """Create the profile, or replace its config and devices."""
        body = {"config": config, "devices": devices, "description": description}
        if self.profile(name) is None:
            self.call("POST", path("profiles"), body={"name": name, **body})
        else:
            self.call("PUT", path("profiles", name), body=body)

    def delete_profile(self: _Api, name: str) -> None:
        """Delete a profile."""
        self.call("DELETE", path("profiles", name))

    def storage_pool(self: _Api, name: str) -> dict[str, Any] | None:
        """A storage pool's record, or None."""
        return self.get_or_none(path("storage-pools", name))

    def storage_pools(self: _Api) -> list[dict[str, Any]]:
        """All storage pools."""
        return self.get(path("storage-pools"), recursion=1) or []

    def storage_volumes(self: _Api, pool: str) -> list[dict[str, Any]]:
        """All volumes of a pool."""
        return self.get(path("storage-pools", pool, "volumes"), recursion=1) or []

    def create_volume(self: _Api, pool: str, name: str, config: dict[str, str]) -> None:
        """Create a custom storage volume."""
        self.call("POST", path("storage-pools", pool, "volumes", "custom"), body={"name": name, "config": config})

    def update_volume(self: _Api, pool: str, name: str, config: dict[str, str]) -> None:
        """Set config keys of a custom storage volume."""
        self.call("PATCH", path("storage-pools", pool, "volumes", "custom", name), body={"config": config})

    def delete_volume(self: _Api, pool: str, name: str) -> None:
        """Delete a custom storage volume (`down --volumes`)."""
        self.call("DELETE", path("storage-pools", pool, "volumes", "custom", name))

    def projects(self: _Api) -> list[str]:
        """Names of the daemon's projects."""
        return [name_of_url(p) for p in self.call("GET", path("projects")) or []]

    def instance_records(self: _Api) -> list[dict[str, Any]]:
        """Every instance's record without its state (recursion=1): one cheap request."""
        return self.get(path("instances"), recursion=1) or []

    def host_resources(self: _Api, target: str | None = None) -> dict[str, Any]:
        """GET /1.0/resources (CPU, memory...) of the server, or of one cluster member."""
        return self.get(path("resources"), **({"target": target} if target else {})) or {}
