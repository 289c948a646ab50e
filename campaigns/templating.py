"""The campaign template language: Jinja2 in a sandbox, on plain values only.

Campaign templates come from the API (a ``write`` key) and the admin, so they are hostile. They
render in Jinja2's ``ImmutableSandboxedEnvironment`` with:

- a context of plain values built for one message (strings, numbers, lists of dicts): never a model
  instance, a manager or a queryset, so there is nothing to traverse to other customers;
- no calls except ``loop.cycle``/``loop.changed`` and ``dict.get``/``items``/``keys``/``values``
  (no ``str`` methods: ``"x".ljust(10**9)`` would exhaust memory);
- an allow-list of filters and tests; no ``include``/``import``/``extends``/``macro``/``call``/
  ``autoescape``/``filter`` blocks nor block ``set`` (a loader that refuses every name backs this
  up); at most three nested loops, none recursive;
- HTML autoescaping on for the HTML part (the text and subject parts are plain text);
- limits: 100 KB of template source, 1,000,000 characters of output, 100,000 loop iterations per
  render, no string or list over 100,000 elements (``*``, ``+``, ``~`` and every filter are
  checked), no number over 4,096 bits, no ``%`` string formatting.

This module has no model imports: the model's field validators and the render service both use it.
"""
from __future__ import annotations

import operator
from contextvars import ContextVar
from functools import lru_cache, wraps
from typing import Any

from django.core.exceptions import ValidationError
from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.filters import FILTERS
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.tests import TESTS
from jinja2.visitor import NodeTransformer

PARTS = ("subject", "html", "text")
MAX_TEMPLATE_BYTES = 100_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_LOOP_DEPTH = 3
MAX_SEQUENCE = 100_000  # the longest string or list an operator or a filter may build
MAX_EXPONENT = 64
MAX_INT_BITS = 4096
MAX_LOOP_ITERATIONS = 100_000  # all loops of one render together

_LOOP_BUDGET: ContextVar[list[int] | None] = ContextVar("campaign_template_loop_budget", default=None)

ALLOWED_FILTERS = (
    "abs", "batch", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
    "int", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "reverse",
    "round", "select", "selectattr", "sort", "string", "striptags", "sum", "title", "trim", "truncate", "unique",
    "upper", "urlencode", "wordcount",
)
ALLOWED_TESTS = (
    "defined", "undefined", "none", "number", "string", "sequence", "mapping", "even", "odd", "divisibleby",
    "eq", "ne", "lt", "le", "gt", "ge", "in", "true", "false", "boolean", "integer", "float", "lower", "upper",
)
FORBIDDEN_NODES = {
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
    # Block forms render into a buffer the output limit cannot see while it grows:
    nodes.AssignBlock: "{% set %}...{% endset %} (use {% set name = value %})",
    nodes.FilterBlock: "{% filter %} (use a filter on the value: {{ value|upper }})",
    nodes.EvalContextModifier: "an extension tag",
}


class CampaignTemplateError(ValueError):
    """A campaign template is invalid or failed to render; the message names the part and the problem."""

    def __init__(self, part: str, message: str):
        self.part = part
        super().__init__(f"{part} template: {message}")


def capfirst(value: Any) -> str:
    """Django's ``capfirst``: the first character upper-cased, the rest untouched."""
    text = str(value or "")
    return text[:1].upper() + text[1:]


def pluralize(value: Any, suffix: str = "s") -> str:
    """Django's ``pluralize``: ``"s"`` unless the number (or length) is 1; ``"y,ies"`` gives both forms."""
    singular, _, plural = suffix.rpartition(",") if "," in suffix else ("", "", suffix)
    try:
        count = len(value) if isinstance(value, list | tuple | dict) else float(value)
    except (TypeError, ValueError):
        return ""
    return singular if count == 1 else plural


def truncatechars(value: Any, length: int) -> str:
    """Django's ``truncatechars``: at most ``length`` characters, ending with an ellipsis when cut."""
    text = str(value or "")
    length = int(length)
    return text if len(text) <= length else text[: max(length - 1, 0)] + "…"


class _RefusingLoader(BaseLoader):
    """No template can load another: ``include``/``import``/``extends`` have nothing to reach."""

    def get_source(self, environment, template):
        raise TemplateNotFound(template)


def _too_big(value: Any) -> bool:
    return isinstance(value, str | list | tuple) and len(value) > MAX_SEQUENCE


def _bounded(value: Any) -> Any:
    """Wraps every ``a ~ b`` (injected by ``_Guards``): a string built by concatenation stays small."""
    if _too_big(value):
        raise SecurityError(f"~ would build more than {MAX_SEQUENCE:,} characters")
    return value


def _iterations(value: Any):
    """Wraps every ``{% for %}``'s iterable (injected by ``_Guards``): one budget for all loops of a render."""
    budget = _LOOP_BUDGET.get()
    for element in value:
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                raise SecurityError(f"loops run more than {MAX_LOOP_ITERATIONS:,} iterations")
        yield element


def _guarded(name: str, func):
    """A filter whose result may not exceed ``MAX_SEQUENCE`` (``|urlencode`` repeated grows 3x each time)."""

    @wraps(func)  # keeps jinja_pass_arg (pass_context, pass_eval_context, ...)
    def guarded(*args, **kwargs):
        result = func(*args, **kwargs)
        if _too_big(result):
            raise SecurityError(f"|{name} would build more than {MAX_SEQUENCE:,} elements")
        return result

    return guarded


class _Guards(NodeTransformer):
    """Rewrites the parsed template: loops draw from the iteration budget, ``~`` is size-checked."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_iterations", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        node = self.generic_visit(node)
        return nodes.Filter(node, "_bounded", [], [], None, None, lineno=node.lineno)


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _CampaignSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``item.title`` on a plain dict (what every context value is): the key, looked up directly.
        Jinja tries the attribute first and catches the ``AttributeError``, ~90 times a message;
        for a plain dict that attempt can only find a ``dict`` attribute, so a name that is none
        (not ``items``, ``get``...) gives the same result this way. Those names take Jinja's path."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def is_safe_callable(self, obj: Any) -> bool:
        owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
        if isinstance(owner, LoopContext):
            return name in ("cycle", "changed")
        if isinstance(owner, dict):
            return name in ("get", "items", "keys", "values")
        return False

    def call_binop(self, context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "%" and isinstance(left, str):
            raise SecurityError("the % string formatting operator is not available")
        both_ints = isinstance(left, int) and isinstance(right, int)
        if operator_name == "**" and isinstance(right, int | float) and (
            abs(right) > MAX_EXPONENT or (isinstance(left, int) and left.bit_length() * abs(right) > MAX_INT_BITS)
        ):
            raise SecurityError(f"** would build a number over {MAX_INT_BITS:,} bits")
        if operator_name == "*":
            if both_ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError(f"* would build a number over {MAX_INT_BITS:,} bits")
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_SEQUENCE:
                    raise SecurityError(f"* would build more than {MAX_SEQUENCE:,} elements")
        ops = {"+": operator.add, "*": operator.mul, "**": operator.pow, "%": operator.mod}
        result = ops[operator_name](left, right)
        if _too_big(result):
            raise SecurityError(f"{operator_name} would build more than {MAX_SEQUENCE:,} elements")
        return result


def _environment(*, autoescape: bool) -> _CampaignSandbox:
    env = _CampaignSandbox(autoescape=autoescape, loader=_RefusingLoader(), undefined=StrictUndefined,
                           keep_trailing_newline=False)
    filters = {name: FILTERS[name] for name in ALLOWED_FILTERS}
    filters.update(capfirst=capfirst, pluralize=pluralize, truncatechars=truncatechars)
    env.filters = {name: _guarded(name, func) for name, func in filters.items()}
    env.filters.update(_iterations=_iterations, _bounded=_bounded)
    env.tests = {name: TESTS[name] for name in ALLOWED_TESTS}
    env.globals = {}
    return env


_HTML_ENV = _environment(autoescape=True)
_TEXT_ENV = _environment(autoescape=False)


def _env_for(part: str) -> _CampaignSandbox:
    return _HTML_ENV if part == "html" else _TEXT_ENV


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    deepest = depth
    for child in node.iter_child_nodes():
        deepest = max(deepest, _loop_depth(child, depth + isinstance(child, nodes.For)))
    return deepest


def _check_tree(part: str, tree: nodes.Template) -> None:
    for node_type, label in FORBIDDEN_NODES.items():
        found = next(tree.find_all(node_type), None)
        if found is not None:
            raise CampaignTemplateError(part, f"line {found.lineno}: {label} is not allowed in campaign templates")
    allowed = sorted(name for name in _env_for(part).filters if not name.startswith("_"))
    for node in tree.find_all(nodes.Filter):
        if node.name not in allowed:
            raise CampaignTemplateError(
                part, f"line {node.lineno}: unknown filter {node.name!r} (allowed: {', '.join(allowed)})"
            )
    env = _env_for(part)
    for node in tree.find_all(nodes.Test):
        if node.name not in env.tests:
            raise CampaignTemplateError(part, f"line {node.lineno}: unknown test {node.name!r}")
    recursive = next((node for node in tree.find_all(nodes.For) if node.recursive), None)
    if recursive is not None:
        raise CampaignTemplateError(part, f"line {recursive.lineno}: recursive loops are not allowed")
    if _loop_depth(tree) > MAX_LOOP_DEPTH:
        raise CampaignTemplateError(part, f"loops nest deeper than {MAX_LOOP_DEPTH} levels")


@lru_cache(maxsize=128)
def compile_template(source: str, part: str):
    """Parse, check and compile one part's template (cached: a send renders it thousands of times)."""
    if part not in PARTS:
        raise ValueError(f"Unknown template part {part!r}: one of {', '.join(PARTS)}.")
    size = len(source.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        raise CampaignTemplateError(part, f"is {size:,} bytes; the limit is {MAX_TEMPLATE_BYTES:,}")
    env = _env_for(part)
    try:
        tree = env.parse(source)
    except JinjaTemplateError as exc:
        raise CampaignTemplateError(part, _describe(exc)) from exc
    _check_tree(part, tree)
    tree = _Guards().visit(tree)
    tree.set_environment(env)
    try:
        return env.from_string(tree)
    except JinjaTemplateError as exc:
        raise CampaignTemplateError(part, _describe(exc)) from exc


def _describe(exc: Exception) -> str:
    line = getattr(exc, "lineno", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"line {line}: {message}" if line else message


def render_source(*, source: str, part: str, context: dict[str, Any]) -> str:
    """Render one part on ``context`` (plain values); every failure is a ``CampaignTemplateError``."""
    template = compile_template(source, part)
    chunks, size = [], 0
    budget = _LOOP_BUDGET.set([MAX_LOOP_ITERATIONS])
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise CampaignTemplateError(part, f"renders more than {MAX_OUTPUT_CHARS:,} characters")
            chunks.append(chunk)
    except CampaignTemplateError:
        raise
    except RecursionError as exc:
        raise CampaignTemplateError(part, "nests too deeply") from exc
    except Exception as exc:  # noqa: BLE001 - anything a hostile template triggers is its own error
        raise CampaignTemplateError(part, _describe(exc)) from exc
    finally:
        _LOOP_BUDGET.reset(budget)
    return "".join(chunks)


def sample_context() -> dict[str, Any]:
    """What validation renders against: the same keys and shapes as a real message's context."""
    items = [
        {"title": "Trail running shoes", "url": "https://shop.example.com/p/1", "rank": 1, "category": "shoes",
         "image_url": "https://shop.example.com/i/1.jpg", "price": "129.00", "currency": "EUR",
         "reason": "because you viewed hiking boots", "click_url": "https://crm.example.com/t/c/sample-1/"},
        {"title": "Merino beanie", "url": "https://shop.example.com/p/2", "rank": 2, "category": "hats",
         "image_url": "", "price": "", "currency": "EUR", "reason": "",
         "click_url": "https://crm.example.com/t/c/sample-2/"},
    ]
    return message_context(
        first_name="Ada", last_name="Lovelace", campaign_name="Sample campaign", items=items,
        open_url="https://crm.example.com/t/o/sample/", unsubscribe_url="https://crm.example.com/t/u/sample/",
    )


def message_context(*, first_name: str, last_name: str, campaign_name: str, items: list[dict[str, Any]],
                    open_url: str, unsubscribe_url: str) -> dict[str, Any]:
    """The whole vocabulary of a campaign template (documented in docs/campaigns.md)."""
    name = f"{first_name} {last_name}".strip()
    return {
        "first_name": first_name,
        "last_name": last_name,
        "name": name,
        "customer": {"first_name": first_name, "last_name": last_name, "name": name},
        "campaign": {"name": campaign_name},
        "items": items,
        "open_url": open_url,
        "unsubscribe_url": unsubscribe_url,
    }


def template_validate(*, source: str, part: str) -> None:
    """Compile and render against a sample message; raises ``CampaignTemplateError`` naming the problem."""
    if source.strip():
        render_source(source=source, part=part, context=sample_context())


def _validate(value: str, part: str) -> None:
    try:
        template_validate(source=value or "", part=part)
    except CampaignTemplateError as exc:
        raise ValidationError(str(exc), code="invalid_template") from exc


def validate_subject_template(value: str) -> None:
    """Model/form validator of ``Campaign.subject_template``."""
    _validate(value, "subject")


def validate_html_template(value: str) -> None:
    """Model/form validator of ``Campaign.html_template``."""
    _validate(value, "html")


def validate_text_template(value: str) -> None:
    """Model/form validator of ``Campaign.text_template``."""
    _validate(value, "text")
