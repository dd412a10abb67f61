"""Training, evaluation and export of signcam's sign classifier (needs the ``train`` extra)."""
