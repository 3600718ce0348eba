"""The teacher: an uncompressed copy of the model being compressed, taken when the controller is built.

Algorithms listed before ``knowledge_distillation`` in the config have already changed the model when
its factory runs. aac's algorithms change a torch model in only two ways, both undone here on a copy:

* weight transforms (:mod:`aac.torch.transforms`: pruning and sparsity masks, weight quantizers), which
  leave the stored weights as they were, so dropping them gives the weights back;
* modules and hooks of aac's own classes (quantization's input quantizers and the pre-hooks that call
  them).

The copy's parameters do not require gradients and it is not a submodule of the model: the user's
``parameters()``, ``state_dict()`` and optimizer never see it.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from aac.torch.transforms import WeightTransform, remove_transforms

#: the namespace of what aac attaches to a model (a user's own hooks and modules are kept)
_AAC = "aac."


def uncompressed_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` without any aac compression, for computing targets (no gradients)."""
    teacher = copy.deepcopy(model)
    for owner in {m.owner for m in teacher.modules() if isinstance(m, WeightTransform)}:
        remove_transforms(teacher, owner)
    for module in list(teacher.modules()):
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for key in [key for key, hook in hooks.items() if _is_aac(hook)]:
                del hooks[key]
        for name in [name for name, child in module.named_children() if _is_aac(child)]:
            delattr(module, name)
    return teacher.requires_grad_(False)


def _is_aac(obj: Any) -> bool:
    return type(obj).__module__.startswith(_AAC)
