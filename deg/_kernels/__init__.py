"""All numba kernels of deg live in this package (flat arrays in, flat arrays out).

Python validates every input; kernels trust it. After editing a kernel that others in another
file call, clear the cache (``make clean-cache``): numba does not track cross-file changes.
"""
