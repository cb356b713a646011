//! The area a city accepts requests for. Coordinates outside it are rejected
//! by intake: a request in the ocean or another state cannot be dispatched.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CityBounds {
    pub min_latitude: f64,
    pub max_latitude: f64,
    pub min_longitude: f64,
    pub max_longitude: f64,
}

impl CityBounds {
    /// New York City's five boroughs, with a small margin.
    pub const NEW_YORK_CITY: CityBounds = CityBounds {
        min_latitude: 40.47,
        max_latitude: 40.93,
        min_longitude: -74.27,
        max_longitude: -73.68,
    };

    pub fn contains(&self, latitude: f64, longitude: f64) -> bool {
        (self.min_latitude..=self.max_latitude).contains(&latitude)
            && (self.min_longitude..=self.max_longitude).contains(&longitude)
    }

    /// Parses `min_lat,min_lon,max_lat,max_lon`, as given in configuration.
    pub fn parse(s: &str) -> Option<CityBounds> {
        let parts: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [min_latitude, min_longitude, max_latitude, max_longitude] = parts[..] else {
            return None;
        };
        (min_latitude < max_latitude && min_longitude < max_longitude).then_some(CityBounds {
            min_latitude,
            max_latitude,
            min_longitude,
            max_longitude,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_york_contains_midtown_but_not_philadelphia() {
        assert!(CityBounds::NEW_YORK_CITY.contains(40.7484, -73.9857));
        assert!(!CityBounds::NEW_YORK_CITY.contains(39.9526, -75.1652));
        assert!(!CityBounds::NEW_YORK_CITY.contains(0.0, 0.0));
    }

    #[test]
    fn parses_configured_bounds() {
        let bounds = CityBounds::parse("40.0, -75.0, 41.0, -73.0").unwrap();
        assert!(bounds.contains(40.5, -74.0));
        assert_eq!(CityBounds::parse("41,-73,40,-75"), None);
        assert_eq!(CityBounds::parse("1,2,3"), None);
    }
}
