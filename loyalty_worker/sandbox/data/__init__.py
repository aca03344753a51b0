"""The sandbox's dataset: a deterministic, realistic set of dispensaries, and its loader.

A dataset is one JSON document::

    {
      "asOf": "YYYY-MM-DD",           # every timestamp lies before this day (UTC)
      "orgs": [
        {
          "orgId": "org-1",
          "name": "…",                 # shown as the Alleaves company
          "settings": {…},             # loyalty_settings/{orgId} as LOYALTY_RULES.md names the
                                       # fields: pointsPerDollar, equityMultiplier, tiers
                                       # [{id, name, threshold}], discrepancyThreshold,
                                       # sourceOfTruth, autoAdjust, timezone
          "alleaves": {"username", "password", "pin", "locationId"},
          "alpine": {"uid", "apiKey"},
          "customers": […],            # Alleaves customers exactly as /customer/search returns them
          "orders": […],               # flat Alleaves orders exactly as /order returns them,
                                       # newest first
          "alpineContacts": [          # Alpine IQ loyalty accounts of this org
            {"contactID", "phone" (10 digits), "firstName", "lastName", "points", "tier",
             "lastVisit"}
          ],
          "profiles": [                # Markitbot's customer profiles (customers/{orgId}_{id})
            {"customerId" (the Alleaves id_customer), "equityStatus" (may be absent),
             "firstName", "lastName", "email", "marketingOptIn", "notes"}
          ]
        }
      ]
    }

``generate_dataset`` builds one from a seed (``generate_sized_dataset``: each org's size given):
the same arguments give byte-identical JSON. The data is dirty on purpose, in the ways
EXTERNAL_APIS.md says the real systems are: phones in many formats or missing, walk-in "guest"
customers, statuses in any case, amounts as numbers or strings, null or missing discounts,
anonymous orders, placeholder e-mails, Alpine IQ balances that agree, nearly agree or disagree
with the orders. Each such case is dealt from a deck rather than
drawn independently, so even a small dataset holds every case at least once.

``records`` types each part of the document; ``document`` writes, reads and checks it; the
generator's modules (``deck``, ``customers``, ``orders``, ``contacts``, ``generate``) build it.
"""

from loyalty_worker.sandbox.data.document import (
    DatasetError,
    dump_dataset,
    load_dataset,
    validate_dataset,
)
from loyalty_worker.sandbox.data.generate import generate_dataset, generate_sized_dataset

__all__ = [
    "DatasetError",
    "dump_dataset",
    "generate_dataset",
    "generate_sized_dataset",
    "load_dataset",
    "validate_dataset",
]
