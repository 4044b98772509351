"""The wheel carries native code (libvidattn.so, libsleef, the CLI): mark it platform-specific."""
from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(distclass=BinaryDistribution)
