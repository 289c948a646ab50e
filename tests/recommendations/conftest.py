"""Fixtures shared by the engine's and the services' recommendation tests."""

import pytest

from recommendations.engine.cold_slots import ColdSlots


@pytest.fixture
def cold_choices(monkeypatch) -> list[int]:
    """Every call of the cold stage's choice (``ColdSlots.choose``, which still runs), recorded as
    the number of rows it chose for: for tests that a choice is made once, not once per use."""
    calls: list[int] = []
    choose = ColdSlots.choose

    def counted(self, histories, seen):
        calls.append(len(histories))
        return choose(self, histories, seen)

    monkeypatch.setattr(ColdSlots, "choose", counted)
    return calls
