"""Mixed precision (``initializer.precision``): a bit width per quantizer.

Framework-neutral: :mod:`.ids` (quantizer names in ``bitwidth_per_scope``), :mod:`.inventory` (the
quantizers' sizes and the two compression ratios), :mod:`.hawq` and :mod:`.autoq` (the choices, on
numbers a backend measured) and :mod:`.controller` (the controllers' shared part). The backends measure
Hessian traces, quantization noise and the user's metric.
"""
