"""Compute kernels below the architecture: convolution algorithms for XLA:CPU with their own gradients.

`conv.conv2d(x, w, stride, padding, algorithm)` is the one convolution the models call; `settings` says which
algorithms exist and is the one place environment variables can override the default ('auto').
`winograd` is the F(2x2,3x3) 3x3 convolution with its VJP. Nothing here knows about MAT.
"""
