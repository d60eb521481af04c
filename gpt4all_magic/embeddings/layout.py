"""Where each row goes on the map and which cluster it falls in.

The projection is UMAP (umap-learn, cosine metric) as in Nomic Atlas and BERTopic; frames of fewer than
``UMAP_MIN_ROWS`` rows use PCA, where UMAP's neighbour graph has too few points to mean anything. Clusters
are HDBSCAN's (scikit-learn) on the 2-D map: it needs no number of clusters, leaves scattered points
unclustered (-1) instead of forcing them into a group, and runs on the coordinates the user sees, so a
cluster is a visible island; KMeans would need k and cut every island into convex cells.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidOptionError, MissingDependencyError

__all__ = ["UMAP_MIN_ROWS", "clusters", "project"]

UMAP_MIN_ROWS = 50
SEED = 42


def project(vectors: Any, *, method: str | None = None, n_neighbors: int = 15, min_dist: float = 0.1,
            seed: int | None = SEED) -> tuple[Any, str]:
    """2-D coordinates (float32, one row per vector) and the method used: "umap", or "pca" for tiny frames
    (``method`` forces one). A fixed ``seed`` makes the same vectors give the same map."""
    import numpy as np

    x = np.asarray(vectors, dtype=np.float32)
    method = method or ("umap" if len(x) >= UMAP_MIN_ROWS else "pca")
    if method not in ("umap", "pca"):
        raise InvalidOptionError(f"method must be 'umap' or 'pca', got {method!r}.")
    if method == "pca":
        return _pca(x), "pca"
    try:
        import umap
    except ImportError:
        raise MissingDependencyError.for_extra("umap-learn", "map", "The map's UMAP projection") from None
    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist,
                        metric="cosine", random_state=seed, n_jobs=1 if seed is not None else -1)
    return np.asarray(reducer.fit_transform(x), dtype=np.float32), "umap"


def _pca(x: Any) -> Any:
    import numpy as np

    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # a few hundred rows at most: exact SVD is instant
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(x), 2 - coords.shape[1]))])
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), range(2)])  # deterministic orientation
    return (coords * np.where(signs == 0, 1, signs)).astype(np.float32)


def clusters(coords: Any, *, min_cluster_size: int | None = None) -> Any:
    """A cluster id per point of the map (HDBSCAN on the 2-D coordinates; -1: in no cluster)."""
    import numpy as np

    try:
        from sklearn.cluster import HDBSCAN
    except ImportError:
        raise MissingDependencyError.for_extra("scikit-learn", "map", "The map's clusters") from None
    n = len(coords)
    size = min_cluster_size or max(3, min(50, n // 25))
    if n < size:
        return np.full(n, -1, dtype=np.int64)
    labels = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(np.asarray(coords, dtype=np.float64))
    return labels.astype(np.int64)
