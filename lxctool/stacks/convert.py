"""A converted compose file as stack-file YAML, with a comment on every key not carried over as it was."""

from __future__ import annotations

from typing import Any

from lxctool.stacks.compose import Note


def stack_yaml(stack: dict[str, Any], notes: list[Note], source: str) -> str:
    """The stack dict as YAML; each note becomes a comment under its service (or at the top)."""
    import yaml  # lazy: only convert and up -f need YAML

    by_service: dict[str, list[Note]] = {}
    top: list[Note] = []
    for note in notes:
        parts = note.path.split(".")
        if parts[0] == "services" and len(parts) > 1 and parts[1] in stack.get("services", {}):
            by_service.setdefault(parts[1], []).append(note)
        else:
            top.append(note)
    lines = [f"# lxctool stack converted from {source}"]
    lines += [f"# lxctool: {n.line()}" for n in top]
    in_services = False
    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # a compose file's <<: merges shared objects: write each out in full

    for line in yaml.dump(stack, Dumper=Dumper, sort_keys=False, default_flow_style=False).splitlines():
        lines.append(line)
        if not line.startswith(" "):
            in_services = line == "services:"
        elif in_services and line.startswith("  ") and not line.startswith("   ") and line.endswith(":"):
            for note in by_service.get(line.strip()[:-1], []):
                lines.append(f"    # lxctool: {note.line()}")
    return "\n".join(lines) + "\n"
