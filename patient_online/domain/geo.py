"""Distances between places, for "pharmacies near your GP practice"."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

EARTH_RADIUS_MILES = 3958.8

T = TypeVar("T")


@dataclass(frozen=True)
class Point:
    """A place on the Earth, in decimal degrees (WGS84, as the NHS directory gives them)."""

    latitude: float
    longitude: float

    @classmethod
    def of(cls, latitude: float | None, longitude: float | None) -> Point | None:
        """The point, or None when either coordinate is unknown."""
        if latitude is None or longitude is None:
            return None
        return cls(latitude, longitude)


def miles_between(a: Point, b: Point) -> float:
    """The great-circle (haversine) distance in miles: as the crow flies, which is what a list of nearby places
    can honestly claim without a route planner."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    d_lat = lat2 - lat1
    d_lon = math.radians(b.longitude - a.longitude)
    h = math.sin(d_lat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(d_lon / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(h)))


def nearest_first(
    places: Iterable[T], origin: Point | None, where: Callable[[T], Point | None], name: Callable[[T], str]
) -> list[tuple[T, float | None]]:
    """Each place with its distance from ``origin``: nearest first, then those whose distance is unknown (no
    coordinates, or no origin) in alphabetical order, so a place is never hidden for lack of a location."""
    known: list[tuple[T, float]] = []
    unknown: list[T] = []
    for place in places:
        point = where(place)
        if origin is None or point is None:
            unknown.append(place)
        else:
            known.append((place, miles_between(origin, point)))
    known.sort(key=lambda pair: (pair[1], name(pair[0]).lower()))
    unknown.sort(key=lambda place: name(place).lower())
    return [*known, *((place, None) for place in unknown)]


def miles_text(miles: float) -> str:
    """A distance as a patient reads it: "0.4 miles", "1 mile", "12 miles"."""
    if miles < 0.05:
        return "less than 0.1 miles"
    shown = f"{miles:.1f}".removesuffix(".0") if miles < 10 else f"{miles:.0f}"
    return f"{shown} mile" if shown == "1" else f"{shown} miles"
