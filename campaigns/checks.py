"""System checks of the campaigns settings that would otherwise only fail when a send starts."""
from __future__ import annotations

from django.core.checks import Error, register

from .conf import campaigns_settings
from .services.throttle import rate_limits_parse


@register()
def campaigns_send_settings_check(app_configs=None, **kwargs) -> list:
    problems = []
    settings = campaigns_settings()
    try:
        rate_limits_parse(settings.SEND_RATE_LIMITS)
    except (ValueError, AttributeError, TypeError) as exc:
        problems.append(Error(
            str(exc) if isinstance(exc, ValueError) else "CAMPAIGNS['SEND_RATE_LIMITS'] must map domains to numbers.",
            hint='e.g. {"gmail.com googlemail.com": 50, "*": 500} (env CAMPAIGNS_SEND_RATE_LIMITS, JSON).',
            id="campaigns.E001",
        ))
    if not isinstance(settings.SEND_CLAIM_SIZE, int) or settings.SEND_CLAIM_SIZE < 1:
        problems.append(Error(
            f"CAMPAIGNS['SEND_CLAIM_SIZE'] must be a whole number >= 1; got {settings.SEND_CLAIM_SIZE!r}.",
            hint="1 claims one recipient per statement; 50 (the default) claims 50.", id="campaigns.E002",
        ))
    return problems
