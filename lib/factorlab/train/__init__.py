"""Training: devices and precision, seeding, timing, and three loops named by what they train:

- :mod:`~factorlab.train.classifier`: image classifiers (:func:`fit_classifier`, the MNIST nets);
- :mod:`~factorlab.train.cifar_recipe`: the fast CIFAR-10 recipes, airbench's and ResNet-9's
  (:func:`fit_fast`);
- :mod:`~factorlab.train.qm9_regression`: QM9 graph networks, single-task, stacked or
  hard-shared (:func:`fit_regression`).
"""
from factorlab.seed import seed_everything
from factorlab.train.cifar_recipe import fit_fast
from factorlab.train.classifier import FitResult, evaluate, fit_classifier
from factorlab.train.device import DeviceError, autocast, precision_name, resolve_device, synchronize
from factorlab.train.qm9_regression import RegressionFit, evaluate_mae, fit_regression
from factorlab.train.timing import median_time, time_forward_backward, time_inference

__all__ = [
    "DeviceError", "FitResult", "RegressionFit", "autocast", "evaluate", "evaluate_mae", "fit_classifier",
    "fit_fast", "fit_regression", "precision_name",
    "median_time", "resolve_device", "seed_everything", "synchronize", "time_forward_backward", "time_inference",
]
