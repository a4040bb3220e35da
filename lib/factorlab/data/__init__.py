"""Datasets: download, verify, mirror, cache, and load onto a device."""
from factorlab.data.errors import DataError
from factorlab.data.fetch import RemoteFile, fetch, file_md5
from factorlab.data.loader import DeviceLoader
from factorlab.data.mnist import MNISTData, load_mnist, mnist_files

__all__ = ["DataError", "DeviceLoader", "MNISTData", "RemoteFile", "fetch", "file_md5", "load_mnist", "mnist_files"]
