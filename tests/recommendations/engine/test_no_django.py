"""recommendations.engine is the pure ML core: it must never import Django."""

import json
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


# Run in a clean interpreter: walk every module under recommendations.engine, import it, and name the
# module that first pulled in Django or an app (crm, campaigns, recommendations outside the engine).
WALK = r"""
import json, pkgutil, sys
import recommendations.engine as engine

def forbidden(name):
    top = name.split(".")[0]
    if top in ("django", "crm", "campaigns", "rest_framework", "celery"):
        return True
    return top == "recommendations" and name not in ("recommendations", "recommendations.engine") and not (
        name.startswith("recommendations.engine."))

seen, offenders, modules = set(sys.modules), {}, []
for info in pkgutil.walk_packages(engine.__path__, prefix="recommendations.engine."):
    modules.append(info.name)
    try:
        __import__(info.name)
    except Exception as exc:  # e.g. a Django model imported without settings
        offenders[info.name] = [f"import failed: {exc!r}"[:300]]
    new = [m for m in set(sys.modules) - seen if forbidden(m)]
    if new:
        offenders[info.name] = sorted(new)[:5]
    seen = set(sys.modules)
print(json.dumps({"modules": modules, "offenders": offenders}))
"""


def test_no_engine_module_imports_django_or_an_app():
    done = subprocess.run(
        [sys.executable, "-c", WALK], check=True, cwd=ENGINE.parents[1], capture_output=True, text=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    on_disk = {
        ".".join(p.relative_to(ENGINE.parents[1]).with_suffix("").parts).removesuffix(".__init__")
        for p in ENGINE.rglob("*.py")
    } - {"recommendations.engine"}
    assert on_disk <= set(report["modules"]), f"not walked: {sorted(on_disk - set(report['modules']))}"
    assert report["offenders"] == {}
