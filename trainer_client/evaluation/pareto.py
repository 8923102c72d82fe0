"""The Pareto frontier in the precision–coverage plane.

Every trained model is a point (pass@1, pass@n). The frontier is the upper-right convex hull:
the non-dominated points that are not beaten by a mixture of two others. (Choosing between two
models at random achieves every point on the segment between them, so a point under that
segment is never the best choice at any trade-off.)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["pareto_frontier", "pareto_optimal"]

Point = tuple[float, float]


def pareto_optimal(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates (≥ on both axes, > on one), by x."""
    pts = _check(points)
    keep = []
    for i, (x, y) in enumerate(pts):
        dominated = any(
            (ox >= x and oy >= y) and (ox > x or oy > y) for j, (ox, oy) in enumerate(pts) if j != i
        )
        if not dominated:
            keep.append(i)
    # Exact duplicates: keep the first.
    seen: set[Point] = set()
    unique = []
    for i in keep:
        if pts[i] not in seen:
            seen.add(pts[i])
            unique.append(i)
    return sorted(unique, key=lambda i: (pts[i][0], -pts[i][1]))


def pareto_frontier(points: Sequence[Point]) -> list[int]:
    """Indices of the upper-right convex hull of ``points``, ordered by increasing x.

    Start from the non-dominated points (sorted by x, hence by decreasing y) and drop any that
    lies on or below the segment joining its neighbours (Andrew's monotone chain).
    """
    pts = _check(points)
    hull: list[int] = []
    for i in pareto_optimal(pts):
        while len(hull) >= 2 and _cross(pts[hull[-2]], pts[hull[-1]], pts[i]) >= 0:
            hull.pop()
        hull.append(i)
    return hull


def _cross(o: Point, a: Point, b: Point) -> float:
    """> 0 when o → a → b turns left (a lies below the chord o–b)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _check(points: Sequence[Point]) -> list[Point]:
    out = []
    for i, point in enumerate(points):
        if len(point) != 2:
            raise ValueError(f"points[{i}]: expected (pass@1, pass@n), got {point!r}")
        out.append((float(point[0]), float(point[1])))
    return out
