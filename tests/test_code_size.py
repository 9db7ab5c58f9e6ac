"""The package's functions stay short enough to read top to bottom."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "geossl"
#: Longest function allowed, in lines from its ``def`` to its last line (docstring included).
MAX_FUNCTION_LINES = 60


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "functions over 60 lines: " + ", ".join(long)
    assert sum(1 for _ in PACKAGE.rglob("*.py")) > 50  # the walk saw the package
