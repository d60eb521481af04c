"""The OpenAI-compatible server engine. Layers, lowest first: :mod:`.http` (transport, typed errors) →
:mod:`.batch` (bounded concurrency), :mod:`.tokens`, :mod:`.stream` → :mod:`.scoring` → :mod:`.model`
(the backend and its remote model). Connecting the manager to a server is the manager's business
(:meth:`ModelManager.use`), so nothing here imports it."""
