"""loyalty_worker: keeps dispensary customers' loyalty points right.

Alleaves orders in, Alpine IQ reconciled, Markitbot's Firestore profiles out.
"""
