"""Every curl example in docs/api.md runs against the test server with the status it promises."""
import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from recommendations.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def _examples() -> list[tuple[int, list[str]]]:
    examples = []
    for block in BLOCK.findall(DOC.read_text()):
        expect = int(re.search(r"# expect: (\d{3})", block).group(1))
        command = re.sub(r"^#.*\n", "", block, flags=re.M).replace("\\\n", " ")
        examples.append((expect, shlex.split(command)))
    return examples


def _parse(argv: list[str]) -> tuple[str, str, dict[str, str], str | None]:
    assert argv[0] == "curl"
    method, url, headers, data = "GET", None, {}, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, value = next(args).split(": ", 1)
            headers[name] = value
        elif arg == "-d":
            data = next(args)
            method = "POST" if method == "GET" else method
        else:
            url = arg
    return method, url, headers, data


def test_docs_have_an_example_for_every_endpoint():
    urls = {re.sub(r"\?.*", "", _parse(argv)[1]) for _, argv in _examples()}
    for path in ["customers", "customers/bulk", "items", "items/bulk", "interactions", "interactions/bulk",
                 "feedback", "model-versions", "training-runs"]:
        assert f"http://localhost:8000/api/v1/{path}" in urls, path
    assert len(_examples()) >= 20


def test_curl_examples_run_as_documented(client, make_client, monkeypatch):
    from recommendations.services import training

    raw_key = make_client("admin").raw_key
    version = ModelVersion.objects.create(algorithm="ease", status=ModelVersion.Status.READY)
    monkeypatch.setattr(training, "training_run_enqueue", lambda **kw: TrainingRun.objects.create(task_id="t-1"))
    variables = {"KEY": raw_key, "VERSION_ID": str(version.pk)}
    for expect, argv in _examples():
        method, url, headers, data = _parse(argv)
        variables.setdefault("RUN_ID", str(TrainingRun.objects.order_by("-id").values_list("id", flat=True).first()))
        url = re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], url)
        extra = {f"HTTP_{k.upper().replace('-', '_')}": re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], v)
                 for k, v in headers.items() if k != "Content-Type"}
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if data is not None:
            json.loads(data)  # the example's body is valid JSON
        response = client.generic(method, path, data=data or "", content_type=headers.get("Content-Type", ""),
                                  **extra)
        assert response.status_code == expect, (method, url, response.content[:500])
        if url.endswith("/training-runs") and method == "POST":
            variables["RUN_ID"] = str(response.json()["id"])
