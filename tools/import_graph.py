"""Draw and check the import graph of `keras_autalk`, file by file and folder by folder.

Every `import` and `from ... import` of the package is read from the source
(module level and inside functions alike, without importing anything), and

- the folder graph is printed: for each folder (room), the rooms it imports;
- each room's imports are checked against `ALLOWED` (what it may import);
- import circles between files are listed (function-level imports count);
- files over `MAX_FILE_LINES` non-blank lines and rooms over
  `MAX_ROOM_SHARE` of the package's non-blank lines are listed.

Usage:
    python tools/import_graph.py            # the graph and the checks; exit 1 on a breach
    python tools/import_graph.py --dot      # the folder graph in Graphviz dot

`tests/test_layout.py` runs the same checks.
"""

import argparse
import ast
import collections
import pathlib
import sys

PACKAGE = "keras_autalk"
ROOT = pathlib.Path(__file__).resolve().parents[1] / PACKAGE
# 800 before `ruff format` (one argument a line where a call is wrapped) grew every file by
# about 8 %: the same code, the same limit in statements.
MAX_FILE_LINES = 900
MAX_ROOM_SHARE = 0.30

# The shared ground every room may import: the package root's own modules.
SHARED = "shared"
# room -> the rooms it may import (besides itself and the shared ground).
# The order is the direction of imports, bottom to top.
ALLOWED = {
    SHARED: set(),
    "layers": set(),
    "models": {"layers"},
    "media": set(),
    "features": {"media"},
    "corpora": {"media"},
    "presets": {"models", "layers"},
    "datasets": {"corpora", "features", "media"},
    "inference": {"presets", "models", "features", "media"},
    "training": {"datasets", "presets", "models", "layers", "features", "media"},
    "export": {"inference", "presets", "models", "features"},
    "evaluation": {
        "inference",
        "training",
        "datasets",
        "corpora",
        "presets",
        "models",
        "features",
        "media",
    },
    "commands": {
        "evaluation",
        "export",
        "training",
        "inference",
        "datasets",
        "corpora",
        "presets",
        "models",
        "features",
        "media",
    },
    "cli": {"commands"},
}
# Third-party packages a room must never import, even inside a function.
FORBIDDEN_LIBRARIES = {"media": {"tensorflow", "keras", "tensorflow_io"}}


def module_name(path):
    """`keras_autalk/media/face.py` -> `keras_autalk.media.face`."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module):
    """The room (folder) of a module: `keras_autalk.media.face` -> `media`."""
    parts = module.split(".")
    if len(parts) == 1:
        return SHARED
    if (ROOT / parts[1]).is_dir():
        return parts[1]
    return "cli" if parts[1] in ("cli", "__main__") else SHARED


def _resolve(node, module, is_package):
    """The absolute module named by an ImportFrom node."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def read_imports(path, modules):
    """`(package modules imported, third-party top-level names)` of one file."""
    module = module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    internal, external = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                if target.split(".")[0] == PACKAGE:
                    internal.add(target)
                else:
                    external.add(target.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, path.name == "__init__.py")
            if target.split(".")[0] != PACKAGE:
                external.add(target.split(".")[0])
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}"
                internal.add(child if child in modules else target)
    internal.discard(module)
    return internal, external


def build_graph():
    """`(files, imports, libraries, lines)`: every module's path, package imports,
    third-party imports and non-blank line count."""
    files = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}
    imports, libraries, lines = {}, {}, {}
    for module, path in files.items():
        imports[module], libraries[module] = read_imports(path, files)
        imports[module] = {name for name in imports[module] if name in files}
        lines[module] = sum(1 for line in path.read_text().splitlines() if line.strip())
    return files, imports, libraries, lines


def find_cycles(imports):
    """Strongly connected groups of more than one module (Tarjan), each sorted.

    A package's `__init__` importing its own submodules is not a circle.
    """
    edges = {
        module: {target for target in targets if not (module + ".").startswith(target + ".")}
        for module, targets in imports.items()
    }
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    sys.setrecursionlimit(10000)
    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def room_graph(imports):
    """room -> {room it imports: [(importer, imported), ...]}."""
    graph = collections.defaultdict(lambda: collections.defaultdict(list))
    for module, targets in imports.items():
        for target in targets:
            source_room, target_room = room_of(module), room_of(target)
            if source_room != target_room:
                graph[source_room][target_room].append((module, target))
    return graph


def check(files, imports, libraries, lines):
    """Every breach of the layout rules, one sentence each."""
    problems = []
    for source_room, targets in sorted(room_graph(imports).items()):
        allowed = ALLOWED.get(source_room, set()) | {SHARED}
        for target_room, pairs in sorted(targets.items()):
            if target_room not in allowed:
                for module, target in pairs:
                    problems.append(
                        f"{module} ({source_room}) imports {target} "
                        f"({target_room}), which {source_room} may not import."
                    )
    for module, names in sorted(libraries.items()):
        forbidden = FORBIDDEN_LIBRARIES.get(room_of(module), set()) & names
        for name in sorted(forbidden):
            problems.append(f"{module} imports {name}, which {room_of(module)} may not import.")
    for cycle in find_cycles(imports):
        problems.append("import circle: " + " <-> ".join(cycle))
    for module, count in sorted(lines.items()):
        if count > MAX_FILE_LINES:
            problems.append(
                f"{files[module]} has {count} non-blank lines (more than {MAX_FILE_LINES})."
            )
    total = sum(lines.values())
    for room, count in sorted(room_lines(lines).items()):
        if count > MAX_ROOM_SHARE * total:
            problems.append(
                f"the {room} folder holds {count / total:.0%} of the package "
                f"(more than {MAX_ROOM_SHARE:.0%})."
            )
    return problems


def room_lines(lines):
    """Non-blank lines per room."""
    counts = collections.Counter()
    for module, count in lines.items():
        counts[room_of(module)] += count
    return counts


def print_report(files, imports, lines, out=sys.stdout):
    total = sum(lines.values())
    counts = room_lines(lines)
    graph = room_graph(imports)
    print(f"{'room':<11} {'lines':>6} {'share':>6}  imports", file=out)
    for room in ALLOWED:
        if room not in counts:
            continue
        print(
            f"{room:<11} {counts[room]:>6} {counts[room] / total:>6.1%}  "
            f"{', '.join(sorted(graph.get(room, {}))) or '-'}",
            file=out,
        )
    largest = max(lines, key=lines.get)
    print(
        f"\n{len(files)} modules, {total} non-blank lines; largest file "
        f"{files[largest].relative_to(ROOT.parent)} ({lines[largest]} lines)",
        file=out,
    )


def print_dot(imports, out=sys.stdout):
    print("digraph keras_autalk {", file=out)
    for source, targets in sorted(room_graph(imports).items()):
        for target in sorted(targets):
            print(f'  "{source}" -> "{target}";', file=out)
    print("}", file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dot", action="store_true", help="print the folder graph as dot")
    args = parser.parse_args(argv)
    files, imports, libraries, lines = build_graph()
    if args.dot:
        print_dot(imports)
        return 0
    print_report(files, imports, lines)
    problems = check(files, imports, libraries, lines)
    for problem in problems:
        print(f"BREACH: {problem}")
    print("layout: " + ("ok" if not problems else f"{len(problems)} breaches"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
