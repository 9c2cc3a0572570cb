"""The ``autograd`` backend's description, read by gradparity through the entry point
``gradparity.backends: autograd``; it imports no framework (``adapter`` does)."""

from gradparity.backends import BackendEntry
from gradparity_autograd.deviations import DEVIATIONS

BACKEND = BackendEntry("gradparity_autograd.adapter", requires=("autograd", "scipy"), seconds=5, role="framework",
                       deviations=DEVIATIONS)
