"""Ray: connecting to a cluster, spreading jobs over it, and actors that run a model for a search.

Sits between the plugins and the core: it loads models by name in other processes and knows
nothing of searches or evaluations, which hand it picklable factories.
"""
