"""Alert triage: intake, classification, correlation, records, enrichment (runbooks with ``tfidf``,
routing, briefs), the pipeline of one app, its store and API; ``runbooks/`` ships samples. Declared in
``feature.py``."""
