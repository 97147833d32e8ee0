"""The public test kit: oracle black boxes with known evidence, and conformance checks for plugins.

``check_encoding`` / ``check_searcher`` check a plugin's contract; the oracles
(:class:`SquareOracle`, :class:`BoxOracle`, ...) are black boxes whose evidence region is known, for
tests that a search finds it.
"""

from decam.testing.conformance import check_encoding, check_searcher, extreme_genomes, oracle_problem
from decam.testing.oracles import (DEFAULT_REGION, BoxesOracle, BoxOracle, EvidenceOracle, SquareOracle, box_mask,
                                   evidence_image, oracle_image, region_mask, top_share)

__all__ = ["DEFAULT_REGION", "BoxesOracle", "BoxOracle", "EvidenceOracle", "evidence_image", "SquareOracle", "box_mask", "check_encoding", "check_searcher",
           "extreme_genomes", "oracle_image", "oracle_problem", "region_mask", "top_share"]
