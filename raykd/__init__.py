"""raykd: cluster-scale knowledge distillation on Ray.

Importing raykd starts nothing: Ray is only touched by the soft-target, train and tune packages.
"""

from raykd.outputs import FeatureExtractor, ModelOutput, as_model_output

__version__ = "0.1.0"
__all__ = ["FeatureExtractor", "ModelOutput", "as_model_output", "__version__"]
