"""`make test` installs every program the tests and benchmarks drive, and nothing is skipped.

scripts/test-tools.txt is the one list scripts/test-tools.sh installs from; these tests read the
test and bench sources, so a new program a test calls fails here until it is on the list.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])
# Part of every machine that can run `make`; Python itself is always sys.executable (and
# "python3", named as the base image's command in the image test, is the project's own
# prerequisite, not a tool to install).
BASE_PROGRAMS = {"bash", "make", "python3"}
BIN_PATH = re.compile(r"/(usr/)?bin/[\w.+-]+")
PROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call", "spawn", "spawn_group"}


def listed_commands() -> set[str]:
    lines = (ROOT / "scripts" / "test-tools.txt").read_text().splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _program(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        return Path(node.value).name
    return None


def programs_called(path: Path) -> set[str]:
    """Programs named as constants in `shutil.which("x")`, `subprocess.run(["x", ...])` and
    the like, and absolute /usr/bin or /bin paths."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            if _name(node.func) == "which":
                found.add(_program(first))
            elif _name(node.func) in PROCESS_CALLS and isinstance(first, ast.List) and first.elts:
                found.add(_program(first.elts[0]))
        elif isinstance(node, ast.Constant) and BIN_PATH.fullmatch(str(node.value)):
            found.add(_program(node))
    return found - {None}


def test_the_tool_list_covers_every_program_the_tests_and_benchmarks_call():
    called = {
        program: path.relative_to(ROOT)
        for path in SOURCES
        for program in programs_called(path)
        if program not in BASE_PROGRAMS
    }
    missing = {p: str(where) for p, where in called.items() if p not in listed_commands()}
    assert not missing, f"add to scripts/test-tools.txt: {missing}"


def _is_skip(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        node = node.func
    return (
        isinstance(node, ast.Attribute)
        and node.attr in {"skip", "skipif", "importorskip"}
        and "pytest" in ast.unparse(node.value)
    )


def test_no_test_skips_itself():
    # A missing tool or service must fail the run, never thin it out unnoticed.
    skips = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if _is_skip(node)
    ]
    assert not skips
