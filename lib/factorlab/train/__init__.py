"""Training: devices and precision, seeding, and the classification loop."""
from factorlab.train.device import DeviceError, autocast, precision_name, resolve_device, synchronize
from factorlab.train.loop import FitResult, evaluate, fit_classifier
from factorlab.train.seed import seed_everything

__all__ = [
    "DeviceError", "FitResult", "autocast", "evaluate", "fit_classifier", "precision_name",
    "resolve_device", "seed_everything", "synchronize",
]
