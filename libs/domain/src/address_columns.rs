//! An address as the four text columns the services store it in, gathered
//! row by row into parallel arrays for a statement that `unnest`s them.

use dispatch311_proto::common::v1::Address;

/// Street, cross street, borough and postal code of many rows, in order; a
/// missing address is four empty strings.
#[derive(Default)]
pub struct AddressColumns<'a> {
    pub street_address: Vec<&'a str>,
    pub cross_street: Vec<&'a str>,
    pub borough: Vec<&'a str>,
    pub postal_code: Vec<&'a str>,
}

impl<'a> AddressColumns<'a> {
    pub fn push(&mut self, address: Option<&'a Address>) {
        let part = |get: fn(&Address) -> &str| address.map_or("", get);
        self.street_address.push(part(|a| &a.street_address));
        self.cross_street.push(part(|a| &a.cross_street));
        self.borough.push(part(|a| &a.borough));
        self.postal_code.push(part(|a| &a.postal_code));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_gets_its_four_parts_and_no_address_gets_empty_ones() {
        let address = Address {
            street_address: "350 5th Ave".into(),
            cross_street: "W 34th St".into(),
            borough: "MANHATTAN".into(),
            postal_code: "10118".into(),
        };
        let mut columns = AddressColumns::default();
        columns.push(Some(&address));
        columns.push(None);
        assert_eq!(columns.street_address, ["350 5th Ave", ""]);
        assert_eq!(columns.cross_street, ["W 34th St", ""]);
        assert_eq!(columns.borough, ["MANHATTAN", ""]);
        assert_eq!(columns.postal_code, ["10118", ""]);
    }
}
