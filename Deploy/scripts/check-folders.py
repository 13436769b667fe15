#!/usr/bin/env python3
"""The layout rules every service follows, checked from the sources (no build needed).

1. No folder cycles: within a service, folder A uses folder B when a file in A names a type
   declared in B. The graph of folders must have no cycle (files at the service's top level,
   main.swift and the configuration, are the composition root: they may use any folder, and
   a folder that uses them is a cycle too).
2. SQL only under Storage/: no other file of a service holds a SQL statement.

Usage: check-folders.py [services-dir]    exit 1 and the offending folders/files when a rule breaks.
"""
import os
import re
import sys

DECL = re.compile(r"^(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|internal|private|fileprivate|package|final|indirect|nonisolated)\s+)*"
                  r"(?:struct|class|enum|actor|protocol|typealias)\s+([A-Z]\w*)", re.M)
IDENT = re.compile(r"\b([A-Z]\w*)\b")
# Only top-level declarations (column 0): a nested type (`Outcome`, `CodingKeys`) is named through its outer one.
# Statements as Orchard writes them: a SQL keyword at the start of a string literal or of a line in a
# multi-line literal, followed by what only SQL has after it.
SQL = re.compile(r'(?:"|^\s*)(SELECT\s+[\w*(\\]|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|WITH\s+\w+\s+AS\s*\(|'
                 r'CREATE\s+(?:TABLE|INDEX|UNIQUE)|ALTER\s+TABLE\s)', re.M)


def strip_comments_and_strings(text, keep_strings=False):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    if not keep_strings:
        text = re.sub(r'"""(.*?)"""', ' ', text, flags=re.S)
        text = re.sub(r'"(?:\\.|[^"\\\n])*"', ' ', text)
    return text


def folder_of(service_dir, path):
    rel = os.path.relpath(path, service_dir).split(os.sep)
    return rel[0] if len(rel) > 1 else "(root)"


def swift_files(service_dir):
    for base, _, files in os.walk(service_dir):
        for name in sorted(files):
            if name.endswith(".swift"):
                yield os.path.join(base, name)


def find_cycles(graph):
    """Tarjan's strongly connected components; returns those with more than one folder."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def check_service(service_dir):
    problems = []
    declared = {}  # type name -> folder
    sources = {}
    for path in swift_files(service_dir):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        sources[path] = text
        for name in DECL.findall(strip_comments_and_strings(text)):
            declared.setdefault(name, set()).add(folder_of(service_dir, path))
    graph, why = {}, {}
    for path, text in sources.items():
        folder = folder_of(service_dir, path)
        graph.setdefault(folder, set())
        code = strip_comments_and_strings(text)
        for name in set(IDENT.findall(code)):
            for target in declared.get(name, ()):
                if target != folder:
                    graph[folder].add(target)
                    why.setdefault((folder, target), (os.path.relpath(path), name))
        for match in SQL.finditer(strip_comments_and_strings(text, keep_strings=True)):
            if folder != "Storage":
                line = text[:match.start()].count("\n") + 1
                problems.append(f"SQL outside Storage/: {os.path.relpath(path)}:{line}: {match.group(1).strip()}")
    for cycle in find_cycles(graph):
        edges = [f"{a} -> {b} ({why[(a, b)][0]} names {why[(a, b)][1]})"
                 for a in cycle for b in cycle if (a, b) in why]
        problems.append(f"folder cycle in {os.path.relpath(service_dir)}: {' , '.join(cycle)}\n    " + "\n    ".join(edges))
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "Services")
    if not os.path.isdir(root):
        print(f"check-folders: no services folder {root}")
        return 2
    problems = []
    for name in sorted(os.listdir(root)):
        service_dir = os.path.join(root, name)
        if os.path.isdir(service_dir):
            problems += check_service(service_dir)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-folders: {len(problems)} problem(s)")
        return 1
    print("check-folders: no folder cycles, no SQL outside Storage/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
