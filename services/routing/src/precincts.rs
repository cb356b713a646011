//! The precinct map: which police precinct contains a point.
//!
//! Loaded once from a GeoJSON FeatureCollection of (Multi)Polygons whose
//! property `precinct` names the precinct (a number or a string). Every
//! polygon keeps its bounding box, so a lookup runs the exact point-in-polygon
//! test only on the few polygons whose box contains the point.

use std::path::{Path, PathBuf};

use geo::{BoundingRect, Coord, Intersects, LineString, Polygon, Rect};
use geojson::{GeoJson, GeometryValue, PolygonType, Position};

/// Why a precinct map was refused.
#[derive(Debug, thiserror::Error)]
pub enum PrecinctMapError {
    #[error("cannot read precinct map {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("precinct map is not valid geojson: {0}")]
    Parse(Box<geojson::Error>),
    #[error("precinct map is a {found}, expected a FeatureCollection")]
    NotFeatureCollection { found: &'static str },
    #[error("precinct map has no precincts")]
    NoPrecincts,
    #[error("precinct map feature #{feature} has no precinct property")]
    MissingPrecinct { feature: usize },
    #[error("precinct map feature #{feature}: precinct property {value} is not a precinct name")]
    BadPrecinct { feature: usize, value: String },
    #[error("precinct map feature #{feature} (precinct {precinct}) has no geometry")]
    MissingGeometry { feature: usize, precinct: String },
    #[error(
        "precinct map feature #{feature} (precinct {precinct}) is a {kind}, expected a Polygon or MultiPolygon"
    )]
    UnsupportedGeometry {
        feature: usize,
        precinct: String,
        kind: &'static str,
    },
    #[error(
        "precinct map feature #{feature} (precinct {precinct}) has a position without a longitude and latitude"
    )]
    BadPosition { feature: usize, precinct: String },
    #[error("precinct map feature #{feature} (precinct {precinct}) has an empty polygon")]
    EmptyPolygon { feature: usize, precinct: String },
}

/// One polygon of a precinct (a precinct may have several, e.g. islands).
#[derive(Debug, Clone)]
struct Part {
    /// Index into `PrecinctMap::names`.
    precinct: usize,
    bbox: Rect<f64>,
    polygon: Polygon<f64>,
}

/// Precinct boundaries, ready for point look-ups.
#[derive(Debug, Clone)]
pub struct PrecinctMap {
    /// Distinct precinct names, in the order they first appear in the file.
    names: Vec<String>,
    parts: Vec<Part>,
    /// The FeatureCollection's own `name`, if it has one.
    map_name: Option<String>,
}

impl PrecinctMap {
    /// Reads a GeoJSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PrecinctMapError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PrecinctMapError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_geojson_str(&text)
    }

    /// Parses the text of a GeoJSON FeatureCollection.
    pub fn from_geojson_str(text: &str) -> Result<Self, PrecinctMapError> {
        let geojson: GeoJson = text
            .parse()
            .map_err(|error| PrecinctMapError::Parse(Box::new(error)))?;
        let collection = match geojson {
            GeoJson::FeatureCollection(collection) => collection,
            GeoJson::Feature(_) => {
                return Err(PrecinctMapError::NotFeatureCollection { found: "Feature" });
            }
            GeoJson::Geometry(geometry) => {
                return Err(PrecinctMapError::NotFeatureCollection {
                    found: geometry.value.type_name(),
                });
            }
        };
        let map_name = collection
            .foreign_members
            .as_ref()
            .and_then(|members| members.get("name"))
            .and_then(|name| name.as_str())
            .map(str::to_owned);

        let mut names: Vec<String> = Vec::new();
        let mut parts = Vec::new();
        for (offset, feature) in collection.features.iter().enumerate() {
            let number = offset + 1;
            let precinct = precinct_name(number, feature)?;
            let Some(geometry) = &feature.geometry else {
                return Err(PrecinctMapError::MissingGeometry {
                    feature: number,
                    precinct,
                });
            };
            let polygons: &[PolygonType] = match &geometry.value {
                GeometryValue::MultiPolygon { coordinates } => coordinates,
                GeometryValue::Polygon { coordinates } => std::slice::from_ref(coordinates),
                other => {
                    return Err(PrecinctMapError::UnsupportedGeometry {
                        feature: number,
                        precinct,
                        kind: other.type_name(),
                    });
                }
            };
            if polygons.is_empty() {
                return Err(PrecinctMapError::EmptyPolygon {
                    feature: number,
                    precinct,
                });
            }
            // A precinct split over several features is still one precinct.
            let index = match names.iter().position(|name| *name == precinct) {
                Some(index) => index,
                None => {
                    names.push(precinct.clone());
                    names.len() - 1
                }
            };
            for rings in polygons {
                let Some(polygon) = polygon(rings) else {
                    return Err(PrecinctMapError::BadPosition {
                        feature: number,
                        precinct,
                    });
                };
                let Some(bbox) = polygon.bounding_rect() else {
                    return Err(PrecinctMapError::EmptyPolygon {
                        feature: number,
                        precinct,
                    });
                };
                parts.push(Part {
                    precinct: index,
                    bbox,
                    polygon,
                });
            }
        }
        if parts.is_empty() {
            return Err(PrecinctMapError::NoPrecincts);
        }
        Ok(Self {
            names,
            parts,
            map_name,
        })
    }

    /// The precinct that contains the WGS84 point, or `None` when the point is
    /// outside every precinct (water, another city) or not a valid position.
    /// A point exactly on a shared border gets the precinct listed first in the
    /// file, so the answer is always the same.
    pub fn precinct_at(&self, latitude: f64, longitude: f64) -> Option<&str> {
        if !valid_position(latitude, longitude) {
            return None;
        }
        let point = Coord {
            x: longitude,
            y: latitude,
        };
        // Intersects, not Contains: borders follow street centre lines, and a
        // complaint geocoded onto one must still land in a precinct.
        self.parts
            .iter()
            .find(|part| within_box(&part.bbox, point) && part.polygon.intersects(&point))
            .map(|part| self.names[part.precinct].as_str())
    }

    /// Number of distinct precincts.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Precinct names, in the order they first appear in the file.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub fn contains_precinct(&self, name: &str) -> bool {
        self.names.iter().any(|known| known == name)
    }

    /// The map's own `name` member, e.g. to say in a log line which map is in use.
    pub fn map_name(&self) -> Option<&str> {
        self.map_name.as_deref()
    }
}

/// Latitude and longitude a point-in-polygon test can use.
pub fn valid_position(latitude: f64, longitude: f64) -> bool {
    latitude.is_finite()
        && longitude.is_finite()
        && (-90.0..=90.0).contains(&latitude)
        && (-180.0..=180.0).contains(&longitude)
}

fn within_box(bbox: &Rect<f64>, point: Coord<f64>) -> bool {
    let (min, max) = (bbox.min(), bbox.max());
    point.x >= min.x && point.x <= max.x && point.y >= min.y && point.y <= max.y
}

/// A GeoJSON polygon (exterior ring, then holes) as a geo polygon; `None` when
/// a position lacks a finite longitude and latitude.
fn polygon(rings: &[Vec<Position>]) -> Option<Polygon<f64>> {
    let mut rings = rings.iter().map(|ring| line_string(ring));
    let exterior = rings
        .next()
        .unwrap_or_else(|| Some(LineString::new(Vec::new())))?;
    let interiors = rings.collect::<Option<Vec<_>>>()?;
    Some(Polygon::new(exterior, interiors))
}

fn line_string(ring: &[Position]) -> Option<LineString<f64>> {
    ring.iter()
        .map(|position| match position.as_slice() {
            [x, y, ..] if x.is_finite() && y.is_finite() => Some(Coord { x: *x, y: *y }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .map(LineString::new)
}

/// The `precinct` property as a name: numbers become "14", strings are trimmed.
fn precinct_name(feature: usize, item: &geojson::Feature) -> Result<String, PrecinctMapError> {
    let Some(value) = item
        .properties
        .as_ref()
        .and_then(|properties| properties.get("precinct"))
    else {
        return Err(PrecinctMapError::MissingPrecinct { feature });
    };
    let bad = || PrecinctMapError::BadPrecinct {
        feature,
        value: value.to_string(),
    };
    match value {
        serde_json::Value::String(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        serde_json::Value::Number(number) => {
            if let Some(whole) = number.as_u64() {
                return Ok(whole.to_string());
            }
            // Some exports write precinct numbers as 14.0.
            match number.as_f64() {
                Some(float) if float.fract() == 0.0 && (0.0..1e9).contains(&float) => {
                    Ok(format!("{float:.0}"))
                }
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// Real data for tests: a file of the shared data directory
/// (`$DISPATCH311_DATA_DIR`, by default `../../../shared/data` from this crate).
/// Says loudly that the test is skipped when the file is not there.
#[cfg(test)]
pub(crate) fn shared_data_file(relative: &str) -> Option<PathBuf> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data_dir = std::env::var_os("DISPATCH311_DATA_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("../../../shared/data"), PathBuf::from);
    let path = crate_dir.join(data_dir).join(relative);
    if path.is_file() {
        return Some(path);
    }
    eprintln!(
        "\n========================================================================\n\
         SKIPPED: real data file {} is missing.\n\
         Set DISPATCH311_DATA_DIR to the shared data directory to run this test.\n\
         ========================================================================\n",
        path.display()
    );
    None
}

/// The real NYPD precinct map, parsed once for all tests that need it.
#[cfg(test)]
pub(crate) fn real_precinct_map() -> Option<&'static PrecinctMap> {
    use std::sync::OnceLock;
    static MAP: OnceLock<Option<PrecinctMap>> = OnceLock::new();
    MAP.get_or_init(|| {
        let path = shared_data_file("nypd-precincts.geojson")?;
        Some(PrecinctMap::load(&path).expect("the real precinct map loads"))
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_map() -> PrecinctMap {
        PrecinctMap::from_geojson_str(crate::router::DEFAULT_PRECINCT_MAP).unwrap()
    }

    const EMPIRE_STATE_BUILDING: (f64, f64) = (40.7484, -73.9857);
    const TIMES_SQUARE: (f64, f64) = (40.7580, -73.9855);
    const GRAND_CENTRAL: (f64, f64) = (40.7527, -73.9772);
    const UNION_SQUARE: (f64, f64) = (40.7359, -73.9906);
    const COLUMBUS_CIRCLE: (f64, f64) = (40.7681, -73.9819);
    const HUDSON_YARDS: (f64, f64) = (40.7537, -74.0011);
    const ROCKEFELLER_CENTER: (f64, f64) = (40.7587, -73.9787);
    const PENN_STATION: (f64, f64) = (40.7506, -73.9935);
    const UNITED_NATIONS: (f64, f64) = (40.7489, -73.9680);
    const STUYVESANT_TOWN: (f64, f64) = (40.7316, -73.9780);
    const BARCLAYS_CENTER: (f64, f64) = (40.6826, -73.9754);
    const YANKEE_STADIUM: (f64, f64) = (40.8296, -73.9262);
    const HUDSON_RIVER: (f64, f64) = (40.7600, -74.0150);
    const LOWER_BAY: (f64, f64) = (40.5500, -74.0500);
    const ATLANTIC_OCEAN: (f64, f64) = (40.4000, -73.8000);

    fn square(precinct: &str, west: f64, south: f64, east: f64, north: f64) -> String {
        format!(
            r#"{{"type":"Feature","properties":{{"precinct":{precinct}}},"geometry":{{"type":"Polygon",
            "coordinates":[[[{west},{south}],[{east},{south}],[{east},{north}],[{west},{north}],[{west},{south}]]]}}}}"#
        )
    }

    fn collection(features: &[String]) -> String {
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        )
    }

    #[test]
    fn finds_the_precinct_of_a_point_in_a_small_map() {
        let map = PrecinctMap::from_geojson_str(&collection(&[
            square("\"14\"", -74.0, 40.0, -73.9, 40.1),
            square("18", -74.0, 40.1, -73.9, 40.2),
        ]))
        .unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map.precinct_at(40.05, -73.95), Some("14"));
        assert_eq!(map.precinct_at(40.15, -73.95), Some("18"));
        assert_eq!(map.precinct_at(40.25, -73.95), None);
        assert_eq!(map.precinct_at(40.05, -73.85), None);
    }

    #[test]
    fn a_point_on_a_shared_border_gets_the_first_precinct() {
        let map = PrecinctMap::from_geojson_str(&collection(&[
            square("14", -74.0, 40.0, -73.9, 40.1),
            square("18", -74.0, 40.1, -73.9, 40.2),
        ]))
        .unwrap();
        assert_eq!(map.precinct_at(40.1, -73.95), Some("14"));
        assert_eq!(
            map.precinct_at(40.2, -73.95),
            Some("18"),
            "outer edge still counts"
        );
    }

    #[test]
    fn holes_are_outside_the_precinct() {
        let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature",
            "properties":{"precinct":"22"},
            "geometry":{"type":"MultiPolygon","coordinates":[
              [[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]],
              [[[20,0],[30,0],[30,10],[20,10],[20,0]]]]}}]}"#;
        let map = PrecinctMap::from_geojson_str(text).unwrap();
        assert_eq!(map.precinct_at(2.0, 2.0), Some("22"));
        assert_eq!(map.precinct_at(5.0, 5.0), None, "inside the hole");
        assert_eq!(map.precinct_at(5.0, 25.0), Some("22"), "second polygon");
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn numeric_precinct_properties_become_names() {
        let map = PrecinctMap::from_geojson_str(&collection(&[
            square("14", 0.0, 0.0, 1.0, 1.0),
            square("18.0", 1.0, 0.0, 2.0, 1.0),
            square("\" 121 \"", 2.0, 0.0, 3.0, 1.0),
        ]))
        .unwrap();
        let names: Vec<&str> = map.names().collect();
        assert_eq!(names, ["14", "18", "121"]);
        assert!(map.contains_precinct("121"));
        assert!(!map.contains_precinct("99"));
    }

    #[test]
    fn a_precinct_split_over_features_counts_once() {
        let map = PrecinctMap::from_geojson_str(&collection(&[
            square("\"1\"", 0.0, 0.0, 1.0, 1.0),
            square("5", 1.0, 0.0, 2.0, 1.0),
            square("1", 5.0, 5.0, 6.0, 6.0),
        ]))
        .unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map.precinct_at(0.5, 0.5), Some("1"));
        assert_eq!(map.precinct_at(5.5, 5.5), Some("1"));
        assert_eq!(map.precinct_at(0.5, 1.5), Some("5"));
    }

    #[test]
    fn invalid_positions_are_in_no_precinct() {
        let map =
            PrecinctMap::from_geojson_str(&collection(&[square("1", -180.0, -90.0, 180.0, 90.0)]))
                .unwrap();
        assert_eq!(map.precinct_at(0.0, 0.0), Some("1"));
        assert_eq!(map.precinct_at(f64::NAN, 0.0), None);
        assert_eq!(map.precinct_at(0.0, f64::INFINITY), None);
        assert_eq!(map.precinct_at(91.0, 0.0), None);
        assert_eq!(map.precinct_at(0.0, -181.0), None);
    }

    #[test]
    fn bad_maps_are_refused_with_clear_errors() {
        let cases = [
            ("{", "precinct map is not valid geojson: "),
            (
                r#"{"type":"Point","coordinates":[1,2]}"#,
                "precinct map is a Point, expected a FeatureCollection",
            ),
            (
                r#"{"type":"FeatureCollection","features":[]}"#,
                "precinct map has no precincts",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"x"},
                   "geometry":{"type":"Point","coordinates":[1,2]}}]}"#,
                "precinct map feature #1 has no precinct property",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"precinct":true},
                   "geometry":null}]}"#,
                "precinct map feature #1: precinct property true is not a precinct name",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"precinct":"7"},
                   "geometry":null}]}"#,
                "precinct map feature #1 (precinct 7) has no geometry",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"precinct":7},
                   "geometry":{"type":"Point","coordinates":[1,2]}}]}"#,
                "precinct map feature #1 (precinct 7) is a Point, expected a Polygon or MultiPolygon",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"precinct":7},
                   "geometry":{"type":"Polygon","coordinates":[[[0,0],[1],[1,1],[0,0]]]}}]}"#,
                "precinct map feature #1 (precinct 7) has a position without a longitude and latitude",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"precinct":7},
                   "geometry":{"type":"MultiPolygon","coordinates":[]}}]}"#,
                "precinct map feature #1 (precinct 7) has an empty polygon",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"precinct":7},
                   "geometry":{"type":"Polygon","coordinates":[]}}]}"#,
                "precinct map feature #1 (precinct 7) has an empty polygon",
            ),
        ];
        for (text, expected) in cases {
            let error = PrecinctMap::from_geojson_str(text).unwrap_err().to_string();
            assert!(
                error.starts_with(expected),
                "{error:?} should start with {expected:?}"
            );
        }
        let error = PrecinctMap::load("/nonexistent/precincts.geojson").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read precinct map /nonexistent/precincts.geojson: ")
        );
    }

    #[test]
    fn shipped_map_is_the_citys_78_precincts_in_all_five_boroughs() {
        let map = shipped_map();
        assert_eq!(map.len(), 78);
        assert!(map.map_name().unwrap().contains("y76i-bdw7"));
        let expected = [
            // Manhattan
            (EMPIRE_STATE_BUILDING, "14"),
            (TIMES_SQUARE, "18"),
            (UNITED_NATIONS, "17"),
            (HUDSON_YARDS, "10"),
            // Brooklyn, the Bronx
            (BARCLAYS_CENTER, "78"),
            (YANKEE_STADIUM, "44"),
            // Queens: Flushing; Staten Island: St. George
            ((40.7580, -73.8303), "109"),
            ((40.6437, -74.0736), "120"),
        ];
        for ((lat, lon), precinct) in expected {
            assert_eq!(map.precinct_at(lat, lon), Some(precinct), "{lat},{lon}");
        }
        for (lat, lon) in [HUDSON_RIVER, LOWER_BAY, ATLANTIC_OCEAN, (40.7282, -74.0776)] {
            assert_eq!(
                map.precinct_at(lat, lon),
                None,
                "{lat},{lon} (water, New Jersey)"
            );
        }
    }

    /// The shipped map is simplified: it must still put every real request
    /// where the official map puts it.
    #[test]
    fn shipped_map_places_every_real_request_as_the_official_map_does() {
        let Some(official) = real_precinct_map() else {
            return;
        };
        let shipped = shipped_map();
        let mut checked = 0;
        for file in [
            "nyc311/service-requests-2023-02-28.csv",
            "nyc311/service-requests-2023-03-31-smoke.csv",
        ] {
            let Some(path) = shared_data_file(file) else {
                continue;
            };
            let mut reader = csv::Reader::from_path(&path).unwrap();
            let header = reader.headers().unwrap().clone();
            let column = |name: &str| header.iter().position(|h| h == name).unwrap();
            let (lat, lon) = (column("Latitude"), column("Longitude"));
            for record in reader.records() {
                let record = record.unwrap();
                let (Ok(latitude), Ok(longitude)) =
                    (record[lat].parse::<f64>(), record[lon].parse::<f64>())
                else {
                    continue;
                };
                assert_eq!(
                    shipped.precinct_at(latitude, longitude),
                    official.precinct_at(latitude, longitude),
                    "{file}: {latitude},{longitude}"
                );
                checked += 1;
            }
        }
        assert!(checked > 4_000, "only {checked} located requests checked");
    }

    #[test]
    fn real_map_places_landmarks_in_their_precincts() {
        let Some(map) = real_precinct_map() else {
            return;
        };
        assert_eq!(map.len(), 78);
        let expected = [
            (EMPIRE_STATE_BUILDING, "14"),
            (TIMES_SQUARE, "18"),
            (GRAND_CENTRAL, "14"),
            (UNION_SQUARE, "13"),
            (COLUMBUS_CIRCLE, "18"),
            (ROCKEFELLER_CENTER, "18"),
            (PENN_STATION, "14"),
            (UNITED_NATIONS, "17"),
            (STUYVESANT_TOWN, "13"),
            (HUDSON_YARDS, "10"),
            (BARCLAYS_CENTER, "78"),
            (YANKEE_STADIUM, "44"),
        ];
        for ((lat, lon), precinct) in expected {
            assert_eq!(map.precinct_at(lat, lon), Some(precinct), "{lat},{lon}");
        }
    }

    #[test]
    fn real_map_has_no_precinct_on_the_water_or_far_away() {
        let Some(map) = real_precinct_map() else {
            return;
        };
        for (lat, lon) in [
            HUDSON_RIVER,
            LOWER_BAY,
            ATLANTIC_OCEAN,
            (42.6526, -73.7562),
            (0.0, 0.0),
        ] {
            assert_eq!(map.precinct_at(lat, lon), None, "{lat},{lon}");
        }
    }
}
