"""Data access shared by the use cases: manifests (url, size, sha256), fetch, the sha256 helper.

Each use case reads its own formats (``covid_ct/data``, ``colabfold_spike/fasta``); what is
downloaded and verified lives here. Imports errors, paths and numbers only.
"""
