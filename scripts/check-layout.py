#!/usr/bin/env python3
"""Layout rules that rustc and clippy do not check (ARCHITECTURE.md):
- no import cycle between the files of a crate (`use crate::...` / `super::...`, any length);
- no source file over MAX_LINES lines;
- the rollout core (sluice-rollout) depends on no Kubernetes client, async runtime or HTTP client.
Exits 1 naming each cycle, each long file and each forbidden dependency."""
import pathlib
import re
import subprocess
import sys

MAX_LINES = 450
PURE_CRATE = "sluice-rollout"
FORBIDDEN = {"tokio", "hyper", "hyper-util", "reqwest", "kube-client", "kube-runtime", "tower", "axum"}
ROOT = pathlib.Path(__file__).resolve().parent.parent
PATH_RE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_of(root_dir, file):
    """`src/kube/stores.rs` -> ("kube", "stores"); `src/kube/mod.rs` -> ("kube",); lib.rs -> ()."""
    parts = list(file.relative_to(root_dir).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def targets(root_dir):
    """Each compilation root directory: src/ and every integration test (a file or a folder)."""
    for crate in ROOT.iterdir():
        if (crate / "Cargo.toml").exists():
            if (crate / "src").is_dir():
                yield crate / "src", sorted((crate / "src").rglob("*.rs"))
            tests = crate / "tests"
            if tests.is_dir():
                for entry in tests.iterdir():
                    if entry.is_dir() and (entry / "main.rs").exists():
                        yield entry, sorted(entry.rglob("*.rs"))


COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
CHILD_RE = re.compile(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)


def imports(text, module, modules):
    """The modules of this crate that `text` (the file of `module`) refers to: `crate::` and `super::`
    paths, and paths through its own child modules (`child::item`). Comments do not count."""
    text = COMMENT_RE.sub("", text)
    found = set()
    refs = []
    for child in CHILD_RE.findall(text):
        if re.search(rf"(?<![A-Za-z0-9_:]){child}::", text):
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
    for kind, path in refs:
        start = {"crate": [], "super": list(module[:-1]), "self": list(module)}[kind]
        full = tuple(start + path)
        # The deepest prefix that is a module file.
        for n in range(len(full), 0, -1):
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
    tree = subprocess.run(
        ["cargo", "tree", "--locked", "-p", PURE_CRATE, "-e", "normal", "--prefix", "none"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    found = sorted({line.split()[0] for line in tree.splitlines() if line.split()[:1] and line.split()[0] in FORBIDDEN})
    return [f"{PURE_CRATE} depends on {name} (the core must not do I/O)" for name in found]


def main():
    problems = forbidden_dependencies()
    for root_dir, files in targets(ROOT):
        modules = {module_of(root_dir, f): f for f in files}
        graph = {}
        for module, file in modules.items():
            text = file.read_text()
            lines = text.count("\n")
            if lines > MAX_LINES:
                problems.append(f"{file.relative_to(ROOT)}: {lines} lines (keep files under ~400)")
            graph[module] = imports(text, module, modules)
        for comp in cycles(graph):
            names = " <-> ".join(str(modules[m].relative_to(ROOT)) for m in sorted(comp))
            problems.append(f"import cycle: {names}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
