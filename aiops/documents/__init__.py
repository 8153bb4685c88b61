"""The documents of an incident (narrative, brief, postmortem, comms, hypotheses) over HTTP and the
command line; ``llm`` writes them. Declared in ``feature.py``."""
