//! Distances on the ground, for "was the officer near the incident" and
//! "which unit is nearest".

/// Great-circle distance in meters between two WGS84 points (haversine; the
/// error over city distances is far below a GPS fix's).
pub fn meters_between(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empire_state_to_times_square_is_about_a_kilometre() {
        let d = meters_between((40.7484, -73.9857), (40.7580, -73.9855));
        assert!((1_050.0..1_080.0).contains(&d), "{d}");
        assert_eq!(meters_between((40.7, -74.0), (40.7, -74.0)), 0.0);
    }
}
