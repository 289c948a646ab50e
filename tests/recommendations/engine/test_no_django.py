"""recommendations.engine is the pure ML core: it must never import Django."""

import re
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[3] / "recommendations" / "engine"


def test_engine_source_never_mentions_django_imports():
    pattern = re.compile(r"^\s*(import|from)\s+django\b", re.MULTILINE)
    offenders = [str(p) for p in ENGINE.rglob("*.py") if pattern.search(p.read_text())]
    assert ENGINE.is_dir() and not offenders


def test_engine_imports_without_django_loaded():
    code = (
        "import sys; import recommendations.engine.train, recommendations.engine.text, "
        "recommendations.engine.synthetic; assert 'django' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ENGINE.parents[1])
