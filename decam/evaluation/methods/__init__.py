"""Explanation methods decam is compared with, one module per family, registered in ``METHODS``.

Importing this package registers the built-in methods (entry-point group ``decam.methods`` does
the same lazily); decam itself joins from ``decam.workflows.decam_method``.
"""

from decam.evaluation.methods.base import METHODS, Method, PositiveInt, create_method
from decam.evaluation.methods.cam import AblationCAM, FullGrad, GradCAM, GradCAMPlusPlus
from decam.evaluation.methods.captum_methods import IntegratedGradients, Lime
from decam.evaluation.methods.controls import GaussianMap, RandomMap
from decam.evaluation.methods.rise import Rise

__all__ = ["METHODS", "Method", "PositiveInt", "create_method", "AblationCAM", "FullGrad", "GradCAM",
           "GradCAMPlusPlus", "IntegratedGradients", "Lime", "GaussianMap", "RandomMap", "Rise"]
