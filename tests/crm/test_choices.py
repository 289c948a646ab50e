"""crm.choices.ValueLabelChoices: a member declared with a bare value is labelled with that value."""
from django.db import models

from crm.choices import ValueLabelChoices
from crm.models import Interaction


class Colour(ValueLabelChoices):
    DARK_RED = "dark_red"
    BLUE = "blue", "sky blue"


class DjangoColour(models.TextChoices):
    DARK_RED = "dark_red"


def test_bare_member_is_labelled_with_its_value():
    assert Colour.DARK_RED == "dark_red"
    assert Colour.DARK_RED.label == "dark_red"


def test_member_with_a_label_keeps_it():
    assert Colour.choices == [("dark_red", "dark_red"), ("blue", "sky blue")]


def test_django_textchoices_are_untouched():
    assert DjangoColour.DARK_RED.label == "Dark Red"


def test_model_choices_keep_their_stored_labels():
    assert Interaction.Kind.VIEW.label == "view"
    assert dict(Interaction.Kind.choices)["add_to_cart"] == "add to cart"
    assert Interaction.Source.API.label == "API"
