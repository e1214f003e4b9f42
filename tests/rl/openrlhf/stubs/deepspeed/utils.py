"""Stand-in for ``deepspeed.utils`` (ZeRO-3 leaf modules only matter under ZeRO-3)."""


def set_z3_leaf_modules(model, leaf_module_classes):
    raise NotImplementedError("deepspeed.utils.set_z3_leaf_modules is a test stand-in")
