"""Datasets: download, verify, mirror, cache, and load onto a device."""
from factorlab.data.errors import DataError
from factorlab.data.fetch import RemoteFile, fetch, file_md5
from factorlab.data.loader import DeviceLoader
from factorlab.data.mnist import MNISTData, load_mnist, mnist_files
from factorlab.data.qm9 import TARGETS, QM9Batch, QM9Data, QM9Loader, load_qm9
from factorlab.data.cifar10 import CIFAR10Data, load_cifar10

__all__ = ["DataError", "DeviceLoader", "MNISTData", "QM9Batch", "QM9Data", "QM9Loader", "RemoteFile", "TARGETS",
           "fetch", "file_md5", "load_mnist", "load_qm9", "mnist_files"]
__all__ += ["CIFAR10Data", "load_cifar10"]
