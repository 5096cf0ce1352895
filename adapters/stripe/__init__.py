"""Stripe billing into contract v1: ``adapt_stripe(source, landing, mapping) -> AdaptResult``.

See ``adapters/stripe/adapter.py`` for the steps and ``docs/adapters.md`` for the rules.
"""

from adapters.stripe.adapter import adapt_stripe
from adapters.stripe.mapping import StripeMapping

__all__ = ["StripeMapping", "adapt_stripe"]
