"""Engines behind :class:`~qwenchat.engine.base.Engine`: the local llama.cpp one
(:mod:`qwenchat.engine.llama`) and a remote OpenAI-compatible server
(:mod:`qwenchat.engine.remote`); :mod:`qwenchat.engine.load` picks one from the settings.
"""
