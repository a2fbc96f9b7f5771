"""raykd: cluster-scale knowledge distillation on Ray.

Importing raykd starts nothing: Ray is only touched by the soft-target, train and tune packages.
"""

from raykd.lazy import lazy_exports

__version__ = "0.1.0"
__all__, __getattr__, __dir__ = lazy_exports(__name__, {"outputs": ["FeatureExtractor", "ModelOutput", "as_model_output"]})
__all__ += ["__version__"]
