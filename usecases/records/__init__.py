"""The result record and what travels with it: record (+ JSON schema), check results, record
sets, and the published values with the per-run comparison (references + published.yaml).

Writers (run machinery, use cases) and readers (report, gate, studies) meet here and only
here: a consumer reads records through ``record.load_record`` and ``sets``, never through
another consumer. ``identity`` names what makes a run the same run (code and config sha256).
Imports errors, paths, numbers and the one sha256 helper (data.checksums) only.
"""
