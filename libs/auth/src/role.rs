//! The roles a bearer token can carry (its `role` claim).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Who a caller is, as far as the policy table cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A city system filing complaints (the 311 app, the call centre): sees
    /// only the requests it filed.
    Integrator,
    /// Anyone with an SR number: its public status, nothing more.
    Public,
    Dispatcher,
    Officer,
    Supervisor,
    /// The satisfaction-survey system: polls closed requests, reaches
    /// consenting complainants.
    SurveySystem,
    /// Oversight: reads everything that is not a contact, lists contact releases.
    Auditor,
    /// Operates the suite: reads and configuration, never contact details.
    Admin,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Integrator,
        Role::Public,
        Role::Dispatcher,
        Role::Officer,
        Role::Supervisor,
        Role::SurveySystem,
        Role::Auditor,
        Role::Admin,
    ];

    /// The claim value, e.g. `survey_system`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Integrator => "integrator",
            Role::Public => "public",
            Role::Dispatcher => "dispatcher",
            Role::Officer => "officer",
            Role::Supervisor => "supervisor",
            Role::SurveySystem => "survey_system",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown role {0:?}; roles are integrator, public, dispatcher, officer, supervisor, survey_system, auditor, admin"
)]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s.trim())
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_claim_value() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
