"""Join paths between entities: every join is many-to-one, so a path from a fact entity never fans out.

A path is the unique shortest chain of joins; when two chains of the same length lead to an entity, the entity is
ambiguous from there and any question that needs it is refused with both chains named.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from crmetrics.model.types import Entity, Join


@dataclass(frozen=True)
class Paths:
    """Shortest join paths from one entity: reachable targets and targets reached two ways."""

    source: str
    reach: Mapping[str, tuple[Join, ...]]
    ambiguous: Mapping[str, tuple[str, str]]


def shortest_paths(entities: Mapping[str, Entity], source: str) -> Paths:
    """Breadth-first search over joins from `source`, keeping the first path to each entity."""
    reach: dict[str, tuple[Join, ...]] = {source: ()}
    depth = {source: 0}
    ambiguous: dict[str, tuple[str, str]] = {}
    queue = deque([source])
    while queue:
        current = queue.popleft()
        for join in entities[current].joins.values():
            if join.target not in entities:
                continue
            path = (*reach[current], join)
            if join.target not in reach:
                reach[join.target], depth[join.target] = path, depth[current] + 1
                queue.append(join.target)
            elif depth[join.target] == len(path) and reach[join.target] != path and join.target != source:
                first = " -> ".join([source, *(j.target for j in reach[join.target])])
                second = " -> ".join([source, *(j.target for j in path)])
                ambiguous.setdefault(join.target, (first, second))
    # an entity reached only through an ambiguous one is ambiguous too
    for target, path in reach.items():
        for join in path[:-1]:
            if join.target in ambiguous and target not in ambiguous:
                ambiguous[target] = ambiguous[join.target]
    return Paths(source, reach, ambiguous)


def all_paths(entities: Mapping[str, Entity]) -> dict[str, Paths]:
    """Shortest paths from every entity, computed once when the model is built."""
    return {name: shortest_paths(entities, name) for name in entities}
