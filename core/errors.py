"""One exception family for bad input, raised where the input enters."""


class GradparityError(ValueError):
    """Bad input to gradparity: the message names the offending value in one line."""


class SpecError(GradparityError):
    """A network specification that cannot be built (unknown name, bad size)."""


class DataError(GradparityError):
    """A dataset or data file that cannot be used (shape, NaN, labels, format)."""


class ParamsError(GradparityError):
    """Parameters that do not fit the network (missing layer, wrong shape)."""
