"""Personas for role-play: a character's system prompt, greeting and settings.

:mod:`~qwenchat.personas.persona` holds the :class:`Persona` model, its Markdown
files and the library (built-in ``prompts/personas/``, the user's
``<config dir>/personas``, which win); :mod:`~qwenchat.personas.cards` imports
Character Cards (V1, V2, V3; JSON or PNG) as personas.
"""

from qwenchat.personas.cards import import_card
from qwenchat.personas.persona import (
    Persona,
    RenderedPersona,
    builtin_dir,
    get_persona,
    list_personas,
    load_persona_file,
    save_persona,
    user_dir,
)

__all__ = [
    "Persona",
    "RenderedPersona",
    "builtin_dir",
    "get_persona",
    "import_card",
    "list_personas",
    "load_persona_file",
    "save_persona",
    "user_dir",
]
