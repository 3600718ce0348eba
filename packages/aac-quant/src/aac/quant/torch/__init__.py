"""The PyTorch implementation of ``quantization``: :mod:`.algorithm` (the controller and its
``create`` factory) and :mod:`.quantizers` (the fake quantizers and their QDQ export form)."""
