"""MCP: the tools of Model Context Protocol servers in qwenchat's tool registry
(:mod:`.config`, :mod:`.client`, :mod:`.tools`), and qwenchat's sandbox and tools served
to other MCP clients (:mod:`.serve`)."""
