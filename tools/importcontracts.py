"""Two import-linter contract types the built-in ones do not cover (configured in .importlinter).

- no_private_names: no module imports an _underscored name from a module of another package.
- acyclic: no import cycle among the root package's modules, imports inside functions included.
"""

from __future__ import annotations

import re

from importlinter import Contract, ContractCheck, fields, output

_FROM = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+\(?([^)#]*)")


def _package(module: str) -> str:
    """The top package under the root: datacurate.clean.run -> datacurate.clean."""
    return ".".join(module.split(".")[:2])


class NoPrivateNamesContract(Contract):
    """No `from a.b import _name` across packages (the top packages under `root`)."""

    type_name = "no_private_names"
    root = fields.StringField()

    def check(self, graph, verbose: bool) -> ContractCheck:
        found = []
        for importer in sorted(m for m in graph.modules if m.startswith(self.root)):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if not imported.startswith(self.root) or _package(imported) == _package(importer):
                    continue
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    match = _FROM.match(detail["line_contents"])
                    names = [n.split(" as ")[0].strip() for n in match.group(2).split(",")] if match else []
                    private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                    private += [p for p in imported.split(".") if p.startswith("_") and not p.startswith("__")]
                    if private:
                        found.append(f"{importer}:{detail['line_number']} imports {', '.join(private)} "
                                     f"from {imported}")
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["found"]:
            output.print_error(line, bold=False)
            output.new_line()


class AcyclicContract(Contract):
    """No cycles in the module import graph under `root` (a lazy import to break a cycle is still a cycle)."""

    type_name = "acyclic"
    root = fields.StringField()

    def check(self, graph, verbose: bool) -> ContractCheck:
        modules = sorted(m for m in graph.modules if m.startswith(self.root))
        edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.startswith(self.root))
                 for m in modules}
        cycles = [sorted(c) for c in strongly_connected(edges) if len(c) > 1]
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for group in check.metadata["cycles"]:
            output.print_error(f"import cycle among {len(group)} modules: {', '.join(group)}", bold=False)
            output.new_line()


def strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (the graph's cycles are the groups of 2+)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups
