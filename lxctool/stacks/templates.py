"""Stack templates (Jinja2's sandbox) and `${VAR}` secrets.

`{{ services.db.ipv4 }}` is rendered by Jinja2's SandboxedEnvironment, so a stack file cannot
reach Python objects. `${VAR}` is filled afterwards from the environment, a `.env` file beside the
stack file, or (for names listed in `secrets:`) a value generated once and kept, mode 0600, in
STATE_DIR/NAME/secrets.env so a kept database still matches its password after `down`/`up`.
"""

from __future__ import annotations

import os
import re
import secrets as pysecrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
UNKNOWN = "(known after up)"
MASK = "***"


def state_dir() -> Path:
    """Where stacks keep generated secrets (LXCTOOL_STACK_STATE_DIR, for tests)."""
    return Path(os.environ.get("LXCTOOL_STACK_STATE_DIR", "/var/lib/lxctool/stacks"))


def _env():  # type: ignore[no-untyped-def]
    from jinja2 import StrictUndefined  # lazy: jinja2 costs ~50 ms; only stack commands render templates
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def syntax_error(text: str) -> str | None:
    """Why the template does not parse, or None."""
    from jinja2 import TemplateSyntaxError  # lazy: jinja2 costs ~50 ms; only stack commands render templates

    try:
        _env().parse(text)
    except TemplateSyntaxError as exc:
        return f"template error on line {exc.lineno}: {exc.message}"
    return None


def referenced_services(text: str, addresses_only: bool = False) -> set[str]:
    """Service names a template reads as services.X or services['X'] (only .ipv4/.ipv4s reads
    when addresses_only)."""
    from jinja2 import nodes  # lazy: jinja2 costs ~50 ms; only stack commands render templates

    try:
        ast = _env().parse(text)
    except Exception:  # noqa: BLE001 - syntax errors are reported by syntax_error
        return set()

    def service_of(node: Any) -> str | None:
        if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(node.node, nodes.Name) \
                and node.node.name == "services":
            if isinstance(node, nodes.Getattr):
                return str(node.attr)
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                return node.arg.value
        return None

    out: set[str] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if addresses_only:
            if isinstance(node, nodes.Getattr) and node.attr in ("ipv4", "ipv4s"):
                svc = service_of(node.node)
                if svc:
                    out.add(svc)
        else:
            svc = service_of(node)
            if svc:
                out.add(svc)
    return out


def variables(text: str) -> set[str]:
    """The ${VAR} names in text."""
    return set(VAR_RE.findall(text))


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render a template with the stack context ({'services': {...}}); ${VAR} left as written."""
    if "{{" not in text and "{%" not in text:
        return text  # most values are plain: skip the engine
    return str(_env().from_string(text).render(**context))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Fill ${VAR} from values (every name must be present: checked at load)."""
    return VAR_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass
class Secrets:
    """Values for ${VAR}: the environment, then .env, then generated ones; secret names masked."""

    values: dict[str, str] = field(default_factory=dict)
    secret_names: frozenset[str] = frozenset()
    generated: dict[str, str] = field(default_factory=dict)  # to store on `up`, never printed

    def mask(self, text: str) -> str:
        """text with every secret value replaced by ***."""
        for name in self.secret_names:
            value = self.values.get(name)
            if value:
                text = text.replace(value, MASK)
        return text


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments, blank lines and `export ` ignored; quotes stripped)."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def secrets_file(stack: str) -> Path:
    """STATE_DIR/STACK/secrets.env."""
    return state_dir() / stack / "secrets.env"


def resolve(stack: str, folder: Path, wanted: Iterable[str], secret_names: Iterable[str],
            errors: list[str]) -> Secrets:
    """Values for every ${VAR} used; a missing secret is generated (kept only by `store`)."""
    env_file = read_env_file(folder / ".env")
    stored = read_env_file(secrets_file(stack))
    names = frozenset(secret_names)
    out = Secrets(secret_names=names)
    for var in sorted(set(wanted) | names):
        if var in os.environ:
            out.values[var] = os.environ[var]
        elif var in env_file:
            out.values[var] = env_file[var]
        elif var in stored:
            out.values[var] = stored[var]
        elif var in names:
            out.values[var] = out.generated[var] = pysecrets.token_urlsafe(18)
        else:
            errors.append(f"${{{var}}}: not set; give it in the environment or in {folder / '.env'}, "
                          f"or list it under secrets: to have one generated")
    return out


def store(stack: str, sec: Secrets) -> None:
    """Keep generated secrets in secrets.env (0600), adding to what is there."""
    if not sec.generated:
        return
    path = secrets_file(stack)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept = read_env_file(path)
    kept.update(sec.generated)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# generated by lxctool for stack " + stack + "; keep while its volumes live\n")
        fh.writelines(f"{k}={v}\n" for k, v in sorted(kept.items()))
    os.chmod(path, 0o600)
    sec.generated.clear()


def forget(stack: str) -> None:
    """Remove the stack's secrets.env (`down --volumes`)."""
    path = secrets_file(stack)
    if path.exists():
        path.unlink()
    for folder in (path.parent, path.parent.parent):  # STATE/NAME, then STATE when it is empty
        try:
            folder.rmdir()
        except OSError:
            break
