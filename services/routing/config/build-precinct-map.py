#!/usr/bin/env python3
"""Build routing's default precinct map from NYC's official NYPD precinct map.

Reads the official GeoJSON export of NYC Open Data dataset y76i-bdw7
("Police Precincts", 78 precincts, WGS84 MultiPolygons, property `precinct`)
and writes `services/routing/config/nypd-precincts.geojson` next to this
script: the same precincts in the same order, each ring simplified with
Douglas-Peucker at a small tolerance (in degrees, default 1e-6, about 10 cm)
and its coordinates rounded to 7 decimals (default), with only the `precinct`
property kept. Rings stay closed with at least 4 positions; rings that
collapse are dropped (a polygon whose outer ring collapses is dropped with its
holes; in edition 26B these are 32 sliver triangles of under 1 square metre
each). Output is compact JSON, one feature per line.

After writing, it checks the simplified map against the official one:

* every real 311 request with numeric Latitude/Longitude in
  `$DISPATCH311_DATA_DIR/nyc311/*.csv` (default `<repo>/../shared/data`) must
  get the same precinct (or none) from both maps; any difference is an error
  and the script exits with status 1 (lower --tolerance and run it again);
* a grid of points every 0.002 degrees over NYC (40.49..40.92 N,
  74.26..73.69 W) is looked up in both maps and the number of grid points that
  change precinct is reported (a few right next to borders is expected).

Look-ups follow routing's rules (services/routing/src/precincts.rs): even-odd
point-in-polygon with holes, a point exactly on an edge counts as inside, and
the first matching feature in file order wins.

Run from anywhere, with Python 3 (standard library only):

    python3 services/routing/config/build-precinct-map.py [official.geojson]
        [--tolerance DEGREES] [--decimals N] [--output PATH]
    python3 services/routing/config/build-precinct-map.py --check [official.geojson]

The official file defaults to `../shared/data/nypd-precincts.geojson` relative
to the repository root. `--check` rebuilds nothing: it only checks the map
already written (the --output path) against the official file. The input's
sha256 is compared with that of edition 26B (May 2026); a different file
(e.g. a newer edition) is only warned about, and its checksum printed.
"""

import argparse
import csv
import glob
import hashlib
import json
import math
import os
import sys

EXPECTED_SHA256 = "5210830afa9d0875b7a7c769edfc4d2ebe984a9ab1e36f3b7fad8508828172aa"
MAP_NAME = "NYPD precincts, NYC Open Data y76i-bdw7 edition 26B, simplified"
# Real requests are geocoded onto street centre lines, which is where precinct
# borders run: in the 2023 samples 52 of 5,012 requests lie within 10 cm of an
# official border and the nearest within 6 mm. Hence a tolerance of about 10 cm
# and 7 decimals (1 cm): 6 decimals alone (no simplification at all) already
# moves 9 real requests into the neighbouring precinct, and 1e-5 degrees moves 12.
DEFAULT_TOLERANCE = 1e-6  # degrees: about 11 cm north-south, 8 cm east-west
DEFAULT_DECIMALS = 7

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(SCRIPT_DIR)))
DEFAULT_INPUT = os.path.join(REPO_ROOT, "..", "shared", "data", "nypd-precincts.geojson")
DEFAULT_OUTPUT = os.path.join(SCRIPT_DIR, "nypd-precincts.geojson")

# The grid of the coverage check: NYC's bounding box, every 0.002 degrees.
GRID_STEP = 0.002
GRID_LAT = (40.49, 40.92)
GRID_LON = (-74.26, -73.69)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------
# Simplification


def segment_distance_sq(p, a, b):
    """Squared distance from point p to segment ab (planar, in degrees)."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    px, py = p[0] - ax, p[1] - ay
    length_sq = dx * dx + dy * dy
    if length_sq > 0.0:
        t = (px * dx + py * dy) / length_sq
        if t > 1.0:
            px, py = p[0] - b[0], p[1] - b[1]
        elif t > 0.0:
            px, py = px - t * dx, py - t * dy
    return px * px + py * py


def douglas_peucker(points, tolerance):
    """Indices kept by Douglas-Peucker on an open chain (both ends kept)."""
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    tolerance_sq = tolerance * tolerance
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        farthest, farthest_sq = -1, tolerance_sq
        a, b = points[first], points[last]
        for index in range(first + 1, last):
            distance_sq = segment_distance_sq(points[index], a, b)
            if distance_sq > farthest_sq:
                farthest, farthest_sq = index, distance_sq
        if farthest >= 0:
            keep[farthest] = True
            stack.append((first, farthest))
            stack.append((farthest, last))
    return keep


def ring_area2(ring):
    """Twice the signed area of a closed ring."""
    return sum(
        ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1] for i in range(len(ring) - 1)
    )


def simplify_ring(ring, tolerance, decimals):
    """A closed ring simplified and rounded, or None when it collapses."""
    points = [(float(c[0]), float(c[1])) for c in ring]
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(points) < 3:
        return None
    if tolerance > 0:
        # A closed ring has no natural ends: anchor it at its first point and
        # the point farthest from it, and simplify both halves.
        x0, y0 = points[0]
        split = max(
            range(len(points)),
            key=lambda i: (points[i][0] - x0) ** 2 + (points[i][1] - y0) ** 2,
        )
        first = points[: split + 1]
        second = points[split:] + [points[0]]
        kept = [p for p, k in zip(first, douglas_peucker(first, tolerance)) if k]
        kept += [p for p, k in zip(second, douglas_peucker(second, tolerance)) if k][1:-1]
        points = kept
    out = []
    for x, y in points:
        position = [round(x, decimals), round(y, decimals)]
        if not out or out[-1] != position:
            out.append(position)
    while len(out) > 1 and out[-1] == out[0]:
        out.pop()
    if len(out) < 3:
        return None
    out.append(list(out[0]))
    if ring_area2(out) == 0.0:
        return None
    return out


def simplify_map(collection, tolerance, decimals):
    features = []
    for number, feature in enumerate(collection["features"], 1):
        precinct = str(feature["properties"]["precinct"]).strip()
        geometry = feature["geometry"]
        polygons = geometry["coordinates"]
        if geometry["type"] == "Polygon":
            polygons = [polygons]
        elif geometry["type"] != "MultiPolygon":
            sys.exit(f"feature #{number} (precinct {precinct}) is a {geometry['type']}")
        out_polygons = []
        for rings in polygons:
            exterior = simplify_ring(rings[0], tolerance, decimals)
            if exterior is None:
                continue
            holes = [simplify_ring(ring, tolerance, decimals) for ring in rings[1:]]
            holes = [hole for hole in holes if hole is not None]
            out_polygons.append([exterior] + holes)
        if not out_polygons:
            sys.exit(f"precinct {precinct} collapses entirely at tolerance {tolerance}")
        features.append(
            {
                "type": "Feature",
                "properties": {"precinct": precinct},
                "geometry": {"type": "MultiPolygon", "coordinates": out_polygons},
            }
        )
    return features


def write_map(path, features):
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    lines = [
        '{"type":"FeatureCollection","name":' + json.dumps(MAP_NAME, **compact) + ',"features":['
    ]
    for index, feature in enumerate(features):
        comma = "," if index + 1 < len(features) else ""
        lines.append(json.dumps(feature, **compact) + comma)
    lines.append("]}")
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")


def count_points(collection):
    points = rings = 0
    for feature in collection["features"]:
        geometry = feature["geometry"]
        polygons = geometry["coordinates"]
        if geometry["type"] == "Polygon":
            polygons = [polygons]
        for polygon in polygons:
            for ring in polygon:
                rings += 1
                points += len(ring)
    return points, rings


# --------------------------------------------------------------------------
# Point-in-polygon, as routing does it


class Ring:
    """A ring with its edges bucketed into horizontal strips for fast look-ups."""

    def __init__(self, coordinates):
        self.points = [(float(c[0]), float(c[1])) for c in coordinates]
        if self.points[0] != self.points[-1]:
            self.points.append(self.points[0])
        ys = [p[1] for p in self.points]
        self.ymin, self.ymax = min(ys), max(ys)
        edges = len(self.points) - 1
        self.strips = max(1, edges // 4)
        self.height = (self.ymax - self.ymin) / self.strips or 1.0
        self.buckets = [[] for _ in range(self.strips)]
        for i in range(edges):
            (x1, y1), (x2, y2) = self.points[i], self.points[i + 1]
            low, high = self._strip(min(y1, y2)), self._strip(max(y1, y2))
            for strip in range(low, high + 1):
                self.buckets[strip].append((x1, y1, x2, y2))

    def _strip(self, y):
        return min(self.strips - 1, max(0, int((y - self.ymin) / self.height)))

    def edges_near(self, y):
        if y < self.ymin or y > self.ymax:
            return ()
        return self.buckets[self._strip(y)]

    def crossings(self, x, y):
        """(on an edge, number of edges a ray to the east crosses)."""
        crossed = 0
        for x1, y1, x2, y2 in self.edges_near(y):
            if min(y1, y2) <= y <= max(y1, y2) and min(x1, x2) <= x <= max(x1, x2):
                if (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1) == 0.0:
                    return True, 0
            if (y1 > y) != (y2 > y):
                if x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                    crossed += 1
        return False, crossed


class PrecinctMap:
    def __init__(self, collection):
        self.parts = []  # (precinct, bbox, rings), in file order
        self.cells = None  # edges by grid cell, built on first use
        for feature in collection["features"]:
            precinct = str(feature["properties"]["precinct"]).strip()
            geometry = feature["geometry"]
            polygons = geometry["coordinates"]
            if geometry["type"] == "Polygon":
                polygons = [polygons]
            for polygon in polygons:
                rings = [Ring(ring) for ring in polygon if ring]
                xs = [p[0] for p in rings[0].points]
                bbox = (min(xs), rings[0].ymin, max(xs), rings[0].ymax)
                self.parts.append((precinct, bbox, rings))

    def precinct_at(self, latitude, longitude):
        x, y = longitude, latitude
        for precinct, (west, south, east, north), rings in self.parts:
            if not (west <= x <= east and south <= y <= north):
                continue
            crossed = 0
            for ring in rings:
                on_edge, count = ring.crossings(x, y)
                if on_edge:
                    return precinct
                crossed += count
            if crossed % 2 == 1:
                return precinct
        return None

    def border_distance_m(self, latitude, longitude):
        """Distance in metres from a point to the nearest edge of the map
        (searched within about 200 m; farther points get infinity)."""
        if self.cells is None:
            self.cells = {}
            for _, _, rings in self.parts:
                for ring in rings:
                    pts = ring.points
                    for i in range(len(pts) - 1):
                        (x1, y1), (x2, y2) = pts[i], pts[i + 1]
                        for cx in range(cell_of(min(x1, x2)), cell_of(max(x1, x2)) + 1):
                            for cy in range(cell_of(min(y1, y2)), cell_of(max(y1, y2)) + 1):
                                self.cells.setdefault((cx, cy), []).append((x1, y1, x2, y2))
        scale_x = 111_320.0 * math.cos(math.radians(latitude))
        scale_y = 110_574.0
        cx, cy = cell_of(longitude), cell_of(latitude)
        best = math.inf
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for x1, y1, x2, y2 in self.cells.get((cx + dx, cy + dy), ()):
                    a = ((x1 - longitude) * scale_x, (y1 - latitude) * scale_y)
                    b = ((x2 - longitude) * scale_x, (y2 - latitude) * scale_y)
                    best = min(best, segment_distance_sq((0.0, 0.0), a, b))
        return math.sqrt(best)


CELL = 0.002  # degrees, the cell of the border-distance index


def cell_of(coordinate):
    return int(math.floor(coordinate / CELL))


# --------------------------------------------------------------------------
# Checks


def data_dir():
    configured = os.environ.get("DISPATCH311_DATA_DIR")
    if configured:
        return configured
    return os.path.join(REPO_ROOT, "..", "shared", "data")


def number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def check_requests(full, simple):
    """(requests checked, mismatches); prints every mismatch."""
    directory = os.path.join(data_dir(), "nyc311")
    files = sorted(glob.glob(os.path.join(directory, "*.csv")))
    if not files:
        print(f"WARNING: no 311 CSV files in {directory}: request check SKIPPED", file=sys.stderr)
        return 0, 0
    checked = mismatches = outside = 0
    distances = []
    for path in files:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"Latitude", "Longitude"} <= set(reader.fieldnames):
                print(f"  {os.path.basename(path)}: no Latitude/Longitude columns, skipped")
                continue
            rows = in_file = 0
            for line, row in enumerate(reader, 2):
                rows += 1
                latitude, longitude = number(row["Latitude"]), number(row["Longitude"])
                if latitude is None or longitude is None:
                    continue
                in_file += 1
                expected = full.precinct_at(latitude, longitude)
                got = simple.precinct_at(latitude, longitude)
                outside += expected is None
                distances.append(full.border_distance_m(latitude, longitude))
                if expected != got:
                    mismatches += 1
                    print(
                        f"  MISMATCH {os.path.basename(path)} line {line} "
                        f"({latitude},{longitude}): official {expected}, simplified {got}"
                    )
            checked += in_file
            print(f"  {os.path.basename(path)}: {in_file} of {rows} rows have coordinates")
    print(f"  {outside} of them are outside every precinct on the official map")
    if distances:
        near = ", ".join(
            f"{sum(d < limit for d in distances)} within {label}"
            for limit, label in ((0.01, "1 cm"), (0.1, "10 cm"), (1.0, "1 m"))
        )
        print(
            f"  distance to the nearest official border: {near}; "
            f"nearest {min(distances):.4f} m"
        )
    return checked, mismatches


def check_grid(full, simple):
    """(grid points, changed points, max distance in metres of a changed point to the border)."""
    rows = int(round((GRID_LAT[1] - GRID_LAT[0]) / GRID_STEP)) + 1
    cols = int(round((GRID_LON[1] - GRID_LON[0]) / GRID_STEP)) + 1
    changed = []
    for i in range(rows):
        latitude = round(GRID_LAT[0] + i * GRID_STEP, 6)
        for j in range(cols):
            longitude = round(GRID_LON[0] + j * GRID_STEP, 6)
            before = full.precinct_at(latitude, longitude)
            after = simple.precinct_at(latitude, longitude)
            if before != after:
                changed.append((latitude, longitude, before, after))
    farthest = 0.0
    for latitude, longitude, before, after in changed:
        distance = full.border_distance_m(latitude, longitude)
        farthest = max(farthest, distance)
        print(
            f"  grid point {latitude},{longitude}: official {before}, simplified {after} "
            f"({distance:.2f} m from the official border)"
        )
    return rows * cols, len(changed), farthest


def run_checks(official, simplified):
    print("checking the simplified map against the official one")
    full, simple = PrecinctMap(official), PrecinctMap(simplified)
    checked, mismatches = check_requests(full, simple)
    if checked:
        print(f"real 311 requests: {mismatches} of {checked} change precinct")
    else:
        print("real 311 requests: none found, NOT CHECKED (set DISPATCH311_DATA_DIR)")
    points, changed, farthest = check_grid(full, simple)
    print(
        f"grid every {GRID_STEP} degrees: {changed} of {points} points change precinct"
        + (f" (all within {farthest:.2f} m of an official border)" if changed else "")
    )
    if mismatches:
        print(
            f"ERROR: {mismatches} real requests change precinct; lower --tolerance",
            file=sys.stderr,
        )
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(
        description="Simplify NYC's official NYPD precinct map into routing's default map."
    )
    parser.add_argument(
        "input", nargs="?", default=DEFAULT_INPUT, help="official GeoJSON (y76i-bdw7)"
    )
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="simplified GeoJSON to write")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"Douglas-Peucker tolerance in degrees (default {DEFAULT_TOLERANCE})",
    )
    parser.add_argument(
        "--decimals",
        type=int,
        default=DEFAULT_DECIMALS,
        help=f"decimals kept in coordinates (default {DEFAULT_DECIMALS})",
    )
    parser.add_argument(
        "--check", action="store_true", help="only check the existing output, write nothing"
    )
    args = parser.parse_args()

    input_sha = sha256_of(args.input)
    print(f"input:  {os.path.normpath(args.input)}")
    print(f"        {os.path.getsize(args.input)} bytes, sha256 {input_sha}")
    if input_sha != EXPECTED_SHA256:
        print(
            "WARNING: the input is not edition 26B (May 2026) of y76i-bdw7:\n"
            f"         expected sha256 {EXPECTED_SHA256}\n"
            f"         got      sha256 {input_sha}\n"
            "         if this is a new edition, update EXPECTED_SHA256, MAP_NAME and "
            "nypd-precincts.md",
            file=sys.stderr,
        )
    with open(args.input, encoding="utf-8") as handle:
        official = json.load(handle)
    points, rings = count_points(official)
    print(f"        {len(official['features'])} precincts, {rings} rings, {points} points")

    if not args.check:
        features = simplify_map(official, args.tolerance, args.decimals)
        write_map(args.output, features)
        print(f"tolerance {args.tolerance} degrees, coordinates rounded to {args.decimals} decimals")
    with open(args.output, encoding="utf-8") as handle:
        simplified = json.load(handle)
    points, rings = count_points(simplified)
    print(f"output: {os.path.normpath(args.output)}")
    print(f"        {os.path.getsize(args.output)} bytes, sha256 {sha256_of(args.output)}")
    print(f"        {len(simplified['features'])} precincts, {rings} rings, {points} points")
    return run_checks(official, simplified)


if __name__ == "__main__":
    sys.exit(main())
