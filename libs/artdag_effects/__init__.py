"""artdag's effects: the effect contract, the registry of installed effects, bindings and runners.

Effects are plain synchronous numpy code, installed as packages and found through
the `artdag.effects` entry-point group; uploaded code is never executed. Workers
call `make_frame_processor`; planners and gateways call `validate_effect_config`.
"""

from artdag_effects.binding import Binding, evaluate_binding
from artdag_effects.processor import FrameProcessor, make_frame_processor, validate_effect_config
from artdag_effects.registry import UnknownEffectError, available_effects, get_effect
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

__all__ = [
    "Binding",
    "EffectParams",
    "EffectSetup",
    "EffectSpec",
    "Frame",
    "FrameContext",
    "FrameEffect",
    "FrameProcessor",
    "UnknownEffectError",
    "available_effects",
    "evaluate_binding",
    "get_effect",
    "make_frame_processor",
    "validate_effect_config",
]
