"""Low-level kernels on numpy float32 arrays."""
import numpy as np

from ._lib import lib
from ._arrays import f32, fptr
from .errors import InvalidArgument, check

ACTIVATIONS = {None: 0, "none": 0, "gelu": 1, "gelu_tanh": 2, "tanh": 3, "relu": 4}


def _act(name):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise InvalidArgument(f"unknown activation {name!r}; expected one of {sorted(k for k in ACTIVATIONS if k)}")


def sgemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None, bias=None, activation=None,
          residual=None):
    """act(alpha * op(a) @ op(b) + beta * c + bias) + residual, as a new float32 array.

    op(x) is x.T when trans_x is set (pass a PyTorch Linear weight [out, in] with trans_b=True).
    """
    a = f32(a, "a"); b = f32(b, "b")
    if a.ndim != 2 or b.ndim != 2:
        raise InvalidArgument(f"a and b must be 2-D, got {a.shape} and {b.shape}")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise InvalidArgument(f"inner dimensions differ: op(a) is {m}x{k}, op(b) is {kb}x{n}")
    # Without c there is nothing to scale (beta is taken as 0) and the library writes every
    # element, so out need not be zeroed: np.empty reuses freed heap memory where np.zeros maps
    # fresh pages that then fault inside the GEMM (10 % of a 1568x384->1152 product at 2 threads
    # on Sapphire Rapids).
    out = np.empty((m, n), np.float32) if c is None else f32(c, "c").copy()
    if c is None:
        beta = 0.0
    if out.shape != (m, n):
        raise InvalidArgument(f"c must be {m}x{n}, got {out.shape}")
    if bias is not None:
        bias = f32(bias, "bias")
        if bias.shape != (n,):
            raise InvalidArgument(f"bias must have shape ({n},), got {bias.shape}")
    if residual is not None:
        residual = f32(residual, "residual")
        if residual.shape != (m, n):
            raise InvalidArgument(f"residual must be {m}x{n}, got {residual.shape}")
    check(lib.vidattn_sgemm_fused(int(trans_a), int(trans_b), m, n, k, alpha, fptr(a), a.shape[1],
                                  fptr(b), b.shape[1], beta, fptr(out), n, fptr(bias), _act(activation),
                                  fptr(residual), n))
    return out


def softmax(x, *, scale=1.0, bias=None):
    """Row softmax over the last axis of softmax(scale * x + bias)."""
    x = f32(x, "x").copy()
    cols = x.shape[-1] if x.ndim else 1
    rows = x.size // max(cols, 1)
    ldb = 0
    if bias is not None:
        bias = f32(bias, "bias")
        if bias.shape == (cols,):
            ldb = 0
        elif bias.shape == x.shape:
            ldb = cols
        else:
            raise InvalidArgument(f"bias must have shape {x.shape} or ({cols},), got {bias.shape}")
    check(lib.vidattn_softmax(rows, cols, fptr(x), cols, scale, fptr(bias), ldb))
    return x


def layer_norm(x, gamma=None, beta=None, eps=1e-5):
    """LayerNorm over the last axis (biased variance)."""
    x = f32(x, "x")
    cols = x.shape[-1]
    y = np.empty_like(x)
    g = None if gamma is None else f32(gamma, "gamma")
    b = None if beta is None else f32(beta, "beta")
    for name, t in (("gamma", g), ("beta", b)):
        if t is not None and t.shape != (cols,):
            raise InvalidArgument(f"{name} must have shape ({cols},), got {t.shape}")
    check(lib.vidattn_layer_norm(x.size // max(cols, 1), cols, fptr(x), fptr(y), fptr(g), fptr(b), eps))
    return y


def activation(x, kind):
    """Elementwise 'gelu', 'gelu_tanh', 'tanh' or 'relu'."""
    x = f32(x, "x")
    y = np.empty_like(x)
    check(lib.vidattn_activation_apply(_act(kind), fptr(x), fptr(y), x.size))
    return y
