"""Per-view additions to the Content-Security-Policy set in ``crm/settings.py`` (django-csp).

The site-wide policy allows no inline script or style. One kind of page needs more: the admin's
e-mail previews show a message in ``<iframe sandbox srcdoc=...>``, and a srcdoc document inherits
the policy of the page around it, so the e-mail's inline styles and remote (sometimes plain http)
images would be blocked. ``email_preview_csp`` allows exactly those on that page; scripts stay
blocked twice over (the policy, and ``sandbox`` without ``allow-scripts``).
"""
from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update

EMAIL_PREVIEW_CSP = {"style-src": [UNSAFE_INLINE], "img-src": ["http:"]}

email_preview_csp = csp_update(EMAIL_PREVIEW_CSP)
