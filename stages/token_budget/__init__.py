"""The ``token_budget`` stage: never over the window, never a budget that cannot fit (``stage``)."""

from stages.token_budget.stage import TokenBudget

__all__ = ["TokenBudget"]
