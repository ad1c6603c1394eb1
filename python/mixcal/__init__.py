"""mixcal from Python: a coordinator's calibration sweeps as pandas
DataFrames and NumPy arrays.

    import mixcal
    c = mixcal.Client()          # $MIXCAL_ADDRESS, $MIXCAL_TOKEN / $MIXCAL_TOKEN_FILE, $MIXCAL_TLS_CA
    c.sweeps()                   # DataFrame: sweep, name, state, ...
    df = c.metrics(1)            # every epoch row with every metric
    c.summary(1, vs="baseline")  # mean, std, paired 95% intervals
    probs, labels = c.predictions(job=3)

Errors are mixcal.MixcalError subclasses (NotFound, InvalidArgument,
PermissionDenied, Unauthenticated, Unavailable, ...), never raw gRPC errors.
The generated protocol messages are in mixcal.v1.
"""

from mixcal.client import Client
from mixcal.errors import (FailedPrecondition, InvalidArgument, MixcalError,
                           NotFound, PermissionDenied, ResourceExhausted,
                           Unauthenticated, Unavailable)

__all__ = ["Client", "MixcalError", "NotFound", "InvalidArgument",
           "PermissionDenied", "Unauthenticated", "Unavailable",
           "FailedPrecondition", "ResourceExhausted"]
__version__ = "0.1.0"
