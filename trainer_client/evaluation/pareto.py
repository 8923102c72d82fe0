"""The Pareto frontier in the precision–coverage plane.

Every trained model is a point (pass@1, pass@n). Two rules are offered, and plots name the one
they draw:

* ``"concave"`` (:func:`pareto_frontier`, the default): the upper-right concave chain, the
  non-dominated points that are not beaten by a mixture of two others. (Choosing between two
  models at random achieves every point on the segment between them, so a point under that
  segment is never the best choice at any trade-off.)
* ``"paper"`` (:func:`paper_pareto_frontier`): the rule of the paper's code, the vertices of the
  convex hull of all points that no other point dominates. It keeps, besides the concave
  chain, non-dominated hull vertices on the lower-left side of the hull (a point under the
  chord of two others but still a corner of the hull). The two differ on about 3% of random
  point sets.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "PARETO_RULES",
    "paper_pareto_frontier",
    "pareto_by_rule",
    "pareto_frontier",
    "pareto_optimal",
]

#: Rule name -> what a legend says about it.
PARETO_RULES: dict[str, str] = {
    "concave": "upper-right concave chain",
    "paper": "paper: non-dominated hull vertices",
}

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


def paper_pareto_frontier(points: Sequence[Point]) -> list[int]:
    """The paper's rule: vertices of the convex hull of all ``points`` not dominated by any
    other point, ordered by increasing x.

    The hull is Andrew's monotone chain over every point (collinear points are not vertices;
    exact duplicates count once); a vertex is dropped if another point is ≥ on both axes and
    > on one.
    """
    pts = _check(points)
    if len(pts) <= 2:
        return pareto_optimal(pts)
    order = sorted(range(len(pts)), key=lambda i: pts[i])
    unique: list[int] = []
    for i in order:
        if not unique or pts[unique[-1]] != pts[i]:
            unique.append(i)
    vertices = set(_left_turn_chain(pts, unique)) | set(_left_turn_chain(pts, unique[::-1]))
    return [i for i in pareto_optimal(pts) if i in vertices]


def pareto_by_rule(points: Sequence[Point], rule: str = "concave") -> list[int]:
    """:func:`pareto_frontier` (``"concave"``) or :func:`paper_pareto_frontier` (``"paper"``)."""
    if rule == "concave":
        return pareto_frontier(points)
    if rule == "paper":
        return paper_pareto_frontier(points)
    raise ValueError(f"rule: expected one of {sorted(PARETO_RULES)}, got {rule!r}")


def _left_turn_chain(pts: Sequence[Point], order: Sequence[int]) -> list[int]:
    """One half of Andrew's monotone chain: walking ``order``, keep only strict left turns
    (the lower hull by increasing x, the upper hull by decreasing x)."""
    chain: list[int] = []
    for i in order:
        while len(chain) >= 2 and _cross(pts[chain[-2]], pts[chain[-1]], pts[i]) <= 0:
            chain.pop()
        chain.append(i)
    return chain


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
