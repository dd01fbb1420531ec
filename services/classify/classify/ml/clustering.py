"""Leader clustering of sentence embeddings, the topics of `classify.topics`: in the given order, each
vector joins the most similar cluster centre at or above `threshold`, or starts a new cluster. Linear in
vectors × clusters, and needs no number of clusters up front."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Cluster:
    leader: str  # the id of the cluster's first vector
    centre: np.ndarray
    members: list[int] = field(default_factory=list)


def cluster(vectors: np.ndarray, ids: list[str], threshold: float) -> list[Cluster]:
    clusters: list[Cluster] = []
    centres = np.zeros((len(vectors), vectors.shape[1]), dtype=np.float32)  # preallocated: no regrowth
    sums = np.zeros_like(centres)
    for i, vector in enumerate(vectors):
        n = len(clusters)
        if n:
            sims = centres[:n] @ vector
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                clusters[best].members.append(i)
                sums[best] += vector
                centres[best] = sums[best] / max(float(np.linalg.norm(sums[best])), 1e-12)
                continue
        clusters.append(Cluster(leader=ids[i], centre=vector, members=[i]))
        sums[n] = vector
        centres[n] = vector
    for index, c in enumerate(clusters):
        c.centre = centres[index]
    return clusters
