"""Pure: the package's layers and doors, enforced on every import statement in lxctool/.

Every `import` and `from ... import` counts: at module top, inside functions, and under
`if TYPE_CHECKING:`. So does every call that starts a process (os.system, os.exec*, ...).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lxctool"

# process starters, besides importing subprocess / pty / asyncio's subprocess functions
OS_PROCESS_CALLS = {"system", "popen", "posix_spawn", "posix_spawnp", "fork", "forkpty", "execl", "execle",
                    "execlp", "execlpe", "execv", "execve", "execvp", "execvpe", "spawnl", "spawnle",
                    "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"}
ASYNCIO_PROCESS_CALLS = {"create_subprocess_exec", "create_subprocess_shell"}
PROCESS_MODULES = {"subprocess", "pty", "multiprocessing", "concurrent.futures.process",
                   "concurrent.futures.ProcessPoolExecutor"}
# talking HTTP (to LXD or anything else) or to a unix socket: the LXD door's business
REST_MODULES = {"http.client", "urllib.request", "requests", "pylxd", "ws4py", "websocket", "aiohttp",
                "httpx", "urllib3"}
# modules outside lxd/ that speak HTTP to something that is NOT LXD, and why
REST_ELSEWHERE = {"lxctool.observe.monitor": "pushes samples to InfluxDB's HTTP API (urllib.request)",
                  "lxctool.dashboard.inventory": "probes a stack's HTTP health checks in its containers"}
MAX_TOP_LEVEL_MODULES = 8
# where an LXD record keeps a value is lxd/views.py's knowledge: these keys are read nowhere else
RECORD_KEYS = {"expanded_config", "expanded_devices", "used_by", "host_name"}
HEAVY = ("pylxd", "psutil", "tabulate", "yaml", "matplotlib", "jsonschema", "jinja2", "numpy",
         "cryptography", "starlette", "uvicorn")


@dataclass(frozen=True)
class Import:
    """One import statement, resolved to absolute module names."""

    module: str        # the importing module, e.g. lxctool.net.check
    target: str        # what it imports, e.g. lxctool.lxd.client or subprocess
    line: int


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        out[module_name(path)] = (path, ast.parse(path.read_text(), str(path)))
    return out


def imports_of(module: str, path: Path, tree: ast.Module) -> list[Import]:
    """Every import statement anywhere in the file (functions, TYPE_CHECKING blocks included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(module, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(Import(module, mod, node.lineno))
            # `from lxctool.host import run` imports the submodule lxctool.host.run
            out += [Import(module, f"{mod}.{a.name}", node.lineno) for a in node.names]
    return out


def all_imports() -> list[Import]:
    return [imp for mod, (path, tree) in sources().items() for imp in imports_of(mod, path, tree)]


def internal_graph() -> dict[str, set[str]]:
    """lxctool module -> the lxctool modules it imports (packages' __init__ edges left out)."""
    mods = set(sources())
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for imp in all_imports():
        if imp.target in mods and imp.target != imp.module and not _is_ancestor(imp.target, imp.module):
            graph[imp.module].add(imp.target)
    return graph


def _is_ancestor(package: str, module: str) -> bool:
    # importing a module first runs its packages' __init__ files; that is not a dependency edge
    return module.startswith(package + ".")


def in_layer(module: str, layer: str) -> bool:
    return module == f"lxctool.{layer}" or module.startswith(f"lxctool.{layer}.")


def top(target: str) -> str:
    return target.split(".")[0]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def process_calls(module: str, tree: ast.Module) -> list[str]:
    """os.system(...)/os.exec*/os.spawn*/posix_spawn and asyncio.create_subprocess_* uses."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner == "os" and node.attr in OS_PROCESS_CALLS:
                found.append(f"{module}:{node.lineno}: os.{node.attr}")
            if owner == "asyncio" and node.attr in ASYNCIO_PROCESS_CALLS:
                found.append(f"{module}:{node.lineno}: asyncio.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "asyncio"):
            for a in node.names:
                if a.name in OS_PROCESS_CALLS | ASYNCIO_PROCESS_CALLS:
                    found.append(f"{module}:{node.lineno}: from {node.module} import {a.name}")
    return found


# -- the assertions -----------------------------------------------------------------------------
def test_the_walker_sees_imports_inside_functions_and_type_checking() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import subprocess\n"
                     "def f():\n    from . import run\n    import os\n    os.system('x')\n")
    targets = {i.target for i in imports_of("lxctool.host.x", PACKAGE / "host" / "x.py", tree)}
    assert {"subprocess", "lxctool.host.run", "os"} <= targets
    assert process_calls("m", tree) == ["m:7: os.system"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    assert find_cycles(internal_graph()) == []


def test_core_imports_only_core_and_the_standard_library() -> None:
    bad = [f"{i.module}:{i.line}: {i.target}" for i in all_imports() if in_layer(i.module, "core")
           and not (in_layer(i.target, "core") or i.target == "lxctool"
                    or top(i.target) in sys.stdlib_module_names)]
    assert bad == []


def test_only_host_run_starts_processes() -> None:
    bad = [f"{i.module}:{i.line}: import {i.target}" for i in all_imports()
           if i.module != "lxctool.host.run"
           and (i.target in PROCESS_MODULES or top(i.target) in PROCESS_MODULES
                or i.target in {f"asyncio.{c}" for c in ASYNCIO_PROCESS_CALLS}
                or i.target in {f"os.{c}" for c in OS_PROCESS_CALLS})]
    for mod, (_path, tree) in sources().items():
        if mod != "lxctool.host.run":
            bad += process_calls(mod, tree)
    assert bad == []


def test_only_lxd_speaks_rest() -> None:
    bad = [f"{i.module}:{i.line}: import {i.target}" for i in all_imports()
           if not in_layer(i.module, "lxd") and i.module not in REST_ELSEWHERE
           and (i.target in REST_MODULES or top(i.target) in REST_MODULES or i.target == "socket.AF_UNIX")]
    for mod, (_path, tree) in sources().items():
        if in_layer(mod, "lxd"):
            continue
        for node in ast.walk(tree):
            # a unix socket (LXD's) or an LXD API path outside the door
            if isinstance(node, ast.Attribute) and node.attr == "AF_UNIX":
                bad.append(f"{mod}:{node.lineno}: socket.AF_UNIX")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("/1.0"):
                bad.append(f"{mod}:{node.lineno}: LXD API path {node.value!r}")
    assert bad == []


def test_only_report_imports_tabulate_or_matplotlib() -> None:
    bad = [f"{i.module}:{i.line}: {i.target}" for i in all_imports()
           if top(i.target) in ("tabulate", "matplotlib") and not in_layer(i.module, "report")]
    assert bad == []


def test_only_measure_imports_psutil() -> None:
    bad = [f"{i.module}:{i.line}: {i.target}" for i in all_imports()
           if top(i.target) == "psutil" and i.module != "lxctool.observe.measure"]
    assert bad == []


def test_only_cli_imports_click() -> None:
    bad = [f"{i.module}:{i.line}: {i.target}" for i in all_imports()
           if top(i.target) == "click" and not in_layer(i.module, "cli")]
    assert bad == []


def test_few_plain_modules_at_the_top() -> None:
    plain = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(plain) <= MAX_TOP_LEVEL_MODULES, plain


def test_imports_inside_functions_say_why() -> None:
    """An import inside a function is deliberately lazy: a `# lazy: why` comment on it, or on an
    earlier line of the same function (one comment covers a group such as matplotlib's)."""
    bad = []
    for mod, (path, tree) in sources().items():
        lines = path.read_text().splitlines()
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    said = any("# lazy:" in ln for ln in lines[func.lineno - 1:node.end_lineno])
                    if not said:
                        bad.append(f"{mod}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert bad == []


def test_help_imports_no_heavy_module() -> None:
    code = ("import sys; from click.testing import CliRunner; from lxctool.cli import cli; "
            "CliRunner().invoke(cli, ['--help']); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_records_are_read_through_views() -> None:
    bad = []
    for mod, (_path, tree) in sources().items():
        if in_layer(mod, "lxd"):
            continue
        bad += [f"{mod}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and node.value in RECORD_KEYS]
    assert bad == []


def test_exit_code_3_is_raised_one_way() -> None:
    """A check that found a difference raises CheckFailed; nothing returns or exits with 3 itself."""
    bad = []
    for mod, (_path, tree) in sources().items():
        for node in ast.walk(tree):
            value = None
            if isinstance(node, ast.Return):
                value = node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "exit":
                value = node.args[0] if node.args else None
            if isinstance(value, ast.IfExp):
                value = value.body if isinstance(value.body, ast.Constant) and value.body.value == 3 else value.orelse
            if isinstance(value, ast.Constant) and value.value == 3 and mod.startswith("lxctool.cli"):
                bad.append(f"{mod}:{node.lineno}")
    assert bad == []
