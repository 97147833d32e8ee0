"""One explanation: the fitness problem, the search loop, the aggregators and the Explainer that wires them.

Core layer: uses the plugins (encodings, models, searchers through the registry) and never
writes files, prints or logs to MLflow.
"""
