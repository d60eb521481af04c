"""Invoices for Heron Analytics customers.

Invoices are due 30 days after they are issued. A customer who pays after the due date is charged a late
fee of 2 percent of the invoice total per started month of delay, capped at 10 percent.
"""

from dataclasses import dataclass
from datetime import date

LATE_FEE_PER_MONTH = 0.02
LATE_FEE_CAP = 0.10
PAYMENT_TERM_DAYS = 30


@dataclass
class Invoice:
    number: str
    issued: date
    total: float

    def due(self) -> date:
        """The due date: PAYMENT_TERM_DAYS after the issue date."""
        from datetime import timedelta

        return self.issued + timedelta(days=PAYMENT_TERM_DAYS)

    def late_fee(self, paid: date) -> float:
        """The penalty for paying late: 2 percent per started month, at most 10 percent of the total."""
        days_late = (paid - self.due()).days
        if days_late <= 0:
            return 0.0
        months = -(-days_late // 30)
        return round(self.total * min(LATE_FEE_CAP, months * LATE_FEE_PER_MONTH), 2)
