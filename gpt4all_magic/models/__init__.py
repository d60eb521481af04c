"""Model files: the catalog (:mod:`.catalog`), what a name means (:mod:`.resolve`), downloads and
removal (:mod:`.download`, :mod:`.remove`, over :mod:`.hub`, :mod:`.cache` and :mod:`.transfer`), GGUF
headers read without loading (:mod:`.gguf`) and the RAM check (:mod:`.memory`). Nothing here loads a
model or knows the manager: the manager calls down into it."""
