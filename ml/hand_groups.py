"""Which nails of a photo belong to one hand (issue #16), for :mod:`ml.label_suggestions`.

Plain Python + NumPy; never imports Django or an app. A photo of at most ``one_hand_up_to`` nails shows
one hand; otherwise nails closer than ``hand_gap`` nail widths (single linkage over the minimum spanning
tree) are one hand, a lone nail within ``thumb_reach`` widths of a hand of fewer than five joins it (a
thumb held apart), and a group of more than five is cut at its longest link until none is left.
"""
from __future__ import annotations

import numpy as np

__all__ = ["group_hands"]


def group_hands(centres, widths, rules) -> tuple[list[list[int]], list[str]]:
    """Indices (into the nails) of each hand, and notes on how sure the grouping is. ``centres``: the nails'
    centres (px), ``widths``: their widths; ``rules``: ``ml.label_suggestions.SuggestionRules`` (its
    ``one_hand_up_to``, ``hand_gap`` and ``thumb_reach``, distances in median nail widths)."""
    n = len(centres)
    if n == 0:
        return [], []
    unit = float(np.median(widths))
    centres = np.asarray(centres, np.float64)
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=2) / max(unit, 1e-6)
    # Minimum spanning tree (Prim), then cut the links longer than hand_gap.
    edges = []
    best = {j: (dist[0, j], 0) for j in range(1, n)}
    while best:
        j = min(best, key=lambda k: best[k][0])
        d, i = best.pop(j)
        edges.append((d, i, j))
        for k in best:
            if dist[j, k] < best[k][0]:
                best[k] = (dist[j, k], j)
    notes = []

    def components(kept):
        parent = list(range(n))

        def find(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a
        for _, i, j in kept:
            parent[find(i)] = find(j)
        comps: dict[int, list[int]] = {}
        for i in range(n):
            comps.setdefault(find(i), []).append(i)
        return list(comps.values())

    if n <= rules.one_hand_up_to:  # few nails: one hand (a thumb held apart is still its thumb)
        return [list(range(n))], []
    kept = [e for e in edges if e[0] <= rules.hand_gap]
    groups = components(kept)
    # A lone nail near a hand of fewer than five joins it (a thumb held apart).
    for i in [g[0] for g in groups if len(g) == 1]:
        if not any(i in g and len(g) == 1 for g in groups):
            continue
        others = [g for g in groups if i not in g and 2 <= len(g) < 5]
        if not others:
            continue
        near = min(others, key=lambda g: dist[i, g].min())
        j = near[int(np.argmin(dist[i, near]))]
        if dist[i, j] <= rules.thumb_reach:
            kept.append((float(dist[i, j]), i, j))
            groups = components(kept)
            notes.append("a nail apart from the others taken as this hand's thumb side")
    # Groups of more than five: cut at the longest link inside until none is left.
    while any(len(g) > 5 for g in groups):
        big = set(max(groups, key=len))
        longest = max((e for e in kept if e[1] in big), key=lambda e: e[0])
        kept.remove(longest)
        groups = components(kept)
        notes.append("more than five nails close together: split into two hands")
    ambiguous = any(rules.hand_gap * 0.8 < d < rules.hand_gap * 1.5 for d, _, _ in edges)
    if ambiguous and len(groups) > 1:
        notes.append("hands close together")
    return groups, notes
