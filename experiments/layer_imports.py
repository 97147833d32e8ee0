"""How many modules import each decam package (imports inside functions included): python experiments/layer_imports.py"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    counts: Counter[str] = Counter()
    for path in sorted([*(ROOT / "decam").rglob("*.py"), *(ROOT / "strategies").rglob("*.py")]):
        parts = path.relative_to(ROOT).parts
        own = parts[1].removesuffix(".py") if parts[0] == "decam" and len(parts) > 2 else path.stem
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            imported |= {n.split(".")[1] for n in names if n.startswith("decam.")}
        counts.update(imported - {own})
    for layer, n in counts.most_common():
        print(f"{layer:<12}{n}")


if __name__ == "__main__":
    main()
