"""Mixed precision (``initializer.precision``): a bit width per quantizer.

Framework-neutral: :mod:`.ids` (quantizer names in ``bitwidth_per_scope``), :mod:`.inventory` (the
quantizers' sizes and the two compression ratios), :mod:`.hawq` and :mod:`.autoq` (the choices, on
numbers a backend measured), :mod:`.hutchinson` (averaging Hessian-trace draws) and :mod:`.controller`
(the controllers' shared part, quantization noise included). The backends draw Hessian traces,
fake-quantize weights and run the user's metric.
"""
