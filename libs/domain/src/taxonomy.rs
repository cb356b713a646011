//! The complaint taxonomy intake accepts: the city's 311 complaint types.
//!
//! Names follow the city's published 311 data. Police types are the ones the
//! police department handles; dispatch's jurisdiction guard builds on that
//! flag. Which agency gets a request is decided by routing's rule table.
//! Names are matched without regard to case, so the city's two spellings of
//! "Plumbing" and "Elevator" (buildings and housing departments) are one type
//! here; routing sends them to one agency.

/// A complaint type and whether it is police work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComplaintType {
    pub name: &'static str,
    pub police_matter: bool,
}

const fn police(name: &'static str) -> ComplaintType {
    ComplaintType {
        name,
        police_matter: true,
    }
}

const fn other(name: &'static str) -> ComplaintType {
    ComplaintType {
        name,
        police_matter: false,
    }
}

/// Every complaint type intake accepts.
pub const COMPLAINT_TYPES: &[ComplaintType] = &[
    police("Abandoned Vehicle"),
    police("Animal-Abuse"),
    police("Bike/Roller/Skate Chronic"),
    police("Blocked Driveway"),
    police("Derelict Vehicle"),
    police("Disorderly Youth"),
    police("Drinking"),
    police("Drug Activity"),
    police("Encampment"),
    other("Graffiti"),
    police("Homeless Street Condition"),
    police("Illegal Fireworks"),
    police("Illegal Parking"),
    police("Noise - Commercial"),
    police("Noise - House of Worship"),
    police("Noise - Park"),
    police("Noise - Residential"),
    police("Noise - Street/Sidewalk"),
    police("Noise - Vehicle"),
    police("Non-Emergency Police Matter"),
    police("Panhandling"),
    police("Posting Advertisement"),
    police("Squeegee"),
    police("Traffic"),
    police("Urinating in Public"),
    police("Vending"),
    other("APPLIANCE"),
    other("Abandoned Bike"),
    other("Air Quality"),
    other("Animal in a Park"),
    other("Asbestos"),
    other("Beach/Pool/Sauna Complaint"),
    other("Boilers"),
    other("Borough Office"),
    other("Bridge Condition"),
    other("Broken Parking Meter"),
    other("Building/Use"),
    other("Commercial Disposal Complaint"),
    other("Construction Lead Dust"),
    other("Consumer Complaint"),
    other("Curb Condition"),
    other("DOOR/WINDOW"),
    other("Damaged Tree"),
    other("Day Care"),
    other("Dead Animal"),
    other("Dead/Dying Tree"),
    other("Derelict Vehicles"),
    other("Dirty Condition"),
    other("ELECTRIC"),
    other("Electrical"),
    other("Electronics Waste Appointment"),
    other("Elevator"),
    other("Emergency Response Team (ERT)"),
    other("FLOORING/STAIRS"),
    other("Food Establishment"),
    other("For Hire Vehicle Complaint"),
    other("GENERAL"),
    other("General Construction/Plumbing"),
    other("Green Taxi Complaint"),
    other("HEAT/HOT WATER"),
    other("Hazardous Materials"),
    other("Highway Condition"),
    other("Homeless Person Assistance"),
    other("Illegal Animal Kept as Pet"),
    other("Illegal Dumping"),
    other("Illegal Posting"),
    other("Illegal Tree Damage"),
    other("Indoor Air Quality"),
    other("Indoor Sewage"),
    other("Industrial Waste"),
    other("Investigations and Discipline (IAD)"),
    other("Lead"),
    other("Litter Basket Request"),
    other("Lost Property"),
    other("Lot Condition"),
    other("Maintenance or Facility"),
    other("Mobile Food Vendor"),
    other("New Tree Request"),
    other("Noise"),
    other("Noise - Helicopter"),
    other("Non-Residential Heat"),
    other("OUTSIDE BUILDING"),
    other("Obstruction"),
    other("Oil or Gas Spill"),
    other("Outdoor Dining"),
    other("Overgrown Tree/Branches"),
    other("PAINT/PLASTER"),
    other("Plumbing"),
    other("Real Time Enforcement"),
    other("Residential Disposal Complaint"),
    other("Rodent"),
    other("Root/Sewer/Sidewalk Condition"),
    other("SAFETY"),
    other("Sanitation Worker or Vehicle Complaint"),
    other("Sewer"),
    other("Sidewalk Condition"),
    other("Smoking"),
    other("Snow or Ice"),
    other("Special Natural Area District (SNAD)"),
    other("Special Projects Inspection Team (SPIT)"),
    other("Street Condition"),
    other("Street Light Condition"),
    other("Street Sign - Damaged"),
    other("Street Sign - Dangling"),
    other("Street Sign - Missing"),
    other("Street Sweeping Complaint"),
    other("Tattooing"),
    other("Taxi Complaint"),
    other("Taxi Compliment"),
    other("Taxi Licensee Complaint"),
    other("Traffic Signal Condition"),
    other("UNSANITARY CONDITION"),
    other("Unleashed Dog"),
    other("Unsanitary Animal Pvt Property"),
    other("Uprooted Stump"),
    other("Violation of Park Rules"),
    other("WATER LEAK"),
    other("Water Conservation"),
    other("Water Quality"),
    other("Water System"),
];

/// The known complaint type named `name` (case and surrounding spaces ignored).
pub fn lookup(name: &str) -> Option<&'static ComplaintType> {
    let name = name.trim();
    COMPLAINT_TYPES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_types_whatever_their_case() {
        let parking = lookup("  illegal parking ").unwrap();
        assert_eq!(parking.name, "Illegal Parking");
        assert!(parking.police_matter);
        assert!(!lookup("HEAT/HOT WATER").unwrap().police_matter);
        assert_eq!(lookup("Dragons"), None);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = COMPLAINT_TYPES
            .iter()
            .map(|t| t.name.to_ascii_lowercase())
            .collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
    }
}
