"""Opening a conversation: the setup that ``qwenchat ask`` and the TUI share.

A conversation starts from a *role* (a system prompt given as text, one from the
prompts library, or a persona), maybe a stored session to continue, and the code
it may run. The functions here turn those choices into what :class:`~qwenchat.chat.Chat`
takes, so that both shells hold the same conversation for the same choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from qwenchat.errors import InputError, Warn

if TYPE_CHECKING:
    from qwenchat.chatml import Message
    from qwenchat.config import Settings
    from qwenchat.engine.base import Engine
    from qwenchat.recorder import SessionRecorder
    from qwenchat.store import Session, SessionStore


@dataclass(frozen=True)
class Role:
    """Who the model plays, and the settings and model that come with it."""

    settings: Settings
    system: str | None = None
    greeting: str | None = None
    model: str | None = None
    persona: str | None = None


def choose_role(
    settings: Settings,
    *,
    system: str | None = None,
    prompt: str | None = None,
    persona: str | None = None,
    model: str | None = None,
) -> Role:
    """The role for at most one of a system prompt, a library prompt name, a persona name.

    A persona brings its greeting, its sampling (over ``settings``') and its model
    (unless ``model`` is given).
    """
    if sum(x is not None for x in (system, prompt, persona)) > 1:
        raise InputError("give only one of a system prompt, a library prompt and a persona")
    if prompt is not None:
        from qwenchat.prompts import get_prompt

        return Role(settings, system=get_prompt(prompt).text, model=model)
    if persona is not None:
        from qwenchat.personas import get_persona

        found = get_persona(persona)
        rendered = found.render()
        sampling = found.sampling_over(settings.sampling)
        return Role(
            settings.model_copy(update={"sampling": sampling}),
            system=rendered.system_prompt,
            greeting=rendered.greeting or None,
            model=model or found.model,
            persona=persona,
        )
    return Role(settings, system=system, model=model)


def opening_messages(role: Role) -> list[Message] | None:
    """A new conversation's first messages: a persona's greeting opens it (else None)."""
    if not role.greeting:
        return None
    from qwenchat.chatml import AssistantMessage, SystemMessage

    return [SystemMessage(content=role.system or ""), AssistantMessage(content=role.greeting)]


def continue_session(
    store: SessionStore, session: Session | str, role: Role, warn: Warn
) -> tuple[list[Message] | None, SessionRecorder]:
    """The history of ``session`` (a stored one, an id as digits, or a name: created if new)
    and its recorder.

    An empty session opens with the role's greeting. A session keeps its own system
    prompt; ``warn`` says so when the role asked for another one.
    """
    from qwenchat.chatml import SystemMessage
    from qwenchat.recorder import SessionRecorder, open_session
    from qwenchat.store import is_session_id

    if isinstance(session, str) and is_session_id(session):  # names are never ids
        session = store.get_session(session)
    elif isinstance(session, str):
        from qwenchat.store import check_session_name

        check_session_name(session)  # now, not after the model has loaded
        found = store.find_session(session)
        if found is None:  # made with its first message: a failed turn leaves nothing
            return opening_messages(role), SessionRecorder(
                store, None, [], create=partial(_new_session, store, session, role)
            )
        session = found
    history, recorder = open_session(store, session)
    kept = history[0].content if history and isinstance(history[0], SystemMessage) else None
    if history and role.system is not None and role.system != kept:
        warn(
            f"session '{session.name or session.title or session.id}' keeps its system prompt;"
            " start a new session to change it"
        )
    return history or opening_messages(role), recorder


def _new_session(store: SessionStore, name: str, role: Role) -> Session:
    """The session ``name``, made now; if another qwenchat made it meanwhile, that one."""
    from qwenchat.store import StoreInputError

    try:
        return store.create_session(
            name=name, title=name, system_prompt=role.system, persona=role.persona
        )
    except StoreInputError:
        found = store.find_session(name)
        if found is None:
            raise
        return found


def use_kv_cache(engine: Engine, settings: Settings) -> None:
    """Let the engine start from, and save, KV states on disk (the prefix library of
    :mod:`qwenchat.engine.kvcache`): a resumed session, and any prompt that starts as an earlier
    one did, reads only what is new."""
    from qwenchat.engine.kvcache import KVCache
    from qwenchat.paths import cache_dir

    path = engine.info().path  # the cache is the model file's: a remote engine has none
    if path is not None and settings.engine.kv_cache_mb:
        size = settings.engine.kv_cache_mb << 20
        engine.use_kv_cache(KVCache.for_model(path, cache_dir(), size))


def sandbox_label(settings: Settings) -> str:
    """The sandbox layer model-written code runs in, and how weak it is if it is."""
    from qwenchat.sandbox import Sandbox

    layer = Sandbox.from_settings(settings.sandbox).layer
    strength = {"full": "", "weaker": ", WEAKER isolation", "none": ", NO isolation"}
    return f"{layer.name}{strength[layer.strength]}"


def describe_sandbox(settings: Settings) -> str:
    """One line: the sandbox layer model-written code runs in, and why."""
    from qwenchat.sandbox import Sandbox

    reason = Sandbox.from_settings(settings.sandbox).layer.reason
    return f"sandbox {sandbox_label(settings)} ({reason})"


def sandbox_status(settings: Settings) -> tuple[bool, str | None]:
    """Whether code can run here, and what the user should be told about it (or None)."""
    from qwenchat.sandbox import Sandbox

    sandbox = Sandbox.from_settings(settings.sandbox)
    layer = sandbox.layer
    if not sandbox.can_run:
        return False, (
            f"no sandbox works here ({layer.reason}): install bubblewrap,"
            " or set sandbox.allow_unsandboxed = true"
        )
    if layer.strength != "full":
        return True, f"{describe_sandbox(settings)}: each code run needs approval"
    return True, None
