"""The metric suite of ``decam evaluate``: each judges a saliency map by what the model does when the
map's pixels are removed, and each names what "removed" means (the substrate).

- :mod:`~decam.evaluation.metrics.curves`: insertion / deletion AUC and DiffAUC (RISE), named substrates,
  the RISE reference code's by default.
- :mod:`~decam.evaluation.metrics.fidelity`: MuFidelity (Bhatt et al., 2020).
- :mod:`~decam.evaluation.metrics.road`: ROAD MoRF / LeRF (Rong et al., 2022), through pytorch-grad-cam.
- :mod:`~decam.evaluation.metrics.sanity`: cascading model randomization and the random-class test
  (Adebayo et al., 2018).
- :mod:`~decam.evaluation.metrics.stability`: spread of maps and DiffAUC over seeds.
- :mod:`~decam.evaluation.metrics.suite`: which of them a run computes, and their report columns.

Libraries: ROAD's imputation is pytorch-grad-cam's (MIT, already a dependency). Quantus 0.6 ships
MuFidelity ("FaithfulnessCorrelation"), ROAD and MPRT too, but it is LGPL-3.0, its ``torch`` extra pins
old torch on some Pythons, and it queries the model itself on numpy batches, outside decam's one batched,
counted forward path. MuFidelity and the randomization checks are short enough to write here against the
papers and xplique's code, and are tested against known answers; Quantus stays out, not even as an extra.
"""

from decam.evaluation.metrics.curves import (DEFAULT_NORMALIZATION, N_STEPS, REFERENCE_DELETION, REFERENCE_INSERTION,
                                             CurveScores, auc, insertion_deletion, resolve_normalization, step_size)
from decam.evaluation.metrics.fidelity import mu_fidelity
from decam.evaluation.metrics.road import PERCENTILES, RoadScores, road
from decam.evaluation.metrics.sanity import (cascading_randomization, other_class, random_class_test, randomize,
                                             randomized_model, spearman, stage_names, units)
from decam.evaluation.metrics.stability import StabilityScores, stability

__all__ = ["DEFAULT_NORMALIZATION", "N_STEPS", "PERCENTILES", "REFERENCE_DELETION", "REFERENCE_INSERTION",
           "CurveScores", "RoadScores", "StabilityScores", "auc", "cascading_randomization", "insertion_deletion",
           "mu_fidelity", "other_class", "random_class_test", "randomize", "randomized_model", "resolve_normalization",
           "road", "spearman", "stability", "stage_names", "step_size", "units"]
