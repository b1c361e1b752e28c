"""A task that needs the heavy base layer (git, numpy-free here to stay small) plus its own code."""

import subprocess

import six

git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout.strip()
print(f"train: {git}, six {six.__version__}")
