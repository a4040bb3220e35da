"""Training: devices and precision, seeding, the classification loop and the QM9 regression loop."""
from factorlab.seed import seed_everything
from factorlab.train.device import DeviceError, autocast, precision_name, resolve_device, synchronize
from factorlab.train.loop import FitResult, evaluate, fit_classifier
from factorlab.train.regression import RegressionFit, evaluate_mae, fit_regression
from factorlab.train.timing import median_time, time_forward_backward, time_inference

__all__ = [
    "DeviceError", "FitResult", "RegressionFit", "autocast", "evaluate", "evaluate_mae", "fit_classifier",
    "fit_regression", "precision_name",
    "median_time", "resolve_device", "seed_everything", "synchronize", "time_forward_backward", "time_inference",
]
