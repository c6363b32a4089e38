"""Engines: the local llama.cpp one (:mod:`qwenchat.engine.llama`),
behind :class:`~qwenchat.engine.base.Engine`.
"""
