"""The result record and what travels with it: record (+ JSON schema), check results, record
sets, and the published values with the per-run comparison (references + published.yaml).

Writers (run machinery, use cases) and readers (report, gate, studies) meet here and only
here: a consumer reads records through ``record.load_record`` and ``sets``, never through
another consumer. Imports errors, paths and numbers only.
"""
