"""Choices for model fields, declared once: ``DRAFT = "draft"`` rather than ``DRAFT = "draft", "draft"``."""
from __future__ import annotations

from django.db import models
from django.db.models.enums import ChoicesType


class _ValueLabelType(ChoicesType):
    """Gives a member declared with a bare value that value as its label, before Django reads it."""

    def __new__(metacls, classname, bases, classdict, **kwds):
        for key in classdict._member_names:
            value = classdict[key]
            if isinstance(value, str):
                # As Django's own ChoicesType does: bypass the enum dict's guard against reassignment.
                dict.__setitem__(classdict, key, (value, value))
        return super().__new__(metacls, classname, bases, classdict, **kwds)


class ValueLabelChoices(models.TextChoices, metaclass=_ValueLabelType):
    """``TextChoices`` whose members are labelled with their value unless a label is given.

    Django would label a bare ``DRAFT = "draft"`` "Draft" (the member name, title-cased); most of
    our labels are the lower-case value itself, which this spares writing twice. Members with a
    label of their own (``SENT = "sent", "sent (delivered)"``) keep it.
    """
