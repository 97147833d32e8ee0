"""Explanation methods decam is compared with, one module per family, registered in ``METHODS``.

Importing this package registers the built-in methods (entry-point group ``decam.methods`` does
the same lazily); decam itself joins from ``decam.workflows.decam_method``.
"""

from decam.evaluation.methods.base import METHODS, Budget, Fill, Method, PositiveInt, Score, create_method
from decam.evaluation.methods.cam import AblationCAM, FullGrad, GradCAM, GradCAMPlusPlus
from decam.evaluation.methods.captum_methods import IntegratedGradients, Lime
from decam.evaluation.methods.controls import GaussianMap, RandomMap
from decam.evaluation.methods.hsic import Hsic
from decam.evaluation.methods.kernelshap import KernelShap
from decam.evaluation.methods.occlusion import Occlusion
from decam.evaluation.methods.rise import Rise
from decam.evaluation.methods.shap_partition import ShapPartition
from decam.evaluation.methods.sobol import Sobol

__all__ = ["METHODS", "Budget", "Fill", "Method", "PositiveInt", "Score", "create_method", "AblationCAM", "FullGrad",
           "GradCAM", "GradCAMPlusPlus", "Hsic", "IntegratedGradients", "KernelShap", "Lime", "GaussianMap",
           "Occlusion", "RandomMap", "Rise", "ShapPartition", "Sobol"]
