"""Pieces shared by every use case: errors, devices, timing, records, references, manifests."""
