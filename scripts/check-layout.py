#!/usr/bin/env python3
"""Layout rules that rustc and clippy do not check (ARCHITECTURE.md):
- no import cycle between the files of a crate, any length, parent and child modules included
  (`use crate::...`, `super::...`, `self::...`, globs, and paths through a child module);
- no Rust file over MAX_LINES lines, anywhere in the tree (tests and benches included);
- the rollout core (sluice-rollout) depends on no Kubernetes client, async runtime or HTTP client.
Exits 1 naming each cycle, each long file and each forbidden dependency."""
import pathlib
import re
import subprocess
import sys

MAX_LINES = 400
# Files allowed over MAX_LINES, each with the reason: none today.
LONG_FILES_ALLOWED: dict[str, str] = {}
PURE_CRATE = "sluice-rollout"
FORBIDDEN = {"tokio", "hyper", "hyper-util", "reqwest", "kube-client", "kube-runtime", "tower", "axum"}
ROOT = pathlib.Path(__file__).resolve().parent.parent
SKIP = {"target", ".git", ".venv", ".run", "dist", "node_modules"}

COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
MOD_RE = re.compile(
    r'(?:#\[path\s*=\s*"([^"]+)"\]\s*)?(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;'
)
PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|(?=::\*))")
INLINE_MOD_RE = re.compile(r"\bmod\s+[a-z_][a-z0-9_]*\s*\{")


def without_inline_modules(text):
    """`text` without inline `mod name { ... }` blocks: their `super::` is this file itself."""
    while (m := INLINE_MOD_RE.search(text)) is not None:
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        text = text[: m.start()] + text[i + 1 :]
    return text
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def rust_files():
    for path in ROOT.rglob("*.rs"):
        if not SKIP.intersection(path.relative_to(ROOT).parts):
            yield path


def roots():
    """Every compilation root: lib.rs, main.rs and bins of each crate, each integration test."""
    for manifest in ROOT.rglob("Cargo.toml"):
        if SKIP.intersection(manifest.relative_to(ROOT).parts):
            continue
        crate = manifest.parent
        candidates = [crate / "src/lib.rs", crate / "src/main.rs"]
        candidates += sorted((crate / "src/bin").glob("*.rs"))
        candidates += sorted((crate / "tests").glob("*.rs"))
        candidates += sorted((crate / "tests").glob("*/main.rs"))
        yield from (c for c in candidates if c.exists())


def discover(root_file):
    """Module path -> file, following `mod x;` (and `#[path]`) from the root."""
    modules = {(): root_file}
    queue = [((), root_file, True)]
    while queue:
        path, file, owns_dir = queue.pop()
        text = COMMENT_RE.sub("", file.read_text())
        folder = file.parent if owns_dir or file.name == "mod.rs" else file.parent / file.stem
        for explicit, name in MOD_RE.findall(text):
            if explicit:
                child = file.parent / explicit
            else:
                child = next((c for c in (folder / f"{name}.rs", folder / name / "mod.rs") if c.exists()), None)
            if child is not None and child.exists():
                modules[path + (name,)] = child
                queue.append((path + (name,), child, False))
    return modules


def imports(text, module, modules):
    """The modules that `text` (the file of `module`) refers to. Comments do not count; a module's
    own `mod x;` declaration does not either, but any path through `x::` does."""
    text = without_inline_modules(COMMENT_RE.sub("", text))
    text_without_decls = MOD_RE.sub("", text)
    refs = []
    for child in (name for (_, name) in MOD_RE.findall(text)):
        if re.search(rf"(?<![A-Za-z0-9_:]){child}::", text_without_decls):
            refs.append(("self", [child]))
    for m in USE_GROUP_RE.finditer(text):
        base = m.group(2).split("::")[1:]
        for item in re.split(r"[,\s]+", m.group(3)):
            head = item.split("::")[0].strip()
            if head and head not in ("self", "*") and head[0].islower():
                refs.append((m.group(1), base + [head]))
            elif head:
                refs.append((m.group(1), base))
    for m in PATH_RE.finditer(text):
        refs.append((m.group(1), m.group(2).split("::")[1:]))
    found = set()
    for kind, path in refs:
        start = {"crate": [], "super": list(module[:-1]), "self": list(module)}[kind]
        full = tuple(start + path)
        # The deepest prefix that is a module file (the crate root included).
        for n in range(len(full), -1, -1):
            if full[:n] in modules:
                if full[:n] != module:
                    found.add(full[:n])
                break
    return found


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def forbidden_dependencies():
    """The forbidden crates among the pure core's normal dependencies, as `cargo tree` resolves them."""
    run = subprocess.run(
        ["cargo", "tree", "--locked", "-p", PURE_CRATE, "-e", "normal", "--prefix", "none"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if run.returncode != 0:
        return [f"cargo tree -p {PURE_CRATE} failed: {run.stderr.strip()[:300]}"]
    tree = run.stdout
    names = {line.split()[0] for line in tree.splitlines() if line.split()}
    return [f"{PURE_CRATE} depends on {name} (the core must not do I/O)" for name in sorted(names & FORBIDDEN)]


def main():
    problems = forbidden_dependencies()
    for file in sorted(rust_files()):
        rel = str(file.relative_to(ROOT))
        lines = file.read_text().count("\n")
        if lines > MAX_LINES and rel not in LONG_FILES_ALLOWED:
            problems.append(f"{rel}: {lines} lines (keep files under {MAX_LINES})")
    seen = set()
    for root in roots():
        modules = discover(root)
        graph = {m: imports(f.read_text(), m, modules) for m, f in modules.items()}
        for comp in cycles(graph):
            names = " <-> ".join(sorted(str(modules[m].relative_to(ROOT)) for m in comp))
            if names not in seen:
                seen.add(names)
                problems.append(f"import cycle: {names}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
