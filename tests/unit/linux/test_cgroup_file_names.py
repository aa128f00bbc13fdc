"""Only linux/cgroups/ names a cgroup control file: every other part of plugins/ goes through its interface
(ContainerCgroup.update, ParentCgroup, limit_support). Code strings are checked (f-string parts included);
docstrings, comments and a module's DOCUMENTATION/EXAMPLES/RETURN, which describe the files to a reader,
are not code that writes them."""

from __future__ import annotations

import ast
import pathlib
import re

PLUGINS = pathlib.Path(__file__).resolve().parents[3] / "plugins"
OWNER = PLUGINS / "module_utils" / "linux" / "cgroups"
_DOC_NAMES = {"DOCUMENTATION", "EXAMPLES", "RETURN"}

CONTROL_FILE = re.compile(
    r"(?<![\w.])("
    r"memory\.(limit_in_bytes|memsw\.limit_in_bytes|max|swap\.max|high|low|min|current|peak|stat|events"
    r"|oom_control|usage_in_bytes|max_usage_in_bytes)"
    r"|cpu\.(max|shares|weight|weight\.nice|cfs_quota_us|cfs_period_us|stat)"
    r"|cpuacct\.\w+|cpuset\.(cpus|mems)(\.effective)?|pids\.(max|current)"
    r"|cgroup\.(procs|threads|freeze|kill|controllers|subtree_control|events|type)"
    r"|freezer\.state|devices\.(allow|deny|list)|blkio\.\w+|io\.(stat|max|weight)"
    r")(?![\w.])")


def _doc_strings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings or module documentation blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in _DOC_NAMES
                                                for t in node.targets):
            skip.update(id(n) for n in ast.walk(node.value))
    return skip


def code_strings_naming_cgroup_files(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    skip = _doc_strings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            hits.extend((node.lineno, m.group(0)) for m in CONTROL_FILE.finditer(node.value))
    return sorted(hits)


def test_the_checker_sees_plain_and_f_strings_but_not_docs_or_method_names():
    source = ('"""memory.max in a docstring"""\nDOCUMENTATION = "cpu.max"\ncgroup.freeze()\n'
              'a = f"{d}/memory.limit_in_bytes"\nb = "pids.max"\nc = "cgroup.procs"\n')
    assert code_strings_naming_cgroup_files(source) == [(4, "memory.limit_in_bytes"), (5, "pids.max"),
                                                        (6, "cgroup.procs")]


def test_no_cgroup_file_name_outside_linux_cgroups():
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        if OWNER in path.parents:
            continue
        for line, name in code_strings_naming_cgroup_files(path.read_text()):
            offenders.append(f"{path.relative_to(PLUGINS)}:{line}: {name}")
    assert offenders == []


def test_linux_cgroups_is_where_they_are():
    # The check would pass vacuously if it looked nowhere: the owner does name them.
    names = {name for path in OWNER.glob("*.py") for _line, name in code_strings_naming_cgroup_files(path.read_text())}
    assert {"memory.limit_in_bytes", "memory.max", "cpu.max", "cpu.shares", "pids.max", "cgroup.procs"} <= names
