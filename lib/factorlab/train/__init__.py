"""Training: devices and precision, seeding, and the classification loop."""
from factorlab.train.device import DeviceError, autocast, precision_name, resolve_device, synchronize
from factorlab.train.loop import FitResult, evaluate, fit_classifier
from factorlab.train.seed import seed_everything
from factorlab.train.timing import median_time, time_forward_backward, time_inference

__all__ = [
    "DeviceError", "FitResult", "autocast", "evaluate", "fit_classifier", "precision_name",
    "median_time", "resolve_device", "seed_everything", "synchronize", "time_forward_backward", "time_inference",
]
