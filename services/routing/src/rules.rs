//! The routing table: which agency, priority and SLA each complaint type gets.
//!
//! The table is a TOML file (see `config/rules.toml`): the agencies a rule may
//! name (`[agencies]`), the old and other names of complaint types
//! (`[aliases]`), and one `[[rule]]` per complaint type, optionally per
//! descriptor. It is validated as a whole when loaded, so a bad file stops the
//! service at start-up, naming the line, instead of misrouting requests later.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use dispatch311_domain::complaint_type::match_key;
use dispatch311_proto::common::v1::{DuplicateRule, Priority};
use dispatch311_proto::routing::v1::{RouteOutcome, RoutingRule};
use serde::Deserialize;
use toml::Spanned;

/// What a matching rule does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOutcome {
    /// Police work: a dispatch job in the precinct's queue.
    Dispatch,
    /// Another agency's work: the request is referred to the rule's agency.
    Refer,
}

impl RuleOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleOutcome::Dispatch => "dispatch",
            RuleOutcome::Refer => "refer",
        }
    }

    pub fn to_proto(self) -> RouteOutcome {
        match self {
            RuleOutcome::Dispatch => RouteOutcome::Dispatch,
            RuleOutcome::Refer => RouteOutcome::Refer,
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "dispatch" => Some(RuleOutcome::Dispatch),
            "refer" => Some(RuleOutcome::Refer),
            _ => None,
        }
    }
}

/// One validated row of the routing table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub complaint_type: String,
    /// `None` matches every descriptor of the complaint type.
    pub descriptor: Option<String>,
    pub outcome: RuleOutcome,
    pub agency: String,
    pub priority: Priority,
    /// Minutes from filing to the SLA due time; 0 means no SLA applies.
    pub sla_minutes: u32,
    /// Whether the agency needs a place to act (coordinates or a street
    /// address). A tax question or a benefits card needs none.
    pub needs_location: bool,
    /// Whether the complaint is police jurisdiction: dispatch's closing rules
    /// then refuse "outside jurisdiction" and a plain referral.
    pub police_matter: bool,
    /// Other names of the complaint type that route here, as the file spells them.
    pub aliases: Vec<String>,
    /// How dispatch links more reports of one incident to one job; `None`
    /// for referrals, for a rule that opts out, and when the file has no
    /// `[duplicates]` table.
    pub duplicates: Option<DuplicateRule>,
}

impl Rule {
    pub fn to_proto(&self) -> RoutingRule {
        RoutingRule {
            rule_id: self.id.clone(),
            complaint_type: self.complaint_type.clone(),
            descriptor: self.descriptor.clone().unwrap_or_default(),
            outcome: self.outcome.to_proto().into(),
            agency: self.agency.clone(),
            priority: self.priority.into(),
            sla_minutes: self.sla_minutes,
            aliases: self.aliases.clone(),
            needs_location: self.needs_location,
            police_matter: self.police_matter,
            duplicate_rule: self.duplicates,
        }
    }
}

impl From<&Rule> for RoutingRule {
    fn from(rule: &Rule) -> Self {
        rule.to_proto()
    }
}

/// Why a routing table was refused. Every error about one entry names the
/// line of the file it starts on.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("cannot read routing rules {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("routing rules are not valid toml: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("routing rules file has no rules")]
    NoRules,
    #[error("routing rules line {line}: rule #{position}: field {field} is empty")]
    EmptyField {
        line: usize,
        /// 1-based position of the rule in the file.
        position: usize,
        field: &'static str,
    },
    #[error("routing rules line {line}: duplicate routing rule id {id}")]
    DuplicateId { line: usize, id: String },
    #[error(
        "routing rules line {line}: routing rules {first} and {second} both match complaint type '{complaint_type}' with {}",
        describe_descriptor(.descriptor.as_deref())
    )]
    DuplicateMatch {
        line: usize,
        first: String,
        second: String,
        complaint_type: String,
        descriptor: Option<String>,
    },
    #[error(
        "routing rules line {line}: routing rule {id}: unknown outcome '{value}' (expected dispatch or refer)"
    )]
    UnknownOutcome {
        line: usize,
        id: String,
        value: String,
    },
    #[error(
        "routing rules line {line}: routing rule {id}: unknown priority '{value}' (expected low, normal, high or urgent)"
    )]
    UnknownPriority {
        line: usize,
        id: String,
        value: String,
    },
    #[error(
        "routing rules line {line}: routing rule {id}: a dispatch rule needs sla_minutes above 0"
    )]
    ZeroDispatchSla { line: usize, id: String },
    #[error(
        "routing rules line {line}: routing rule {id}: a dispatch rule needs a location (its precinct is found from it), so it cannot say needs_location = false"
    )]
    DispatchWithoutLocation { line: usize, id: String },
    #[error(
        "routing rules line {line}: routing rule {id}: unknown agency '{agency}' (not in [agencies])"
    )]
    UnknownAgency {
        line: usize,
        id: String,
        agency: String,
    },
    #[error(
        "routing rules line {line}: routing rule {id}: {field} is set but the file has no [duplicates] table to link reports by"
    )]
    DuplicatesWithoutDefaults {
        line: usize,
        id: String,
        field: &'static str,
    },
    #[error("routing rules: [duplicates] window_minutes must be between 1 and {max}, not {value}")]
    DuplicateWindow { value: u32, max: u32 },
    #[error("routing rules: [duplicates] radius_m must be at most {max}, not {value}")]
    DuplicateRadius { value: u32, max: u32 },
    #[error("routing rules line {line}: agency '{agency}' is listed twice")]
    DuplicateAgency { line: usize, agency: String },
    #[error(
        "routing rules line {line}: alias '{alias}' names no complaint type with a rule ('{target}')"
    )]
    AliasWithoutRule {
        line: usize,
        alias: String,
        target: String,
    },
    #[error(
        "routing rules line {line}: alias '{alias}' is also a complaint type with its own rule: one type mapped twice"
    )]
    AliasShadowsType { line: usize, alias: String },
    #[error(
        "routing rules line {line}: alias '{alias}' is listed twice (as '{first}'): one type mapped twice"
    )]
    DuplicateAlias {
        line: usize,
        alias: String,
        first: String,
    },
}

fn describe_descriptor(descriptor: Option<&str>) -> String {
    match descriptor {
        Some(descriptor) => format!("descriptor '{descriptor}'"),
        None => "any descriptor".to_owned(),
    }
}

/// The file format: outcome and priority stay strings here so that a bad value
/// is reported with the id of the rule that carries it; entries keep their
/// place in the file so an error can name the line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    /// Agency code → full name.
    #[serde(default)]
    agencies: BTreeMap<Spanned<String>, String>,
    /// Other name → the complaint type it stands for.
    #[serde(default)]
    aliases: BTreeMap<Spanned<String>, String>,
    /// How reports of one incident are linked, for every dispatch rule
    /// (a rule may narrow it); without it nothing is linked.
    #[serde(default)]
    duplicates: Option<RawDuplicates>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDuplicates {
    radius_m: u32,
    window_minutes: u32,
    #[serde(default)]
    raise_priority_at_reports: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    complaint_type: String,
    descriptor: Option<String>,
    outcome: String,
    agency: String,
    priority: String,
    sla_minutes: u32,
    #[serde(default)]
    needs_location: Option<bool>,
    #[serde(default)]
    police_matter: Option<bool>,
    /// Whether reports of one incident are linked (default: yes for dispatch
    /// rules when the file has a `[duplicates]` table).
    #[serde(default)]
    link_duplicates: Option<bool>,
    /// Linked reports must also share the descriptor (default false).
    #[serde(default)]
    duplicate_match_descriptor: Option<bool>,
    /// A window of its own, in minutes, instead of `[duplicates]`'s.
    #[serde(default)]
    duplicate_window_minutes: Option<u32>,
}

/// Lookup key: complaint type and descriptor as the city files them, but
/// without case or spacing differences.
type MatchKey = (String, Option<String>);

/// The routing rules in force, validated, with an index for matching.
#[derive(Debug, Clone)]
pub struct RuleTable {
    /// In match order: per complaint type, descriptor rules before the type-wide rule.
    rules: Vec<Rule>,
    index: HashMap<MatchKey, usize>,
    /// Alias key → the key of the complaint type it stands for.
    aliases: HashMap<String, String>,
    /// Agency code → full name, in code order.
    agencies: BTreeMap<String, String>,
}

/// A rule that fits a request, and the name it was found by when the request
/// used an alias of the rule's complaint type.
#[derive(Debug, Clone, Copy)]
pub struct RuleMatch<'table> {
    pub rule: &'table Rule,
    /// The alias as the rules file spells it, when the request used one.
    pub alias: Option<&'table str>,
}

impl RuleTable {
    /// Reads and validates a rules file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RuleError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RuleError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and validates the text of a rules file.
    pub fn from_toml_str(text: &str) -> Result<Self, RuleError> {
        let file: RulesFile = toml::from_str(text)?;
        let line_of = |span: std::ops::Range<usize>| line_at(text, span.start);
        if file.rule.is_empty() {
            return Err(RuleError::NoRules);
        }

        let mut agencies = BTreeMap::new();
        for (code, name) in file.agencies {
            let line = line_of(code.span());
            let code = code.into_inner().trim().to_owned();
            if agencies
                .insert(code.clone(), name.trim().to_owned())
                .is_some()
            {
                return Err(RuleError::DuplicateAgency { line, agency: code });
            }
        }

        let duplicates = file
            .duplicates
            .as_ref()
            .map(duplicate_defaults)
            .transpose()?;
        let mut ids = HashSet::new();
        let mut parsed = Vec::with_capacity(file.rule.len());
        for (offset, raw) in file.rule.into_iter().enumerate() {
            let line = line_of(raw.span());
            let rule = validate(line, offset + 1, raw.into_inner(), duplicates)?;
            // An empty [agencies] table means "any agency" (small test tables).
            if !agencies.is_empty() && !agencies.contains_key(&rule.agency) {
                return Err(RuleError::UnknownAgency {
                    line,
                    id: rule.id,
                    agency: rule.agency,
                });
            }
            if !ids.insert(rule.id.clone()) {
                return Err(RuleError::DuplicateId { line, id: rule.id });
            }
            parsed.push((line, rule));
        }

        // Aliases: each names a type that has a rule, is not itself a type
        // with a rule, and appears once.
        let types: HashMap<String, String> = parsed
            .iter()
            .map(|(_, rule)| (match_key(&rule.complaint_type), rule.complaint_type.clone()))
            .collect();
        let mut aliases: HashMap<String, String> = HashMap::new();
        let mut alias_names: HashMap<String, Vec<String>> = HashMap::new();
        let mut alias_spelling: HashMap<String, String> = HashMap::new();
        for (alias, target) in file.aliases {
            let line = line_of(alias.span());
            let alias = alias
                .into_inner()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let key = match_key(&alias);
            let target_key = match_key(&target);
            if !types.contains_key(&target_key) {
                return Err(RuleError::AliasWithoutRule {
                    line,
                    alias,
                    target: target.trim().to_owned(),
                });
            }
            if types.contains_key(&key) {
                return Err(RuleError::AliasShadowsType { line, alias });
            }
            if let Some(first) = alias_spelling.get(&key) {
                return Err(RuleError::DuplicateAlias {
                    line,
                    alias,
                    first: first.clone(),
                });
            }
            alias_spelling.insert(key.clone(), alias.clone());
            alias_names
                .entry(target_key.clone())
                .or_default()
                .push(alias);
            aliases.insert(key, target_key);
        }
        for (_, rule) in &mut parsed {
            if let Some(names) = alias_names.get(&match_key(&rule.complaint_type)) {
                rule.aliases = names.clone();
            }
        }

        let rules = in_match_order(parsed);
        let mut index = HashMap::with_capacity(rules.len());
        for (position, (line, rule)) in rules.iter().enumerate() {
            let key = (
                match_key(&rule.complaint_type),
                rule.descriptor.as_deref().map(match_key),
            );
            match index.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(position);
                }
                Entry::Occupied(slot) => {
                    let first: &Rule = &rules[*slot.get()].1;
                    return Err(RuleError::DuplicateMatch {
                        line: *line,
                        first: first.id.clone(),
                        second: rule.id.clone(),
                        complaint_type: rule.complaint_type.clone(),
                        descriptor: rule.descriptor.clone(),
                    });
                }
            }
        }
        let rules = rules.into_iter().map(|(_, rule)| rule).collect();
        Ok(Self {
            rules,
            index,
            aliases,
            agencies,
        })
    }

    /// The rule for a request: the rule for its exact descriptor if there is
    /// one, else the type-wide rule. Case and spacing are ignored, and an alias
    /// finds the rules of the complaint type it stands for.
    pub fn match_rule(&self, complaint_type: &str, descriptor: &str) -> Option<&Rule> {
        self.find(complaint_type, descriptor)
            .map(|found| found.rule)
    }

    /// As [`RuleTable::match_rule`], saying whether an alias was used.
    pub fn find(&self, complaint_type: &str, descriptor: &str) -> Option<RuleMatch<'_>> {
        let mut type_key = match_key(complaint_type);
        if type_key.is_empty() {
            return None;
        }
        let mut alias = None;
        if let Some(target) = self.aliases.get(&type_key) {
            alias = self
                .rules
                .iter()
                .find(|rule| match_key(&rule.complaint_type) == *target)
                .and_then(|rule| rule.aliases.iter().find(|name| match_key(name) == type_key))
                .map(String::as_str);
            type_key = target.clone();
        }
        let descriptor = match_key(descriptor);
        let mut key: MatchKey = (type_key, None);
        if !descriptor.is_empty() {
            key.1 = Some(descriptor);
            if let Some(&position) = self.index.get(&key) {
                return Some(RuleMatch {
                    rule: &self.rules[position],
                    alias,
                });
            }
            key.1 = None;
        }
        self.index.get(&key).map(|&position| RuleMatch {
            rule: &self.rules[position],
            alias,
        })
    }

    /// Every rule in match order: trying them in this order and taking the
    /// first whose type (and descriptor, if it has one) fits gives the same
    /// answer as [`RuleTable::match_rule`].
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.id == id)
    }

    /// Agency codes with their full names, as the file lists them.
    pub fn agencies(&self) -> &BTreeMap<String, String> {
        &self.agencies
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The table as the API lists it.
    pub fn to_proto(&self) -> Vec<RoutingRule> {
        self.rules.iter().map(Rule::to_proto).collect()
    }
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The longest a duplicate window may be: a day. Longer, and a chronic
/// condition's new reports would keep joining a job a crew already worked.
const MAX_DUPLICATE_WINDOW_MINUTES: u32 = 24 * 60;
/// The widest radius: a block's length. Wider, and two cars on one avenue
/// would be one incident.
const MAX_DUPLICATE_RADIUS_M: u32 = 200;

fn duplicate_defaults(raw: &RawDuplicates) -> Result<DuplicateRule, RuleError> {
    check_window(raw.window_minutes)?;
    if raw.radius_m > MAX_DUPLICATE_RADIUS_M {
        return Err(RuleError::DuplicateRadius {
            value: raw.radius_m,
            max: MAX_DUPLICATE_RADIUS_M,
        });
    }
    Ok(DuplicateRule {
        radius_m: raw.radius_m,
        window_minutes: raw.window_minutes,
        match_descriptor: false,
        raise_priority_at_reports: raw.raise_priority_at_reports,
    })
}

fn check_window(minutes: u32) -> Result<(), RuleError> {
    if minutes == 0 || minutes > MAX_DUPLICATE_WINDOW_MINUTES {
        return Err(RuleError::DuplicateWindow {
            value: minutes,
            max: MAX_DUPLICATE_WINDOW_MINUTES,
        });
    }
    Ok(())
}

/// The rule's way of linking reports: the file's defaults narrowed by the
/// rule's own fields; never for a referral.
fn rule_duplicates(
    line: usize,
    id: &str,
    outcome: RuleOutcome,
    raw: &RawRule,
    defaults: Option<DuplicateRule>,
) -> Result<Option<DuplicateRule>, RuleError> {
    let Some(defaults) = defaults else {
        let set = [
            ("link_duplicates", raw.link_duplicates.is_some()),
            (
                "duplicate_match_descriptor",
                raw.duplicate_match_descriptor.is_some(),
            ),
            (
                "duplicate_window_minutes",
                raw.duplicate_window_minutes.is_some(),
            ),
        ];
        if let Some((field, _)) = set.into_iter().find(|(_, set)| *set) {
            return Err(RuleError::DuplicatesWithoutDefaults {
                line,
                id: id.to_owned(),
                field,
            });
        }
        return Ok(None);
    };
    if outcome != RuleOutcome::Dispatch || raw.link_duplicates == Some(false) {
        return Ok(None);
    }
    let window_minutes = match raw.duplicate_window_minutes {
        Some(minutes) => {
            check_window(minutes)?;
            minutes
        }
        None => defaults.window_minutes,
    };
    Ok(Some(DuplicateRule {
        window_minutes,
        match_descriptor: raw.duplicate_match_descriptor.unwrap_or(false),
        ..defaults
    }))
}

fn validate(
    line: usize,
    position: usize,
    raw: RawRule,
    duplicates: Option<DuplicateRule>,
) -> Result<Rule, RuleError> {
    let empty = |field| RuleError::EmptyField {
        line,
        position,
        field,
    };
    let id = raw.id.trim().to_owned();
    if id.is_empty() {
        return Err(empty("id"));
    }
    let complaint_type = raw
        .complaint_type
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if complaint_type.is_empty() {
        return Err(empty("complaint_type"));
    }
    let agency = raw.agency.trim().to_owned();
    if agency.is_empty() {
        return Err(empty("agency"));
    }
    // An empty descriptor means "every descriptor", as in the API.
    let descriptor = raw
        .descriptor
        .as_deref()
        .map(|descriptor| descriptor.trim().to_owned())
        .filter(|descriptor| !descriptor.is_empty());
    let Some(outcome) = RuleOutcome::parse(&raw.outcome) else {
        return Err(RuleError::UnknownOutcome {
            line,
            id,
            value: raw.outcome,
        });
    };
    let Some(priority) = parse_priority(&raw.priority) else {
        return Err(RuleError::UnknownPriority {
            line,
            id,
            value: raw.priority,
        });
    };
    // A dispatch job without an SLA would never breach and never escalate.
    if outcome == RuleOutcome::Dispatch && raw.sla_minutes == 0 {
        return Err(RuleError::ZeroDispatchSla { line, id });
    }
    let needs_location = raw.needs_location.unwrap_or(true);
    // A dispatch job goes to the precinct that contains the place.
    if outcome == RuleOutcome::Dispatch && !needs_location {
        return Err(RuleError::DispatchWithoutLocation { line, id });
    }
    let duplicates = rule_duplicates(line, &id, outcome, &raw, duplicates)?;
    Ok(Rule {
        id,
        complaint_type,
        descriptor,
        outcome,
        agency,
        priority,
        sla_minutes: raw.sla_minutes,
        needs_location,
        police_matter: raw
            .police_matter
            .unwrap_or(outcome == RuleOutcome::Dispatch),
        aliases: Vec::new(),
        duplicates,
    })
}

fn parse_priority(value: &str) -> Option<Priority> {
    match value.trim().to_ascii_lowercase().as_str() {
        "low" => Some(Priority::Low),
        "normal" => Some(Priority::Normal),
        "high" => Some(Priority::High),
        "urgent" => Some(Priority::Urgent),
        _ => None,
    }
}

/// The lowercase name of a priority, as written in the rules file.
pub fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Unspecified => "unspecified",
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

/// Groups rules by complaint type (in order of first appearance), descriptor
/// rules first, so the listed order is also the order in which they win.
/// Each rule keeps the line it was written on.
fn in_match_order(rules: Vec<(usize, Rule)>) -> Vec<(usize, Rule)> {
    let mut type_order: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<(usize, bool, usize, (usize, Rule))> = rules
        .into_iter()
        .enumerate()
        .map(|(position, entry)| {
            let next = type_order.len();
            let group = *type_order
                .entry(match_key(&entry.1.complaint_type))
                .or_insert(next);
            (group, entry.1.descriptor.is_none(), position, entry)
        })
        .collect();
    keyed.sort_by_key(|(group, type_wide, position, _)| (*group, *type_wide, *position));
    keyed.into_iter().map(|(_, _, _, entry)| entry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.toml");

    const SMALL_TABLE: &str = r#"
        [[rule]]
        id = "nypd-illegal-parking"
        complaint_type = "Illegal Parking"
        outcome = "dispatch"
        agency = "NYPD"
        priority = "normal"
        sla_minutes = 240

        [[rule]]
        id = "nypd-illegal-parking-hydrant"
        complaint_type = "Illegal Parking"
        descriptor = "Blocked Hydrant"
        outcome = "dispatch"
        agency = "NYPD"
        priority = "high"
        sla_minutes = 60

        [[rule]]
        id = "dsny-graffiti"
        complaint_type = "Graffiti"
        outcome = "refer"
        agency = "DSNY"
        priority = "low"
        sla_minutes = 0
    "#;

    fn rule_text(
        id: &str,
        complaint_type: &str,
        outcome: &str,
        priority: &str,
        sla: u32,
    ) -> String {
        format!(
            "[[rule]]\nid = \"{id}\"\ncomplaint_type = \"{complaint_type}\"\noutcome = \"{outcome}\"\n\
             agency = \"NYPD\"\npriority = \"{priority}\"\nsla_minutes = {sla}\n"
        )
    }

    #[test]
    fn descriptor_rule_wins_over_type_wide_rule() {
        let table = RuleTable::from_toml_str(SMALL_TABLE).unwrap();
        let hydrant = table
            .match_rule("Illegal Parking", "Blocked Hydrant")
            .unwrap();
        assert_eq!(hydrant.id, "nypd-illegal-parking-hydrant");
        assert_eq!(hydrant.priority, Priority::High);
        assert_eq!(hydrant.sla_minutes, 60);

        let other = table
            .match_rule("Illegal Parking", "Posted Parking Sign Violation")
            .unwrap();
        assert_eq!(other.id, "nypd-illegal-parking");
        let no_descriptor = table.match_rule("Illegal Parking", "").unwrap();
        assert_eq!(no_descriptor.id, "nypd-illegal-parking");
    }

    #[test]
    fn matching_ignores_case_and_spacing() {
        let table = RuleTable::from_toml_str(SMALL_TABLE).unwrap();
        let rule = table
            .match_rule("  ILLEGAL   parking ", " blocked HYDRANT\t")
            .unwrap();
        assert_eq!(rule.id, "nypd-illegal-parking-hydrant");
        assert_eq!(
            table.match_rule("graffiti", "anything").unwrap().id,
            "dsny-graffiti"
        );
    }

    #[test]
    fn unknown_or_empty_type_matches_nothing() {
        let table = RuleTable::from_toml_str(SMALL_TABLE).unwrap();
        assert!(table.match_rule("Loose Tiger", "").is_none());
        assert!(table.match_rule("", "Blocked Hydrant").is_none());
        assert!(table.match_rule("   ", "").is_none());
    }

    #[test]
    fn rules_are_listed_in_match_order() {
        let table = RuleTable::from_toml_str(SMALL_TABLE).unwrap();
        let ids: Vec<&str> = table.rules().iter().map(|rule| rule.id.as_str()).collect();
        // The hydrant rule is written after the type-wide rule but wins, so it is listed first.
        assert_eq!(
            ids,
            [
                "nypd-illegal-parking-hydrant",
                "nypd-illegal-parking",
                "dsny-graffiti"
            ]
        );
    }

    #[test]
    fn first_listed_fit_agrees_with_match_rule_on_the_shipped_table() {
        let table = RuleTable::load(SHIPPED_RULES).unwrap();
        for probe in table.rules() {
            let descriptor = probe
                .descriptor
                .as_deref()
                .unwrap_or("some other descriptor");
            let first_fit = table
                .rules()
                .iter()
                .find(|rule| {
                    match_key(&rule.complaint_type) == match_key(&probe.complaint_type)
                        && rule
                            .descriptor
                            .as_deref()
                            .is_none_or(|d| match_key(d) == match_key(descriptor))
                })
                .map(|rule| rule.id.as_str());
            let matched = table
                .match_rule(&probe.complaint_type, descriptor)
                .map(|rule| rule.id.as_str());
            assert_eq!(first_fit, matched, "probe {}", probe.id);
        }
    }

    #[test]
    fn converts_to_the_api_rule() {
        let table = RuleTable::from_toml_str(SMALL_TABLE).unwrap();
        let listed = table.to_proto();
        assert_eq!(listed.len(), 3);
        let hydrant = &listed[0];
        assert_eq!(hydrant.rule_id, "nypd-illegal-parking-hydrant");
        assert_eq!(hydrant.complaint_type, "Illegal Parking");
        assert_eq!(hydrant.descriptor, "Blocked Hydrant");
        assert_eq!(hydrant.outcome(), RouteOutcome::Dispatch);
        assert_eq!(hydrant.agency, "NYPD");
        assert_eq!(hydrant.priority(), Priority::High);
        assert_eq!(hydrant.sla_minutes, 60);
        let graffiti = RoutingRule::from(table.get("dsny-graffiti").unwrap());
        assert_eq!(
            graffiti.descriptor, "",
            "a type-wide rule lists an empty descriptor"
        );
        assert_eq!(graffiti.outcome(), RouteOutcome::Refer);
        assert_eq!(graffiti.priority(), Priority::Low);
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let text = rule_text("same", "Noise - Residential", "dispatch", "normal", 180)
            + &rule_text("same", "Noise - Vehicle", "dispatch", "normal", 120);
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert!(matches!(&error, RuleError::DuplicateId { id, .. } if id == "same"));
        assert_eq!(
            error.to_string(),
            "routing rules line 8: duplicate routing rule id same"
        );
    }

    #[test]
    fn two_rules_for_the_same_type_and_descriptor_are_refused() {
        let text = rule_text("first", "Noise - Residential", "dispatch", "normal", 180)
            + &rule_text("second", "noise - RESIDENTIAL ", "refer", "low", 0);
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "routing rules line 8: routing rules first and second both match complaint type 'noise - RESIDENTIAL' with any descriptor"
        );

        let with_descriptor = SMALL_TABLE.to_owned()
            + r#"
            [[rule]]
            id = "hydrant-again"
            complaint_type = "Illegal Parking"
            descriptor = "blocked hydrant"
            outcome = "dispatch"
            agency = "NYPD"
            priority = "urgent"
            sla_minutes = 30
            "#;
        let error = RuleTable::from_toml_str(&with_descriptor).unwrap_err();
        assert!(
            error.to_string().ends_with(
                "routing rules nypd-illegal-parking-hydrant and hydrant-again both match complaint type \
                 'Illegal Parking' with descriptor 'blocked hydrant'"
            ),
            "{error}"
        );
        let RuleError::DuplicateMatch { line, .. } = error else {
            panic!("{error}")
        };
        assert_eq!(
            line,
            line_at(&with_descriptor, with_descriptor.rfind("[[rule]]").unwrap())
        );
    }

    #[test]
    fn empty_descriptor_is_a_type_wide_rule() {
        let text = SMALL_TABLE.to_owned()
            + r#"
            [[rule]]
            id = "parking-again"
            complaint_type = "Illegal Parking"
            descriptor = " "
            outcome = "dispatch"
            agency = "NYPD"
            priority = "low"
            sla_minutes = 30
            "#;
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert!(matches!(
            error,
            RuleError::DuplicateMatch {
                descriptor: None,
                ..
            }
        ));
    }

    #[test]
    fn unknown_outcome_is_refused_with_the_rule_id() {
        let text = rule_text("nypd-noise", "Noise - Residential", "ignore", "normal", 180);
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "routing rules line 1: routing rule nypd-noise: unknown outcome 'ignore' (expected dispatch or refer)"
        );
    }

    #[test]
    fn unknown_priority_is_refused_with_the_rule_id() {
        let text = rule_text("nypd-noise", "Noise - Residential", "dispatch", "asap", 180);
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "routing rules line 1: routing rule nypd-noise: unknown priority 'asap' (expected low, normal, high or urgent)"
        );
    }

    #[test]
    fn dispatch_without_sla_is_refused_but_referral_without_sla_is_fine() {
        let text = rule_text("nypd-noise", "Noise - Residential", "dispatch", "normal", 0);
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "routing rules line 1: routing rule nypd-noise: a dispatch rule needs sla_minutes above 0"
        );

        let referral = rule_text("elsewhere", "Noise - Residential", "refer", "normal", 0);
        let table = RuleTable::from_toml_str(&referral).unwrap();
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn dispatch_rules_link_reports_by_the_files_duplicates_table_narrowed_per_rule() {
        let text = r#"
[duplicates]
radius_m = 30
window_minutes = 120
raise_priority_at_reports = 3

[[rule]]
id = "driveway"
complaint_type = "Blocked Driveway"
outcome = "dispatch"
agency = "NYPD"
priority = "high"
sla_minutes = 60

[[rule]]
id = "parking"
complaint_type = "Illegal Parking"
outcome = "dispatch"
agency = "NYPD"
priority = "normal"
duplicate_match_descriptor = true
duplicate_window_minutes = 30
sla_minutes = 240

[[rule]]
id = "fireworks"
complaint_type = "Illegal Fireworks"
outcome = "dispatch"
agency = "NYPD"
priority = "normal"
link_duplicates = false
sla_minutes = 60

[[rule]]
id = "tree"
complaint_type = "Dead Tree"
outcome = "refer"
agency = "DPR"
priority = "normal"
sla_minutes = 0
"#;
        let table = RuleTable::from_toml_str(text).unwrap();
        let driveway = table.get("driveway").unwrap().duplicates.unwrap();
        assert_eq!(
            (
                driveway.radius_m,
                driveway.window_minutes,
                driveway.match_descriptor
            ),
            (30, 120, false)
        );
        assert_eq!(driveway.raise_priority_at_reports, 3);
        let parking = table.get("parking").unwrap().duplicates.unwrap();
        assert_eq!(
            (parking.window_minutes, parking.match_descriptor),
            (30, true)
        );
        assert_eq!(table.get("fireworks").unwrap().duplicates, None);
        assert_eq!(
            table.get("tree").unwrap().duplicates,
            None,
            "a referral is never linked"
        );
        assert_eq!(
            table.get("parking").unwrap().to_proto().duplicate_rule,
            Some(parking)
        );

        // without the table nothing links, and a rule cannot ask to
        let plain = rule_text(
            "nypd-noise",
            "Noise - Residential",
            "dispatch",
            "normal",
            60,
        );
        assert_eq!(
            RuleTable::from_toml_str(&plain).unwrap().rules()[0].duplicates,
            None
        );
        let asked = format!("{plain}duplicate_window_minutes = 10\n");
        let error = RuleTable::from_toml_str(&asked).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("duplicate_window_minutes is set but the file has no [duplicates] table"),
            "{error}"
        );
        // a window or radius that would fold separate incidents together is refused
        for (table, expected) in [
            (
                "[duplicates]\nradius_m = 30\nwindow_minutes = 0\n",
                "window_minutes must be between 1 and 1440, not 0",
            ),
            (
                "[duplicates]\nradius_m = 500\nwindow_minutes = 60\n",
                "radius_m must be at most 200, not 500",
            ),
        ] {
            let error = RuleTable::from_toml_str(&format!("{table}{plain}")).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[test]
    fn empty_fields_and_empty_files_are_refused() {
        let text = rule_text("  ", "Noise - Residential", "dispatch", "normal", 60);
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "routing rules line 1: rule #1: field id is empty"
        );

        let text = rule_text("a", "Noise", "dispatch", "normal", 60)
            + &rule_text("b", "", "dispatch", "normal", 60);
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "routing rules line 8: rule #2: field complaint_type is empty"
        );

        let error = RuleTable::from_toml_str("# nothing yet\n").unwrap_err();
        assert!(matches!(error, RuleError::NoRules));
    }

    #[test]
    fn misspelt_field_and_bad_toml_are_refused() {
        let text =
            rule_text("a", "Noise", "dispatch", "normal", 60).replace("sla_minutes", "sla_minute");
        let error = RuleTable::from_toml_str(&text).unwrap_err();
        assert!(matches!(error, RuleError::Parse(_)));
        assert!(error.to_string().contains("sla_minute"), "{error}");

        let error = RuleTable::from_toml_str("[[rule]\nid = ").unwrap_err();
        assert!(matches!(error, RuleError::Parse(_)));

        let negative = rule_text("a", "Noise", "dispatch", "normal", 60).replace("= 60", "= -5");
        assert!(matches!(
            RuleTable::from_toml_str(&negative),
            Err(RuleError::Parse(_))
        ));
    }

    const WITH_ALIASES: &str = r#"
[agencies]
NYPD = "New York City Police Department"
DOF = "Department of Finance"

[aliases]
"Derelict Vehicle" = "Abandoned Vehicle"
"Homeless Encampment" = "encampment"

[[rule]]
id = "nypd-abandoned-vehicle"
complaint_type = "Abandoned Vehicle"
outcome = "dispatch"
agency = "NYPD"
priority = "low"
sla_minutes = 4320

[[rule]]
id = "nypd-encampment"
complaint_type = "Encampment"
outcome = "dispatch"
agency = "NYPD"
priority = "normal"
sla_minutes = 480

[[rule]]
id = "dof-property-owner-issue"
complaint_type = "DOF Property - Owner Issue"
outcome = "refer"
agency = "DOF"
priority = "low"
sla_minutes = 0
needs_location = false
"#;

    #[test]
    fn an_alias_routes_like_its_complaint_type_and_is_listed_with_it() {
        let table = RuleTable::from_toml_str(WITH_ALIASES).unwrap();
        let found = table
            .find("  derelict   VEHICLE ", "With License Plate")
            .unwrap();
        assert_eq!(found.rule.id, "nypd-abandoned-vehicle");
        assert_eq!(found.alias, Some("Derelict Vehicle"));
        let direct = table.find("Abandoned Vehicle", "").unwrap();
        assert_eq!(
            (direct.rule.id.as_str(), direct.alias),
            ("nypd-abandoned-vehicle", None)
        );
        assert_eq!(
            table.match_rule("Homeless Encampment", "").unwrap().id,
            "nypd-encampment"
        );
        assert!(
            table.match_rule("Derelict Vehicles", "").is_none(),
            "a near name is not an alias"
        );

        let listed = table.get("nypd-abandoned-vehicle").unwrap().to_proto();
        assert_eq!(listed.aliases, ["Derelict Vehicle"]);
        assert!(listed.police_matter && listed.needs_location);
        let finance = table.get("dof-property-owner-issue").unwrap();
        assert!(!finance.needs_location && !finance.police_matter);
        assert_eq!(table.agencies()["DOF"], "Department of Finance");
    }

    #[test]
    fn bad_aliases_and_unknown_agencies_are_refused_with_their_line() {
        let cases = [
            (
                WITH_ALIASES.replace("\"encampment\"", "\"Encampments\""),
                "routing rules line 8: alias 'Homeless Encampment' names no complaint type with a rule ('Encampments')",
            ),
            (
                WITH_ALIASES.replace("\"Homeless Encampment\"", "\"ENCAMPMENT\""),
                "routing rules line 8: alias 'ENCAMPMENT' is also a complaint type with its own rule: one type mapped twice",
            ),
            (
                WITH_ALIASES.replace(
                    "\"Homeless Encampment\" = \"encampment\"",
                    "\"derelict  vehicle\" = \"Encampment\"",
                ),
                "routing rules line 8: alias 'derelict vehicle' is listed twice (as 'Derelict Vehicle'): one type mapped twice",
            ),
            (
                WITH_ALIASES.replace("agency = \"DOF\"", "agency = \"DOFF\""),
                "routing rules line 26: routing rule dof-property-owner-issue: unknown agency 'DOFF' (not in [agencies])",
            ),
            (
                WITH_ALIASES.replace(
                    "sla_minutes = 480",
                    "sla_minutes = 480\nneeds_location = false",
                ),
                "routing rules line 18: routing rule nypd-encampment: a dispatch rule needs a location (its precinct is found from it), so it cannot say needs_location = false",
            ),
        ];
        for (text, expected) in cases {
            let error = RuleTable::from_toml_str(&text).unwrap_err();
            assert_eq!(error.to_string(), expected);
        }
        // TOML itself refuses the same alias written twice, with the line
        let twice = WITH_ALIASES.replace(
            "\"Homeless Encampment\" = \"encampment\"",
            "\"Derelict Vehicle\" = \"Encampment\"",
        );
        let error = RuleTable::from_toml_str(&twice).unwrap_err();
        assert!(matches!(error, RuleError::Parse(_)));
        assert!(error.to_string().contains("line 8"), "{error}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let error = RuleTable::load("/nonexistent/rules.toml").unwrap_err();
        assert!(matches!(error, RuleError::Read { .. }));
        assert!(
            error
                .to_string()
                .starts_with("cannot read routing rules /nonexistent/rules.toml: "),
            "{error}"
        );
    }

    #[test]
    fn shipped_table_loads_and_sends_police_work_to_nypd() {
        let table = RuleTable::load(SHIPPED_RULES).unwrap();
        for rule in table.rules() {
            // reports of one incident are linked for police work only, and
            // illegal parking's different violations are different cars
            assert_eq!(
                rule.duplicates.is_some(),
                rule.outcome == RuleOutcome::Dispatch,
                "rule {}",
                rule.id
            );
            if let Some(duplicates) = rule.duplicates {
                assert_eq!(duplicates.radius_m, 30, "rule {}", rule.id);
                assert_eq!(
                    duplicates.match_descriptor,
                    rule.complaint_type == "Illegal Parking",
                    "rule {}",
                    rule.id
                );
            }
            // police work with a place goes to a precinct; a complaint about the
            // department itself (no place) is referred to the department
            assert_eq!(
                rule.outcome == RuleOutcome::Dispatch,
                rule.agency == "NYPD" && rule.needs_location,
                "rule {} mixes outcome {} with agency {}",
                rule.id,
                rule.outcome.as_str(),
                rule.agency
            );
            assert_eq!(
                rule.police_matter,
                rule.outcome == RuleOutcome::Dispatch
                    && rule.id != "nypd-graffiti-police-report-not-requested",
                "rule {}",
                rule.id
            );
            if rule.outcome == RuleOutcome::Refer {
                assert_eq!(rule.sla_minutes, 0, "referral {} carries an SLA", rule.id);
            }
        }
        let expected = [
            ("Illegal Parking", "Blocked Hydrant", Priority::High, 60),
            ("Illegal Parking", "Blocked Bike Lane", Priority::High, 60),
            (
                "Illegal Parking",
                "Double Parked Blocking Traffic",
                Priority::High,
                45,
            ),
            ("Blocked Driveway", "No Access", Priority::High, 60),
            ("Blocked Driveway", "Partial Access", Priority::High, 120),
            (
                "Noise - Residential",
                "Loud Music/Party",
                Priority::Normal,
                180,
            ),
            (
                "Abandoned Vehicle",
                "With License Plate",
                Priority::Low,
                4320,
            ),
        ];
        for (complaint_type, descriptor, priority, sla) in expected {
            let rule = table.match_rule(complaint_type, descriptor).unwrap();
            assert_eq!(rule.outcome, RuleOutcome::Dispatch, "{complaint_type}");
            assert_eq!(rule.agency, "NYPD");
            assert_eq!(
                (rule.priority, rule.sla_minutes),
                (priority, sla),
                "{complaint_type} / {descriptor}"
            );
        }
        // the city's old names route as today's, and only pure renames are aliases
        for (old, current) in [
            ("Derelict Vehicle", "Abandoned Vehicle"),
            ("Homeless Encampment", "Encampment"),
            ("Animal Abuse", "Animal-Abuse"),
            ("HEATING", "HEAT/HOT WATER"),
            ("Dead Tree", "Dead/Dying Tree"),
        ] {
            let found = table.find(old, "").unwrap();
            assert_eq!(found.rule.complaint_type, current, "{old}");
            assert!(found.alias.is_some(), "{old}");
        }
        let dsny = table.find("Derelict Vehicles", "").unwrap();
        assert_eq!((dsny.rule.agency.as_str(), dsny.alias), ("DSNY", None));
        // requests about an account or a programme need no place
        for (complaint_type, agency) in [
            ("DOF Property - Owner Issue", "DOF"),
            ("SCRIE", "DOF"),
            ("Benefit Card Replacement", "HRA"),
        ] {
            let rule = table.match_rule(complaint_type, "").unwrap();
            assert_eq!(rule.agency, agency, "{complaint_type}");
            assert!(!rule.needs_location, "{complaint_type}");
        }
        for (complaint_type, agency) in [
            ("Broken Muni Meter", "DOT"),
            ("Food Poisoning", "DOHMH"),
            ("Sanitation Condition", "DSNY"),
            ("Mass Gathering Complaint", "NYPD"),
        ] {
            assert_eq!(
                table.match_rule(complaint_type, "").unwrap().agency,
                agency,
                "{complaint_type}"
            );
        }
        let graffiti = table.match_rule("Graffiti", "Graffiti").unwrap();
        assert_eq!(
            (graffiti.outcome, graffiti.agency.as_str()),
            (RuleOutcome::Refer, "DSNY")
        );
        let heat = table
            .match_rule("HEAT/HOT WATER", "APARTMENT ONLY")
            .unwrap();
        assert_eq!(
            (heat.outcome, heat.agency.as_str()),
            (RuleOutcome::Refer, "HPD")
        );
    }

    /// Every complaint type in the two 311 sample files of the shared data
    /// directory (type names only), with the agency the city routed it to.
    const SAMPLE_TYPES: &[(&str, &str)] = &[
        ("DCA", "Consumer Complaint"),
        ("DEP", "Air Quality"),
        ("DEP", "Asbestos"),
        ("DEP", "Hazardous Materials"),
        ("DEP", "Industrial Waste"),
        ("DEP", "Lead"),
        ("DEP", "Noise"),
        ("DEP", "Sewer"),
        ("DEP", "Water Quality"),
        ("DEP", "Water System"),
        ("DHS", "Encampment"),
        ("DHS", "Homeless Person Assistance"),
        ("DOB", "Boilers"),
        ("DOB", "Borough Office"),
        ("DOB", "Building/Use"),
        ("DOB", "Electrical"),
        ("DOB", "Elevator"),
        ("DOB", "Emergency Response Team (ERT)"),
        ("DOB", "General Construction/Plumbing"),
        ("DOB", "Investigations and Discipline (IAD)"),
        ("DOB", "Plumbing"),
        ("DOB", "Real Time Enforcement"),
        ("DOB", "Special Natural Area District (SNAD)"),
        ("DOB", "Special Projects Inspection Team (SPIT)"),
        ("DOHMH", "Asbestos"),
        ("DOHMH", "Beach/Pool/Sauna Complaint"),
        ("DOHMH", "Construction Lead Dust"),
        ("DOHMH", "Day Care"),
        ("DOHMH", "Food Establishment"),
        ("DOHMH", "Illegal Animal Kept as Pet"),
        ("DOHMH", "Indoor Air Quality"),
        ("DOHMH", "Indoor Sewage"),
        ("DOHMH", "Mobile Food Vendor"),
        ("DOHMH", "Non-Residential Heat"),
        ("DOHMH", "Rodent"),
        ("DOHMH", "Smoking"),
        ("DOHMH", "Tattooing"),
        ("DOHMH", "Unleashed Dog"),
        ("DOHMH", "Unsanitary Animal Pvt Property"),
        ("DOT", "Bridge Condition"),
        ("DOT", "Broken Parking Meter"),
        ("DOT", "Curb Condition"),
        ("DOT", "Highway Condition"),
        ("DOT", "Outdoor Dining"),
        ("DOT", "Sidewalk Condition"),
        ("DOT", "Street Condition"),
        ("DOT", "Street Light Condition"),
        ("DOT", "Street Sign - Damaged"),
        ("DOT", "Street Sign - Dangling"),
        ("DOT", "Street Sign - Missing"),
        ("DOT", "Traffic Signal Condition"),
        ("DPR", "Animal in a Park"),
        ("DPR", "Damaged Tree"),
        ("DPR", "Dead/Dying Tree"),
        ("DPR", "Illegal Tree Damage"),
        ("DPR", "Maintenance or Facility"),
        ("DPR", "New Tree Request"),
        ("DPR", "Overgrown Tree/Branches"),
        ("DPR", "Root/Sewer/Sidewalk Condition"),
        ("DPR", "Uprooted Stump"),
        ("DPR", "Violation of Park Rules"),
        ("DSNY", "Abandoned Bike"),
        ("DSNY", "Commercial Disposal Complaint"),
        ("DSNY", "Dead Animal"),
        ("DSNY", "Derelict Vehicles"),
        ("DSNY", "Dirty Condition"),
        ("DSNY", "Electronics Waste Appointment"),
        ("DSNY", "Graffiti"),
        ("DSNY", "Illegal Dumping"),
        ("DSNY", "Illegal Posting"),
        ("DSNY", "Litter Basket Request"),
        ("DSNY", "Lot Condition"),
        ("DSNY", "Obstruction"),
        ("DSNY", "Oil or Gas Spill"),
        ("DSNY", "Residential Disposal Complaint"),
        ("DSNY", "Sanitation Worker or Vehicle Complaint"),
        ("DSNY", "Snow or Ice"),
        ("DSNY", "Street Sweeping Complaint"),
        ("EDC", "Noise - Helicopter"),
        ("HPD", "APPLIANCE"),
        ("HPD", "DOOR/WINDOW"),
        ("HPD", "ELECTRIC"),
        ("HPD", "ELEVATOR"),
        ("HPD", "FLOORING/STAIRS"),
        ("HPD", "GENERAL"),
        ("HPD", "HEAT/HOT WATER"),
        ("HPD", "OUTSIDE BUILDING"),
        ("HPD", "PAINT/PLASTER"),
        ("HPD", "PLUMBING"),
        ("HPD", "SAFETY"),
        ("HPD", "UNSANITARY CONDITION"),
        ("HPD", "WATER LEAK"),
        ("NYC311-PRD", "Sewer"),
        ("NYC311-PRD", "Water Conservation"),
        ("NYC311-PRD", "Water System"),
        ("NYPD", "Abandoned Vehicle"),
        ("NYPD", "Animal-Abuse"),
        ("NYPD", "Bike/Roller/Skate Chronic"),
        ("NYPD", "Blocked Driveway"),
        ("NYPD", "Drug Activity"),
        ("NYPD", "Encampment"),
        ("NYPD", "Graffiti"),
        ("NYPD", "Illegal Fireworks"),
        ("NYPD", "Illegal Parking"),
        ("NYPD", "Noise - Commercial"),
        ("NYPD", "Noise - House of Worship"),
        ("NYPD", "Noise - Park"),
        ("NYPD", "Noise - Residential"),
        ("NYPD", "Noise - Street/Sidewalk"),
        ("NYPD", "Noise - Vehicle"),
        ("NYPD", "Non-Emergency Police Matter"),
        ("NYPD", "Panhandling"),
        ("NYPD", "Traffic"),
        ("TLC", "For Hire Vehicle Complaint"),
        ("TLC", "For Hire Vehicle Report"),
        ("TLC", "Green Taxi Complaint"),
        ("TLC", "Lost Property"),
        ("TLC", "Taxi Complaint"),
        ("TLC", "Taxi Compliment"),
        ("TLC", "Taxi Licensee Complaint"),
    ];

    /// Where the shipped table gives a type-wide request another agency than
    /// the sample does: (agency in the sample, complaint type, agency in the table).
    const DELIBERATE_DIFFERENCES: &[(&str, &str, &str)] = &[
        // DEP gets asbestos work complaints through their descriptor (B1)
        ("DEP", "Asbestos", "DOHMH"),
        // the city files most encampment reports with NYPD
        ("DHS", "Encampment", "NYPD"),
        // police get graffiti only when a police report is wanted, by descriptor
        ("NYPD", "Graffiti", "DSNY"),
        // "Plumbing" (DOB) and "PLUMBING" (HPD), "Elevator" (DOB) and "ELEVATOR"
        // (HPD) differ only in case: the descriptor decides
        ("DOB", "Plumbing", "HPD"),
        ("HPD", "ELEVATOR", "DOB"),
        // 311's routing desk code for sewer and water work that DEP does
        ("NYC311-PRD", "Sewer", "DEP"),
        ("NYC311-PRD", "Water System", "DEP"),
    ];

    #[test]
    fn every_sample_complaint_type_has_a_rule_for_its_agency() {
        let table = RuleTable::load(SHIPPED_RULES).unwrap();
        let missing: Vec<&str> = SAMPLE_TYPES
            .iter()
            .filter(|(_, complaint_type)| table.match_rule(complaint_type, "").is_none())
            .map(|(_, complaint_type)| *complaint_type)
            .collect();
        assert!(
            missing.is_empty(),
            "complaint types without a rule: {missing:?}"
        );

        for (sample_agency, complaint_type) in SAMPLE_TYPES {
            let expected = DELIBERATE_DIFFERENCES
                .iter()
                .find(|(agency, kind, _)| agency == sample_agency && kind == complaint_type)
                .map_or(*sample_agency, |(_, _, table_agency)| *table_agency);
            let rule = table.match_rule(complaint_type, "").unwrap();
            assert_eq!(rule.agency, expected, "{sample_agency} {complaint_type}");
            assert_eq!(
                rule.outcome,
                if expected == "NYPD" {
                    RuleOutcome::Dispatch
                } else {
                    RuleOutcome::Refer
                },
                "{complaint_type}"
            );
        }
        let by_descriptor = [
            ("Graffiti", "Police Report Not Requested", "NYPD"),
            ("Asbestos", "Asbestos Complaint (B1)", "DEP"),
            (
                "Plumbing",
                "Plumbing Work - Illegal/No Permit/Standpipe/Sprinkler",
                "DOB",
            ),
            ("PLUMBING", "TOILET", "HPD"),
            ("ELEVATOR", "MAINTENANCE", "HPD"),
            ("Elevator", "Elevator - Multiple Devices On Property", "DOB"),
        ];
        for (complaint_type, descriptor, agency) in by_descriptor {
            let rule = table.match_rule(complaint_type, descriptor).unwrap();
            assert_eq!(rule.agency, agency, "{complaint_type} / {descriptor}");
        }
    }
}
